import { existsSync } from 'node:fs';

/** The Chromium the browser tests drive (the CI script installs it with apt-get). */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags for headless Chromium in a container. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

/**
 * `test` when Chromium is installed. Without it the tests are skipped, loudly, on a developer's
 * machine; under CI (`CI=true`) they run and fail, so a missing browser never passes silently.
 */
export function chromiumTest(): jest.It {
  if (existsSync(CHROMIUM)) return test;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    return ((name: string, _fn: unknown, timeout?: number) => test(name, () => {
      throw new Error(`${CHROMIUM} is missing, and CI=true requires the browser tests to run: apt-get install -y chromium`);
    }, timeout)) as unknown as jest.It;
  }
  console.warn(`Skipping the browser tests: ${CHROMIUM} is missing (apt-get install -y chromium).`);
  return test.skip;
}
