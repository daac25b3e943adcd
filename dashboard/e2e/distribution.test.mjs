// The Distribution page of a distribution serving HTTPS with a self-signed certificate
// (no updater): its program's version and self-update state, the install line and the
// TLS public-key pin with copy buttons, and an administrator's enrolment token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { World, outputDir } from './world.mjs';
import { adminPage, shot } from './browser.mjs';

// The certificate is self-signed: this process's own requests (not the browser's) skip
// the check, as `curl -k` with the pin would.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let world;
let browser;
let context;
let page;
const shots = outputDir('screenshots');

before(async () => {
  world = await World.start({ updater: false, tls: true });
  await world.adminReady();
  ({ browser, context, page } = await adminPage(world, { ignoreHTTPSErrors: true }));
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: world.base });
});

after(async () => {
  await browser?.close();
  await world?.stop();
});

/** What the page's clipboard holds. */
const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

test('the Distribution page shows the version, self-update and the key pin to copy next to the install line', async () => {
  assert.match(world.base, /^https:/);
  assert.match(world.pin, /^sha256\/\/[A-Za-z0-9+/]+=*$/);
  const { status, distributionInfo } = await world.graphql('{ status { updaterInstallLine publicKeyPin } distributionInfo { version } }');
  assert.equal(status.publicKeyPin, world.pin, 'the pin the server printed');

  await page.getByRole('navigation', { name: 'Main' }).getByText('Distribution').click();
  await page.getByRole('heading', { name: 'Distribution' }).waitFor();
  assert.equal(await page.getByTestId('program-version').textContent(), distributionInfo.version);
  await page.getByTestId('self-update').filter({ hasText: 'off: no client version of the service distribution is desired' }).waitFor();
  assert.equal(await page.getByTestId('install-line').textContent(), status.updaterInstallLine);
  assert.equal(await page.getByTestId('public-key-pin').textContent(), world.pin);
  await shot(page, shots, 'distribution-tls');

  await page.getByRole('button', { name: 'Copy the public-key pin' }).click();
  await page.getByRole('button', { name: 'Copy the public-key pin' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await clipboard(), world.pin);
  await page.getByRole('button', { name: 'Copy the install line' }).click();
  assert.equal(await clipboard(), status.updaterInstallLine);
});

test('an administrator issues an enrolment token and copies its line, shown once', async () => {
  await page.goto(`${world.base}/distribution`);
  await page.getByLabel('Services').fill('hello');
  await page.getByRole('button', { name: 'Issue an enrolment token' }).click();
  const line = (await page.getByTestId('issued-line').textContent()).trim();
  assert.match(line, /install\/updater\.sh/);
  assert.match(line, /hello/);
  assert.ok(line.includes(world.pin), 'the line pins the key');
  await page.getByRole('button', { name: 'Copy the line with its token' }).click();
  assert.equal(await clipboard(), line);
  const { enrolmentTokens } = await world.graphql('{ enrolmentTokens { services } }');
  assert.deepEqual(enrolmentTokens.map((t) => t.services), [['hello']]);
  await page.reload();
  await page.getByRole('heading', { name: 'Distribution' }).waitFor();
  assert.equal(await page.getByTestId('issued-line').count(), 0, 'not shown again');
});
