import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { synthesizeChatExample } from '../local/fixtures/chat-example';
import { GatewayProcess, stopAllGateways } from '../local/support/gateway-process';
import { CHROMIUM, CHROMIUM_ARGS, chromiumTest } from '../support/chromium';
import { freePort, PinnedGateway, signToken, stopPinnedGateways } from './support/local-gateway';

/**
 * The client's browser build (client/browser.js, the global `AuthWs`) in headless Chromium against
 * `authws local` with short limits, as test/client/local.test.ts runs it in Node.js: the browser
 * offers its token as a subprotocol and cannot see a refused handshake's status. And the example's
 * page (examples/chat/web) in its room.
 * Needs `npx projen bundle` (the example page loads the build as authws-client.js).
 */

const SECRET = 'client-browser-secret';
const ROOT = join(__dirname, '..', '..');
const browserTest = chromiumTest();
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  await stopAllGateways();
  await stopPinnedGateways();
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the example page lists exactly `members` as the room's members. */
function membersAre(page: Page, members: string): Promise<unknown> {
  return page.waitForFunction((want) => (globalThis as any).document.getElementById('members').textContent === want, members);
}

/** A page of the gateway at `url` (its WebSocket URL) with the client loaded and token functions exposed. */
async function openPage(url: string): Promise<Page> {
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
  await page.goto(url.replace(/^ws:/, 'http:').replace(/\/dev$/, '/'));
  await page.waitForFunction(() => typeof (globalThis as any).AuthWs?.connect === 'function');
  return page;
}

browserTest('the page loads the bundled browser build', () => {
  expect(readFileSync(join(ROOT, 'examples', 'chat', 'web', 'authws-client.js'), 'utf8')).toBe(readFileSync(join(ROOT, 'client', 'browser.js'), 'utf8'));
});

browserTest('over many 5 s lifetimes, 2 s idle timeouts and 6 s tokens, a room subscriber gets every published message once, in id order', async () => {
  const gateway = await GatewayProcess.start(['--assembly', synthesizeChatExample(), '--secret', SECRET, '--idle-timeout', '2s', '--max-lifetime', '5s',
    '--web', join(ROOT, 'examples', 'chat', 'web')]);
  const page = await openPage(gateway.urls[0]);
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
    const received: Array<{ id: number; message: string; replay: boolean }> = [];
    await listener.client.subscribe('rooms/browser', (m: any) => received.push({ id: m.id, message: m.message, replay: m.replay })).ready;
    // Three users publish, each well under the API's 100 publishes per 10 s.
    const publishers = ['ann', 'ben', 'cat'].map(watch);
    await Promise.all(publishers.map(({ client }) => client.whenOpen()));
    const started = Date.now();
    const acknowledged: Array<{ id: number; message: string }> = [];
    await Promise.all(publishers.map(async ({ client }, p) => {
      for (let n = 1; Date.now() - started < 18_000; n++) {
        const message = `${p}:${n}`;
        const { id } = await client.publish('rooms/browser', message);
        acknowledged.push({ id, message });
        await sleep(150);
      }
    }));
    const deadline = Date.now() + 10_000;
    while (received.length < acknowledged.length && Date.now() < deadline) await sleep(20);
    await sleep(1_000); // late duplicates would show up here
    for (const { client } of [listener, ...publishers]) client.close();
    const strip = ({ seen }: { seen: any }) => ({ ...seen, messages: undefined });
    return { acknowledged, received, listener: strip(listener), publishers: publishers.map(strip) };
  }, gateway.urls[0]);

  const total = result.acknowledged.length;
  expect(total).toBeGreaterThan(200);
  expect(result.received.map((message) => message.id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  const sent = new Map(result.acknowledged.map(({ id, message }) => [id, message]));
  expect(result.received.every(({ id, message }) => sent.get(id) === message)).toBe(true);
  for (const seen of [result.listener, ...result.publishers]) {
    expect(seen.errors).toEqual([]);
    expect(seen.reconnects).toBe(0);
    expect(seen.states).toEqual(['open', 'closed']);
    expect(seen.rollOvers).toBeGreaterThanOrEqual(4);
    expect(seen.tokens).toBeGreaterThan(seen.opens);
  }
}, 90_000);

browserTest('the example page joins its room, lists who is there, and shows what is published to it', async () => {
  const gateway = await GatewayProcess.start(['--assembly', synthesizeChatExample(), '--secret', SECRET, '--web', join(ROOT, 'examples', 'chat', 'web')]);
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const pageUrl = async (user: string, room: string) =>
    `${gateway.urls[0].replace(/^ws:/, 'http:').replace(/\/dev$/, '/')}?stage=dev&room=${room}&token=${await signToken(SECRET, user, 600)}`;
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  const carol = await browser.newPage();
  await alice.goto(await pageUrl('alice', 'tea'));
  await alice.waitForSelector('#status[data-state="open"]');
  await bob.goto(await pageUrl('bob', 'tea'));
  await carol.goto(await pageUrl('carol', 'coffee'));
  for (const page of [bob, carol]) await page.waitForSelector('#status[data-state="open"]');
  expect(await alice.textContent('#status')).toBe('Connected to rooms/tea');
  // Each page asks for the members again when someone joins.
  await membersAre(alice, 'alice, bob');
  await membersAre(bob, 'alice, bob');
  expect(await carol.textContent('#members')).toBe('carol');

  await bob.fill('#text', 'tea is ready');
  await bob.click('#send');
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li');
    expect(await page.locator('#messages li').allTextContents()).toEqual(['bob: tea is ready']);
  }
  await pause(300);
  expect(await carol.locator('#messages li').count()).toBe(0); // another room
  await bob.close();
  await membersAre(alice, 'alice');
}, 60_000);

browserTest('a revoked user stops reconnecting with a clear error, in the browser too', async () => {
  const gateway = await GatewayProcess.start(['--assembly', synthesizeChatExample(), '--secret', SECRET, '--max-lifetime', '2s', '--web', join(ROOT, 'examples', 'chat', 'web')]);
  const page = await openPage(gateway.urls[0]);
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

browserTest('the gateway killed and restarted: the browser client reconnects, resumes, and takes the room\'s restarted ids as new', async () => {
  const port = await freePort();
  const args = ['--assembly', synthesizeChatExample(), '--secret', SECRET, '--web', join(ROOT, 'examples', 'chat', 'web')];
  let gateway = await PinnedGateway.start(args, port);
  const page = await openPage(gateway.url);
  await page.exposeFunction('restartGateway', async () => {
    await gateway.stop('SIGKILL');
    await pause(500);
    gateway = await PinnedGateway.start(args, port);
  });
  const result = await page.evaluate(async (url) => {
    const { AuthWs, freshToken, restartGateway } = globalThis as any;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const until = async (predicate: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!predicate() && Date.now() < deadline) await sleep(20);
    };
    const connectAs = (user: string) => AuthWs.connect({
      url, token: () => freshToken(user), reconnectDelay: 100, maxReconnectDelay: 1_000, requestTimeout: 30_000,
    });
    const listener = connectAs('listener');
    const publisher = connectAs('publisher');
    const errors: string[] = [];
    const resets: string[] = [];
    let reconnects = 0;
    for (const client of [listener, publisher]) client.on('error', (error: { code: string }) => errors.push(error.code));
    listener.on('reconnecting', () => reconnects++);
    const received: Array<{ id: number; message: string }> = [];
    await listener.subscribe('rooms/restart', (m: any) => received.push({ id: m.id, message: m.message }), {
      onReset: (channel: string) => resets.push(channel),
    }).ready;
    for (let n = 1; n <= 5; n++) await publisher.publish('rooms/restart', `before ${n}`);
    await until(() => received.length === 5);
    await restartGateway();
    await Promise.all([listener.whenOpen(), publisher.whenOpen()]);
    await until(() => resets.length === 1);
    for (let n = 1; n <= 10; n++) await publisher.publish('rooms/restart', `after ${n}`);
    await until(() => received.length === 15);
    await sleep(500);
    listener.close();
    publisher.close();
    return { received, resets, errors, reconnects };
  }, gateway.url);

  expect(result.reconnects).toBeGreaterThan(0);
  expect(result.resets).toEqual(['rooms/restart']);
  expect(result.received).toEqual([
    ...Array.from({ length: 5 }, (_, i) => ({ id: i + 1, message: `before ${i + 1}` })),
    ...Array.from({ length: 10 }, (_, i) => ({ id: i + 1, message: `after ${i + 1}` })),
  ]);
  expect(result.errors).toEqual([]);
}, 90_000);
