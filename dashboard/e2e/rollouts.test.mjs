// Rollouts by waves in the browser, against the real distribution: a state repo whose
// rollout.yaml has three waves (by label, by name pattern, everyone else), instances
// reporting through the updater's API with their labels, and a commit desiring a new
// client version of hello. The page shows the first wave reached and the others
// waiting; reports that keep the canary on the new version for its healthyFor promote
// the next wave; a rollback there halts the rollout, which the page shows as an alert
// with the known-bad record and the fault report. Hosts shows and filters the labels.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, eventually, outputDir, versionsYaml } from './world.mjs';
import { adminPage, shot } from './browser.mjs';

const ROLLOUT = `onFailure: hold
waves:
  - name: canary
    labels: {ring: canary}
    healthyFor: 2s
  - name: europe
    instances: ["eu-*"]
    healthyFor: 1s
  - name: everyone
    instances: ["*"]
`;

const FROM = 'orbit-1.0.0';
const TO = 'orbit-1.0.1';

/** Each instance's labels and the version it runs (since when), as its updater reports. */
const fleet = {
  'vm-canary': { labels: [{ name: 'ring', value: 'canary' }, { name: 'zone', value: 'us' }], version: FROM },
  'eu-1': { labels: [{ name: 'zone', value: 'eu' }], version: FROM },
  'eu-2': { labels: [{ name: 'zone', value: 'eu' }], version: FROM },
  'vm-rest': { labels: [], version: FROM },
};

let world;
let browser;
let page;
const shots = outputDir('screenshots');

/** Every instance reports its state now (a report older than the server's expiration
 * would no longer count in its wave). */
async function reportFleet() {
  const now = new Date().toISOString();
  await world.report(
    Object.entries(fleet).map(([instance, host]) => ({
      instance,
      service: 'hello',
      directory: '/srv/hello',
      labels: host.labels,
      state: host.failed
        ? { time: now, version: host.version, failedVersion: host.failed, updateError: { critical: false, error: `${host.failed} exited with 3 within its start window` }, failuresCount: 1 }
        : { time: now, version: host.version, installTime: host.since ?? now, startTime: host.since ?? now, failuresCount: 0 },
    })),
  );
}

/** The status of hello's rollout. */
async function rollout() {
  const { status } = await world.graphql('{ status { rollouts { service state currentWave waves { name promotedAt } } } }');
  return status.rollouts.find((r) => r.service === 'hello');
}

const wave = (name) => page.locator(`[data-rollout=hello] [data-wave=${name}]`);
const phase = (name, text) => wave(name).getByTestId('wave-phase').filter({ hasText: text }).waitFor();

before(async () => {
  world = await World.start({ updater: false, client: { hello: FROM }, rollout: ROLLOUT });
  await world.adminReady();
  ({ browser, page } = await adminPage(world));
});

after(async () => {
  await browser?.close();
  await world?.stop();
});

test('the hosts page shows each host its labels and filters by one', async () => {
  await reportFleet();
  await page.goto(`${world.base}/hosts`);
  await page.locator('[data-host=vm-canary]').getByTestId('labels').getByText('ring=canary').waitFor();
  await page.locator('[data-host=eu-1]').getByTestId('labels').getByText('zone=eu').waitFor();
  await page.getByTestId('hosts-count').filter({ hasText: '4 hosts reporting' }).waitFor();

  await page.getByRole('combobox', { name: 'With label' }).fill('zone=eu');
  await page.getByRole('button', { name: 'Filter by label' }).click();
  await page.waitForURL(/label=zone%3Deu$/);
  await page.getByTestId('hosts-count').filter({ hasText: '2 hosts reporting with label zone=eu' }).waitFor();
  assert.equal(await page.locator('[data-host=vm-canary]').count(), 0, 'vm-canary is in zone us');
  await shot(page, shots, 'hosts-labels');

  // A name alone matches any value.
  await page.goto(`${world.base}/hosts?label=ring`);
  await page.getByTestId('hosts-count').filter({ hasText: '1 host reporting with label ring' }).waitFor();
  await page.locator('[data-host=vm-canary]').waitFor();
});

test('a new desired version reaches the canary wave first, the others wait; a healthy canary promotes the next wave', async () => {
  await reportFleet();
  const commit = await world.commitState({ 'desired/client.yaml': versionsYaml({ hello: TO }) }, `Roll out hello ${TO}`);
  await eventually('the rollout started', async () => (await rollout())?.currentWave === 'canary');

  // The overview marks the service and shows the rollout under way.
  await page.goto(`${world.base}/`);
  await page.locator('[role=row][data-service=hello]').getByTestId('rollout-mark').getByText('wave canary').waitFor();
  await page.locator('[data-rollout=hello]').getByTestId('rollout-state').filter({ hasText: 'rolling: wave canary (1 of 3)' }).waitFor();
  await shot(page, shots, 'overview-rollout');

  await page.getByRole('navigation', { name: 'Main' }).getByText('Rollouts').click();
  await page.getByRole('heading', { name: 'Rollouts' }).waitFor();
  const card = page.locator('[data-rollout=hello]');
  await card.getByText(`${FROM} → ${TO}`).waitFor();
  await card.getByText(commit.slice(0, 10)).waitFor();
  await phase('canary', 'current');
  await phase('europe', 'waiting');
  await phase('everyone', 'waiting');
  assert.equal(await wave('canary').getAttribute('aria-current'), 'step', 'the current wave stands out');
  assert.equal(await wave('europe').getAttribute('aria-current'), null);
  assert.equal(await wave('canary').getByTestId('wave-instances').textContent(), '1');
  assert.equal(await wave('europe').getByTestId('wave-instances').textContent(), '2');
  assert.equal(await wave('everyone').getByTestId('wave-instances').textContent(), '1');
  assert.equal(await wave('canary').getByTestId('wave-updated').textContent(), '0');
  await shot(page, shots, 'rollout-canary');

  // The canary runs the new version: updated at once, healthy after 2 s, then promoted.
  // The page reads itself again (no reload): the promotion is not pushed.
  fleet['vm-canary'].version = TO;
  fleet['vm-canary'].since = new Date().toISOString();
  await reportFleet();
  await phase('canary', 'promoted');
  await phase('europe', 'current');
  await phase('everyone', 'waiting');
  assert.equal(await wave('canary').getByTestId('wave-healthy').textContent(), '1');
  assert.equal(await wave('europe').getByTestId('wave-updated').textContent(), '0');
  assert.equal(await wave('europe').getAttribute('aria-current'), 'step');
  const status = await rollout();
  assert.equal(status.currentWave, 'europe');
  assert.ok(status.waves[0].promotedAt, 'the server promoted the canary');
  await shot(page, shots, 'rollout-europe');
});

test('a rollback beyond maxFailures halts the rollout: an alert with the reason, the known-bad version and its fault report', async () => {
  const fault = await world.faultReport('eu-1', 'hello', TO);
  fleet['eu-1'].failed = TO;
  await reportFleet();
  await eventually('the rollout halted', async () => (await rollout())?.state === 'halted');

  await page.goto(`${world.base}/rollouts`);
  const alert = page.locator('[data-rollout=hello]').getByTestId('rollout-halted');
  await alert.getByText(`The rollout of hello ${TO} halted: later waves keep ${FROM}`).waitFor();
  await alert.getByText(/1 of 2 instances of wave `europe` rolled orbit-1\.0\.1 back/).waitFor();
  await alert.getByTestId('rollout-known-bad').getByText(`exited with 3 within its start window`).waitFor();
  await phase('europe', 'halted here');
  await phase('everyone', 'waiting');
  assert.equal(await wave('europe').getByTestId('wave-failed').textContent(), '1');
  await shot(page, shots, 'rollout-halted');

  // The overview marks it halted too.
  await page.goto(`${world.base}/`);
  await page.locator('[role=row][data-service=hello]').getByTestId('rollout-mark').getByText('halted').waitFor();
  await page.locator('[data-rollout=hello]').getByTestId('rollout-halted').waitFor();

  // The evidence: its fault report, then every report of the service.
  await page.goto(`${world.base}/rollouts`);
  await alert.getByRole('link', { name: fault }).click();
  await page.waitForURL(new RegExp(`/faults\\?id=${fault}$`));
  await page.getByText(`${TO} cannot start`).waitFor();
  await page.goto(`${world.base}/rollouts`);
  await alert.getByRole('link', { name: 'every fault report of hello' }).click();
  await page.waitForURL(/\/faults\?service=hello$/);
  await page.getByText('eu-1', { exact: true }).waitFor();
  await page.getByText(fault, { exact: true }).waitFor({ state: 'attached' });
});
