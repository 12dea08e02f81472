import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { synthesizeQueryTokenChat } from './fixtures/query-token-chat';
import { cliToken, GatewayProcess, stopAllGateways } from './support/gateway-process';

/**
 * The browser page (examples/chat/web) in headless Chromium: two pages connect through the gateway
 * with query-string tokens; one sends, both show the message.
 */

const CHROMIUM = '/usr/bin/chromium';
const SECRET = 'browser-test-secret';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  // The CI script installs it (apt-get install -y chromium); locally the test is skipped, loudly.
  console.warn(`Skipping the browser test: ${CHROMIUM} is missing (apt-get install -y chromium).`);
}
const browserTest = haveChromium ? test : test.skip;

let gateway: GatewayProcess | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await stopAllGateways();
});

browserTest('two pages connect with tokens; a message one sends shows on both', async () => {
  const assembly = synthesizeQueryTokenChat();
  gateway = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET, '--web', join(__dirname, '..', '..', 'examples', 'chat', 'web')]);
  const pageUrl = (token: string) => `${gateway!.urls[0].replace(/^ws:/, 'http:').replace(/\/dev$/, '/')}?stage=dev&token=${token}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  await alice.goto(pageUrl(await cliToken(SECRET, 'alice')));
  await bob.goto(pageUrl(await cliToken(SECRET, 'bob')));
  for (const page of [alice, bob]) await page.waitForSelector('#status[data-state="open"]');

  await alice.fill('#text', 'Hello from the browser');
  await alice.click('#send');

  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li');
    expect(await page.locator('#messages li').allTextContents()).toEqual(['alice: Hello from the browser']);
  }
});
