// Debian's Chromium driven by playwright-core (no browser download), headless, with the
// flags this machine's closed network needs, and a screenshot helper.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORD } from './world.mjs';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A headless Chromium. */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/install-test-deps.sh (or set CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Saves a PNG of the page as `<dir>/<name>.png`. */
export async function shot(page, dir, name) {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: false });
}

/** Logs in through the login page (already on it or going there). */
export async function logIn(page, base, account, password) {
  if (!page.url().includes('/login')) await page.goto(`${base}/login`);
  await page.getByLabel('Account').fill(account);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** A headless Chromium with one page logged in as admin on `world`'s overview (after
 * `world.adminReady()`); `options` go to its context. */
export async function adminPage(world, options = {}) {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 }, ...options });
  const page = await context.newPage();
  await logIn(page, world.base, 'admin', PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  return { browser, context, page };
}
