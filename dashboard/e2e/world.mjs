// The world the browser scenarios and the bench run against, all real: a bare Git state
// repo made from examples/state-repo, the sample service's source repo
// (examples/hello-service), `vupdate distribution run` on 127.0.0.1:0 with the embedded
// store, and `vupdate updater run` running `hello` — the same system scripts/run starts.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The password every test account ends with. */
export const PASSWORD = 'correct horse battery staple';
/** How long any wait may last on a loaded 2-core machine. */
export const LIMIT_MS = 120_000;

/** The `vupdate` binary: VUPDATE_BIN, else the debug build in CARGO_TARGET_DIR (or target/). */
export function binary() {
  const path = process.env.VUPDATE_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug', 'vupdate');
  if (!existsSync(path)) throw new Error(`no vupdate binary at ${path}: run \`cargo build -p vupdate\` first (or set VUPDATE_BIN)`);
  return path;
}

/** Where screenshots and downloads go: under the build output, never committed. */
export function outputDir(name) {
  const dir = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'dashboard-e2e', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'vupdate test',
  GIT_AUTHOR_EMAIL: 'test@vupdate.invalid',
  GIT_COMMITTER_NAME: 'vupdate test',
  GIT_COMMITTER_EMAIL: 'test@vupdate.invalid',
};

/** Runs git in `cwd`; returns its trimmed output. */
export function git(cwd, ...args) {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** A desired-versions file (`versions:` by service) of `versions`. */
export function versionsYaml(versions) {
  const lines = Object.entries(versions).map(([s, v]) => `  ${s}: ${v}\n`);
  return lines.length ? `versions:\n${lines.join('')}` : 'versions: {}\n';
}

/** Polls `check` until it returns a truthy value (bounded by LIMIT_MS); returns it. */
export async function eventually(what, check, limit = LIMIT_MS) {
  const deadline = Date.now() + limit;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A started world. Call `stop()` when done. */
export class World {
  constructor(dir) {
    this.dir = dir;
    this.children = [];
  }

  /**
   * Builds and starts everything. Options: `services` (extra `name: yaml` service files),
   * `desired` (the developer list, default hello), `updater` (start one, default true),
   * `roles` (roles the updater also runs hello in, besides hello in none), `tls` (serve
   * HTTPS with a self-signed certificate; its key pin is then `world.pin`), `client` (the
   * desired client versions, default none), `rollout` (rollout.yaml's text).
   */
  static async start({ services = {}, desired = { hello: 'orbit-1.0.0' }, client = {}, rollout = 'onFailure: hold\n', updater = true, sources = {}, roles = [], tls = false } = {}) {
    const world = new World(mkdtempSync(join(tmpdir(), 'vupdate-dash-')));
    try {
      world.makeRepos(services, desired, sources, client, rollout);
      await world.startDistribution(tls);
      if (updater) await world.startUpdater(roles);
    } catch (error) {
      await world.stop();
      throw error;
    }
    return world;
  }

  /** A source repo `name` with `files`, committed on main. */
  sourceRepo(name, files) {
    const path = join(this.dir, name);
    mkdirSync(path, { recursive: true });
    for (const [file, text] of Object.entries(files)) writeFileSync(join(path, file), text);
    git(path, 'init', '-q', '-b', 'main');
    git(path, 'add', '-A');
    git(path, 'commit', '-qm', name);
    return path;
  }

  makeRepos(services, desired, sources, client, rollout) {
    const hello = join(this.dir, 'hello');
    cpSync(join(ROOT, 'examples/hello-service'), hello, { recursive: true });
    git(hello, 'init', '-q', '-b', 'main');
    git(hello, 'add', '-A');
    git(hello, 'commit', '-qm', 'hello');
    for (const [name, files] of Object.entries(sources)) this.sourceRepo(name, files);

    const state = join(this.dir, 'state');
    cpSync(join(ROOT, 'examples/state-repo'), state, { recursive: true });
    // Only services whose sources exist here are declared.
    rmSync(join(state, 'services'), { recursive: true });
    mkdirSync(join(state, 'services'));
    writeFileSync(join(state, 'services/hello.yaml'), `developer:\n  sources:\n    - name: hello\n      git:\n        url: ${hello}\n        branch: main\n`);
    for (const [name, yaml] of Object.entries(services)) writeFileSync(join(state, `services/${name}.yaml`), yaml.replaceAll('%%DIR%%', this.dir));
    writeFileSync(join(state, 'common.yaml'), 'developer:\n  macroValues:\n    logLevel: INFO\n');
    const all = ['hello', ...Object.keys(services)];
    writeFileSync(join(state, 'profiles.yaml'), `profiles:\n  self: [${all.join(', ')}]\n  web: [hello]\n`);
    writeFileSync(join(state, 'providers.yaml'), 'providers: {}\n');
    writeFileSync(join(state, 'consumers.yaml'), 'consumers: {}\n');
    writeFileSync(join(state, 'tested.yaml'), 'tested: {}\n');
    writeFileSync(join(state, 'rollout.yaml'), rollout);
    writeFileSync(join(state, 'desired/developer.yaml'), versionsYaml(desired));
    writeFileSync(join(state, 'desired/client.yaml'), versionsYaml(client));
    execFileSync(binary(), ['state', 'validate', state], { stdio: 'pipe' });
    git(state, 'init', '-q', '-b', 'main');
    git(state, 'add', '-A');
    git(state, 'commit', '-qm', 'Example state: run hello');
    this.remote = join(this.dir, 'state.git');
    git(this.dir, 'clone', '-q', '--bare', state, this.remote);
  }

  async startDistribution(tls) {
    writeFileSync(
      join(this.dir, 'distribution.yaml'),
      [
        'name: orbit',
        'title: Orbit (dashboard tests)',
        'listen: 127.0.0.1:0',
        'dataDirectory: data',
        'stateRepo:',
        `  url: ${this.remote}`,
        '  pollInterval: 1h',
        'tokenFiles:',
        '  updater: data/updater.token',
        'builder:',
        '  maxParallelBuilds: 2',
        ...(tls ? ['tls:', '  selfSigned:', '    names: [127.0.0.1]'] : []),
        '',
      ].join('\n'),
    );
    const server = spawn(binary(), ['distribution', 'run', '--config', join(this.dir, 'distribution.yaml')], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...GIT_ENV, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    this.children.push(server);
    this.serverLog = [];
    server.stderr.on('data', (chunk) => this.serverLog.push(chunk.toString()));
    const lines = createInterface({ input: server.stdout });
    const printed = [];
    await new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`the distribution did not start: ${printed.join('\n')}${this.serverLog.join('')}`)), LIMIT_MS);
      server.on('exit', (code) => fail(new Error(`the distribution exited with ${code}: ${this.serverLog.join('')}`)));
      lines.on('line', (line) => {
        printed.push(line);
        if (line.includes('first start')) {
          clearTimeout(timer);
          done();
        }
      });
    });
    this.base = printed[0].split(' ').at(-1);
    this.firstPassword = printed.map((l) => l.split('password `')[1]).find(Boolean).split('`')[0];
    this.pin = printed.map((l) => l.match(/TLS key pin: (\S+)/)?.[1]).find(Boolean) ?? null;
  }

  async startUpdater(roles) {
    const token = join(this.dir, 'data/updater.token');
    await eventually('the updater token file', () => existsSync(token));
    const vm = join(this.dir, 'vm');
    mkdirSync(vm, { recursive: true });
    writeFileSync(
      join(vm, 'updater.yaml'),
      [`instance: vm-1`, `distributionUrl: ${this.base}`, `accessTokenFile: ${token}`, 'workDirectory: .', 'services:', '  - hello', ...roles.map((role) => `  - {service: hello, role: ${role}}`), 'pollInterval: 5s', ''].join('\n'),
    );
    const updater = spawn(binary(), ['updater', 'run', '--config', join(vm, 'updater.yaml')], { cwd: vm, stdio: ['ignore', 'ignore', 'pipe'], env: GIT_ENV });
    this.updaterLog = [];
    updater.stderr.on('data', (chunk) => this.updaterLog.push(chunk.toString()));
    this.children.push(updater);
    this.vm = vm;
  }

  /** GraphQL as `token` (or anonymous); throws on errors. */
  async graphql(query, variables = {}, token = this.adminToken) {
    const response = await fetch(`${this.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors?.length) throw new Error(`${body.errors[0].extensions?.code}: ${body.errors[0].message}`);
    return body.data;
  }

  /** The updater account's access token. */
  updaterToken() {
    return readFileSync(join(this.dir, 'data/updater.token'), 'utf8').trim();
  }

  /** Sends service states as the updater's account, as an updater reports them. */
  async report(states) {
    await this.graphql('mutation($s: [ServiceStateInput!]!) { setServiceStates(states: $s) }', { s: states }, this.updaterToken());
  }

  /** Stores, as an updater would, a fault report of `instance` whose `service` could not
   * start `version` (an empty archive, a log tail); returns its id. */
  async faultReport(instance, service, version) {
    const updater = this.updaterToken();
    const id = `${instance}-${service}-${version.replace(/[^A-Za-z0-9]/g, '_')}`;
    const put = await fetch(`${this.base}/faults/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${updater}` }, body: Buffer.from('PK\x05\x06') });
    if (put.status !== 201) throw new Error(`PUT /faults/${id}: ${put.status} ${await put.text()}`);
    const now = new Date().toISOString();
    await this.graphql(
      'mutation($r: FaultReportInput!) { addFaultReport(report: $r) }',
      { r: { id, info: { time: now, instance, service, serviceDirectory: `/srv/${service}`, state: { time: now, version, lastExitCode: 3 }, logTail: [`${version} cannot start`] }, files: [] } },
      updater,
    );
    return id;
  }

  /** Writes `files` (path: text) into the state repo as one commit on main, pushes it, has
   * the server fetch it (`POST /hooks/git`) and waits until it is in force; returns its id. */
  async commitState(files, message) {
    const work = join(this.dir, 'state-work');
    if (existsSync(work)) git(work, 'pull', '-q', '--ff-only', 'origin', 'main');
    else git(this.dir, 'clone', '-q', this.remote, work);
    for (const [path, text] of Object.entries(files)) writeFileSync(join(work, path), text);
    git(work, 'add', '-A');
    git(work, 'commit', '-qm', message);
    git(work, 'push', '-q', 'origin', 'main');
    const head = git(work, 'rev-parse', 'HEAD');
    const hook = await fetch(`${this.base}/hooks/git`, { method: 'POST', headers: { authorization: `Bearer ${this.adminToken}` } });
    if (!hook.ok) throw new Error(`POST /hooks/git: ${hook.status} ${await hook.text()}`);
    await eventually(`commit ${head} in force`, async () => (await this.graphql('{ status { stateRepo { commit } } }')).status.stateRepo.commit === head);
    return head;
  }

  /** Logs in as `account`; returns the session token. */
  async login(account, password) {
    const { login } = await this.graphql('mutation($a: String!, $p: String!) { login(account: $a, password: $p) { token } }', { a: account, p: password }, null);
    return login.token;
  }

  /** Changes admin's first password (for scenarios that do not test the first login). */
  async adminReady() {
    if (this.adminToken) return this.adminToken;
    const pending = await this.login('admin', this.firstPassword);
    await this.graphql('mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }', { o: this.firstPassword, n: PASSWORD }, pending);
    this.adminToken = await this.login('admin', PASSWORD);
    return this.adminToken;
  }

  /** What the local `hello` (in `role`, if given) answers (the version it was built as), or null. */
  async serving(role) {
    try {
      const port = readFileSync(join(this.vm, role ? `hello-${role}` : 'hello', 'current/port'), 'utf8').trim();
      const response = await fetch(`http://127.0.0.1:${port}/`);
      return (await response.text()).trim();
    } catch {
      return null;
    }
  }

  /** The newest commit of the state remote: author name, subject. */
  lastCommit() {
    const [author, subject] = git(this.remote, 'log', '-1', '--format=%an%x00%s', 'main').split('\0');
    return { author, subject };
  }

  /** Stops every process (the updater first, so its service stops with it) and removes the dir. */
  async stop() {
    for (const child of [...this.children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      const timer = new Promise((done) => setTimeout(done, 15_000, 'timeout'));
      if ((await Promise.race([exited, timer])) === 'timeout') child.kill('SIGKILL');
    }
    if (!process.env.VUPDATE_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}
