import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium); .ci/run installs it when missing. */
export const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Without Chromium a developer's run skips the browser tests; CI (CI=true) fails instead. */
export const chromiumMissing = !existsSync(chromiumPath) && !process.env['CI'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export const screenshotDirectory = new URL('../../test-artifacts/screenshots/', import.meta.url);

/** Saves a full-page screenshot as test-artifacts/screenshots/<name>.png (git-ignored). */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDirectory, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, screenshotDirectory).pathname, fullPage: true });
}

/** True when the page is wider than the viewport (it would scroll sideways on a phone). */
export async function overflowsHorizontally(page: Page): Promise<boolean> {
  // A string, evaluated in the page: this project compiles without the DOM library.
  return page.evaluate<boolean>('document.documentElement.scrollWidth > document.documentElement.clientWidth + 1');
}
