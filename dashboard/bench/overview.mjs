// Benchmark (prints figures; asserts nothing): a cold load of the dashboard's overview in
// headless Chromium against a real distribution whose status has 200 services and 2,000
// instances. Prints, for each of RUNS loads (a new browser context each: empty cache),
// the time to first contentful paint, the time until the service rows are shown, and the
// JavaScript the page loaded (bytes on the wire, gzipped by the server, and unpacked).
//
//   npm run bench            (VUPDATE_BIN, CHROMIUM, RUNS=5 to change)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { World, eventually } from '../e2e/world.mjs';
import { launch } from '../e2e/browser.mjs';

const SERVICES = 200;
const PER_SERVICE = 10;
const RUNS = Number(process.env.RUNS ?? 5);

const names = Array.from({ length: SERVICES }, (_, i) => `svc${String(i + 1).padStart(3, '0')}`);
const services = Object.fromEntries(
  // Sources that do not exist: each build fails at once, so the status is real but no
  // time goes into building 200 images.
  names.map((name) => [name, `developer:\n  sources:\n    - name: src\n      git:\n        url: %%DIR%%/nowhere\n        branch: main\n`]),
);
const desired = Object.fromEntries(names.map((name) => [name, 'orbit-1.0.0']));

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

const world = await World.start({ services, desired, updater: false });
let browser;
try {
  const token = await world.adminReady();
  // 2,000 instances report states: most on the desired version, some behind.
  const updater = readFileSync(join(world.dir, 'data/updater.token'), 'utf8').trim();
  const now = new Date().toISOString();
  const states = names.flatMap((service, s) =>
    Array.from({ length: PER_SERVICE }, (_, i) => ({
      instance: `vm-${String(s * PER_SERVICE + i + 1).padStart(4, '0')}`,
      service,
      directory: `/srv/${service}`,
      state: { time: now, version: i === 0 ? 'orbit-0.9.0' : 'orbit-1.0.0', installTime: now, startTime: now, failuresCount: 0 },
    })),
  );
  for (let i = 0; i < states.length; i += 500) {
    await world.graphql('mutation($s: [ServiceStateInput!]!) { setServiceStates(states: $s) }', { s: states.slice(i, i + 500) }, updater);
  }
  const status = await eventually('200 services with 2,000 instances in the status', async () => {
    const { status } = await world.graphql('{ status { services { service instancesOnDesired instancesNotOnDesired } } }', {}, token);
    const instances = status.services.reduce((n, s) => n + s.instancesOnDesired + s.instancesNotOnDesired, 0);
    return status.services.length === SERVICES && instances === SERVICES * PER_SERVICE ? status : null;
  });
  const timed = async (query) => {
    const started = performance.now();
    await world.graphql(query, {}, token);
    return performance.now() - started;
  };
  const statusMs = await timed('{ status { services { service instances { instance version } } } }');
  const overviewMs = await timed(
    '{ status { synced stateRepo { commit tip } services { service sync desiredDeveloperVersion desiredClientVersion developerImage clientImage instancesOnDesired instancesNotOnDesired builds { target version state task } } } serviceProfiles { profile services } }',
  );

  browser = await launch();
  const session = JSON.stringify({ token, account: 'admin', expiresAt: new Date(Date.now() + 3600_000).toISOString() });
  const rows = [];
  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    await context.addInitScript((value) => localStorage.setItem('vupdate.session', value), session);
    const page = await context.newPage();
    await page.goto(`${world.base}/`);
    await page.waitForSelector('[role=row][data-service]');
    const figures = await page.evaluate(() => {
      const shown = performance.now();
      const paint = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN;
      const scripts = performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.js'));
      return {
        paint,
        shown,
        wire: scripts.reduce((n, e) => n + e.encodedBodySize, 0),
        unpacked: scripts.reduce((n, e) => n + e.decodedBodySize, 0),
        files: scripts.length,
      };
    });
    rows.push(figures);
    await context.close();
  }
  console.log(`overview cold load: ${SERVICES} services, ${status.services.length * PER_SERVICE} instances, ${RUNS} runs (headless Chromium, loopback)`);
  console.log(`  server: the overview's query ${overviewMs.toFixed(0)} ms; status with every instance ${statusMs.toFixed(0)} ms (${process.env.VUPDATE_BIN ?? 'debug build'})`);
  rows.forEach((r, i) =>
    console.log(`  run ${i + 1}: first render ${r.paint.toFixed(0)} ms, data shown ${r.shown.toFixed(0)} ms, JS ${kb(r.wire)} gzipped (${kb(r.unpacked)} unpacked) in ${r.files} files`),
  );
  console.log(`  median: first render ${median(rows.map((r) => r.paint)).toFixed(0)} ms, data shown ${median(rows.map((r) => r.shown)).toFixed(0)} ms (target < 1000 ms)`);
  console.log(`  initial JS: ${kb(rows[0].wire)} gzipped (target < 350 KB)`);
} finally {
  await browser?.close();
  await world.stop();
}
process.exit(0);
