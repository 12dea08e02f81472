import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, chromiumTest } from '../support/chromium';
import { synthesizeChatExample } from './fixtures/chat-example';
import { cliToken, GatewayProcess, stopAllGateways } from './support/gateway-process';

/**
 * The browser page (examples/chat/web) in headless Chromium: two pages connect through the gateway
 * with the bundled client, their tokens offered as a subprotocol; one sends, both show the message.
 * Needs `npx projen bundle` (the page loads authws-client.js, the client's browser build).
 */

const SECRET = 'browser-test-secret';
const browserTest = chromiumTest();

let gateway: GatewayProcess | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await stopAllGateways();
});

browserTest('two pages connect with tokens; a message one sends shows on both', async () => {
  const assembly = synthesizeChatExample();
  gateway = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET, '--web', join(__dirname, '..', '..', 'examples', 'chat', 'web')]);
  const pageUrl = (token: string) => `${gateway!.urls[0].replace(/^ws:/, 'http:').replace(/\/dev$/, '/')}?stage=dev&token=${token}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
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
