import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { synthesizeChatExample } from '../local/fixtures/chat-example';
import { GatewayProcess, stopAllGateways } from '../local/support/gateway-process';
import { CHROMIUM, CHROMIUM_ARGS, chromiumTest } from '../support/chromium';
import { signToken } from './support/local-gateway';

/**
 * The client's browser build (client/browser.js, the global `AuthWs`) in headless Chromium against
 * `authws local` with short limits, as test/client/local.test.ts runs it in Node.js: the browser
 * offers its token as a subprotocol and cannot see a refused handshake's status.
 * Needs `npx projen bundle` (the example page loads the build as authws-client.js).
 */

const SECRET = 'client-browser-secret';
const ROOT = join(__dirname, '..', '..');
const browserTest = chromiumTest();
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await stopAllGateways();
});

async function openPage(gateway: GatewayProcess): Promise<Page> {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  // Fresh 6-second tokens for the page's token providers; `revoke(user)` makes them fail.
  const revoked = new Set<string>();
  await page.exposeFunction('freshToken', (user: string) => {
    if (revoked.has(user)) throw new Error(`${user} was signed out`);
    return signToken(SECRET, user, 6);
  });
  await page.exposeFunction('revoke', (user: string) => revoked.add(user));
  // The page without ?token= only loads the client: the tests drive clients of their own.
  await page.goto(gateway.urls[0].replace(/^ws:/, 'http:').replace(/\/dev$/, '/'));
  await page.waitForFunction(() => typeof (globalThis as any).AuthWs?.connect === 'function');
  return page;
}

browserTest('the page loads the bundled browser build', () => {
  expect(readFileSync(join(ROOT, 'examples', 'chat', 'web', 'authws-client.js'), 'utf8')).toBe(readFileSync(join(ROOT, 'client', 'browser.js'), 'utf8'));
});

browserTest('over many 5 s lifetimes, 2 s idle timeouts and 6 s tokens, every broadcast arrives exactly once', async () => {
  const gateway = await GatewayProcess.start(['--assembly', synthesizeChatExample(), '--secret', SECRET, '--idle-timeout', '2s', '--max-lifetime', '5s',
    '--web', join(ROOT, 'examples', 'chat', 'web')]);
  const page = await openPage(gateway);
  const result = await page.evaluate(async (url) => {
    const { AuthWs, freshToken } = globalThis as any;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const watch = (user: string) => {
      const seen = { tokens: 0, states: [] as string[], rollOvers: 0, opens: 0, errors: [] as string[], messages: [] as any[], reconnects: 0 };
      const client = AuthWs.connect({
        url,
        token: () => {
          seen.tokens++;
          return freshToken(user);
        },
        keepAliveInterval: 1_000,
        rollOverAfter: 3_500,
        reauthBefore: 4_000,
        reconnectDelay: 100,
      });
      client.on('state', (state: string) => seen.states.push(state));
      client.on('open', (event: { rollOver: boolean }) => {
        seen.opens++;
        if (event.rollOver) seen.rollOvers++;
      });
      client.on('error', (error: { code: string }) => seen.errors.push(error.code));
      client.on('message', (frame: any) => seen.messages.push(frame));
      client.on('reconnecting', () => seen.reconnects++);
      return { client, seen };
    };
    const listener = watch('listener');
    const publisher = watch('publisher');
    await Promise.all([listener.client.whenOpen(), publisher.client.whenOpen()]);
    const started = Date.now();
    let sent = 0;
    while (Date.now() - started < 18_000) {
      publisher.client.broadcast(++sent);
      await sleep(50);
    }
    const received = () => listener.seen.messages.filter((frame) => frame.sender === 'publisher').map((frame) => frame.message as number);
    const deadline = Date.now() + 10_000;
    while (received().length < sent && Date.now() < deadline) await sleep(20);
    await sleep(500);
    listener.client.close();
    publisher.client.close();
    return { sent, received: received(), listener: { ...listener.seen, messages: undefined }, publisher: { ...publisher.seen, messages: undefined } };
  }, gateway.urls[0]);

  expect(result.sent).toBeGreaterThan(250);
  expect(result.received.length).toBe(result.sent);
  expect([...result.received].sort((a, b) => a - b)).toEqual(Array.from({ length: result.sent }, (_, i) => i + 1));
  for (const seen of [result.listener, result.publisher]) {
    expect(seen.errors).toEqual([]);
    expect(seen.reconnects).toBe(0);
    expect(seen.states).toEqual(['open', 'closed']);
    expect(seen.rollOvers).toBeGreaterThanOrEqual(4);
    expect(seen.tokens).toBeGreaterThan(seen.opens);
  }
}, 90_000);

browserTest('a revoked user stops reconnecting with a clear error, in the browser too', async () => {
  const gateway = await GatewayProcess.start(['--assembly', synthesizeChatExample(), '--secret', SECRET, '--max-lifetime', '2s', '--web', join(ROOT, 'examples', 'chat', 'web')]);
  const page = await openPage(gateway);
  const result = await page.evaluate(async (url) => {
    const { AuthWs, freshToken, revoke } = globalThis as any;
    const client = AuthWs.connect({ url, token: () => freshToken('mallory'), reconnectDelay: 100 });
    const errors: string[] = [];
    client.on('error', (error: { code: string; message: string }) => errors.push(`${error.code}: ${error.message}`));
    await client.whenOpen();
    await revoke('mallory');
    const close = await new Promise<any>((resolve) => client.on('close', (event: any) => !event.willReconnect && resolve(event)));
    return { close, errors, state: client.state };
  }, gateway.urls[0]);
  expect(result.state).toBe('closed');
  expect(result.close.willReconnect).toBe(false);
  expect(result.errors).toEqual([expect.stringMatching(/^TokenUnavailable: .*mallory was signed out.*not reconnecting/)]);
}, 60_000);
