import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where the screenshots go (git-ignored); CI keeps the folder as the run's evidence. */
export const SCREENSHOTS = join('test-output', 'browser');

function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return undefined;
}

/**
 * Debian's headless Chromium, or undefined (after printing why) when it is not installed; in
 * CI its absence is an error, so the browser tests cannot silently stop running.
 */
export async function launchChromium(): Promise<Browser | undefined> {
  const executablePath = findChromium();
  if (!executablePath) {
    const why = 'chromium is not on PATH (Debian/Ubuntu: apt-get install chromium)';
    if (process.env.CI === 'true') throw new Error(`the browser test must run in CI: ${why}`);
    console.log(`      skipped: ${why}`);
    return undefined;
  }
  return chromium.launch({
    executablePath,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}
