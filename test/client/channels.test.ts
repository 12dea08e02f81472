import WebSocket from 'ws';
import { AuthWsClient, AuthWsError, ChannelMessage, connect, ConnectOptions, PresenceEvent } from '../../src/client';
import { ChannelsServer, ChannelsServerOptions } from '../support/channels-server';

/**
 * The client's channels against a WebSocket peer that implements the channels wire protocol
 * (test/support/channels-server.ts): acks with requestId, message ids, `since` replay and gaps,
 * presence, error frames; and its reconnects and roll-overs keeping every channel message. The peer
 * can do what the real server does only by chance (deliver ids out of order, a live message before
 * the replay or the ack, restart a channel's ids): test/client/local.test.ts and browser.test.ts run
 * the same client against the real handlers in `authws local`.
 */

const SECRET = 'channels-test-secret';
const servers: ChannelsServer[] = [];
const clients: AuthWsClient[] = [];

afterEach(async () => {
  for (const open of clients.splice(0)) open.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function startServer(options: Partial<ChannelsServerOptions> = {}): Promise<ChannelsServer> {
  const server = await ChannelsServer.start({ secret: SECRET, ...options });
  servers.push(server);
  return server;
}

function client(server: ChannelsServer, userId: string, options: Partial<ConnectOptions> = {}): AuthWsClient {
  const created = connect({
    url: server.url, token: () => server.token(userId), WebSocket: WebSocket as any, reconnectDelay: 20, maxReconnectDelay: 100, ...options,
  });
  clients.push(created);
  return created;
}

/** Resolves once `predicate` holds, checking every 10 ms (jest's timeout bounds the wait). */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('subscribe is acknowledged, publish answers the id, and subscribers receive the message with it', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const bob = client(server, 'bob');
  const seen: ChannelMessage[] = [];
  await bob.subscribe('rooms/lobby', (message) => seen.push(message)).ready;
  await alice.whenOpen();

  expect(await alice.publish('rooms/lobby', { text: 'hi' })).toEqual({ id: 1 });
  expect(await alice.publish('rooms/lobby', 'again')).toEqual({ id: 2 });
  await until(() => seen.length === 2);
  expect(seen).toEqual([
    { channel: 'rooms/lobby', message: { text: 'hi' }, sender: 'alice', id: 1, replay: false },
    { channel: 'rooms/lobby', message: 'again', sender: 'alice', id: 2, replay: false },
  ]);
  // Every request of a client carried a requestId of its own.
  const requestIds = server.received.filter(({ userId }) => userId === 'alice').map(({ frame }) => frame.requestId);
  expect(requestIds).toHaveLength(2);
  expect(requestIds.every((id) => typeof id === 'string')).toBe(true);
  expect(new Set(requestIds).size).toBe(requestIds.length);
});

test('after a dropped connection the client resubscribes with since and receives what it missed, once', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const ids: number[] = [];
  const replayed: number[] = [];
  await alice.subscribe('rooms/lobby', (message) => {
    ids.push(message.id);
    if (message.replay) replayed.push(message.id);
  }).ready;
  for (let i = 1; i <= 3; i++) server.publish('rooms/lobby', `m${i}`);
  await until(() => ids.length === 3);

  const reconnecting = new Promise((resolve) => alice.on('reconnecting', resolve));
  server.dropAll();
  await reconnecting;
  for (let i = 4; i <= 6; i++) server.publish('rooms/lobby', `m${i}`);
  await until(() => ids.length === 6);

  expect(ids).toEqual([1, 2, 3, 4, 5, 6]);
  expect(replayed).toEqual([4, 5, 6]);
  const subscribes = server.received.filter(({ frame }) => frame.action === 'subscribe').map(({ frame }) => frame.since);
  expect(subscribes).toEqual([undefined, 3]);
});

test('messages replayed again are dropped by id', async () => {
  const server = await startServer();
  for (let i = 1; i <= 3; i++) server.publish('rooms/history', i);
  const alice = client(server, 'alice');
  const ids: number[] = [];
  await alice.subscribe('rooms/history', (message) => ids.push(message.id), { since: 0 }).ready;
  await until(() => ids.length === 3);
  // The same history once more (a raw subscribe from the start): nothing new for the handler.
  await alice.request({ action: 'subscribe', channel: 'rooms/history', since: 0 });
  server.publish('rooms/history', 4);
  await until(() => ids.length === 4);
  expect(ids).toEqual([1, 2, 3, 4]);
});

test('when history no longer reaches back, the ack says gap and onGap is called', async () => {
  const server = await startServer({ historyLimit: 2 });
  const alice = client(server, 'alice');
  const ids: number[] = [];
  const gaps: string[] = [];
  await alice.subscribe('rooms/fast', (message) => ids.push(message.id), { onGap: (channel) => gaps.push(channel) }).ready;
  server.publish('rooms/fast', 1);
  await until(() => ids.length === 1);
  const reconnecting = new Promise((resolve) => alice.on('reconnecting', resolve));
  server.dropAll();
  await reconnecting;
  for (let i = 2; i <= 5; i++) server.publish('rooms/fast', i);
  await until(() => ids.length === 3);
  expect(ids).toEqual([1, 4, 5]);
  expect(gaps).toEqual(['rooms/fast']);
});

test('presence events arrive per user, and presence() pages through members with a cursor', async () => {
  const server = await startServer({ presencePageSize: 2 });
  const bob = client(server, 'bob');
  const events: PresenceEvent[] = [];
  await bob.subscribe('rooms/lobby', () => undefined, { onPresence: (event) => events.push(event) }).ready;
  const alicePhone = client(server, 'alice');
  const aliceLaptop = client(server, 'alice');
  await alicePhone.subscribe('rooms/lobby', () => undefined).ready;
  await aliceLaptop.subscribe('rooms/lobby', () => undefined).ready;
  await client(server, 'carol').subscribe('rooms/lobby', () => undefined).ready;
  await until(() => events.length === 3);

  const first = await bob.presence('rooms/lobby');
  expect(first).toEqual({ members: ['alice', 'bob'], cursor: expect.any(String) });
  expect(await bob.presence('rooms/lobby', first.cursor!)).toEqual({ members: ['carol'], cursor: null });

  alicePhone.close();
  await sleep(100);
  expect(events.map((e) => `${e.event} ${e.userId}`)).toEqual(['joined bob', 'joined alice', 'joined carol']);
  aliceLaptop.close();
  await until(() => events.length === 4);
  expect(events[3]).toEqual({ channel: 'rooms/lobby', event: 'left', userId: 'alice' });
});

test('presence events are delivered once while roll-overs keep two connections open', async () => {
  const server = await startServer();
  const listener = client(server, 'listener', { rollOverAfter: 200 });
  const events: string[] = [];
  await listener.subscribe('rooms/busy', () => undefined, { onPresence: (event) => events.push(`${event.event} ${event.userId}`) }).ready;
  for (let i = 1; i <= 10; i++) {
    await client(server, `user${i}`).subscribe('rooms/busy', () => undefined).ready;
    await sleep(100);
  }
  await sleep(300);
  expect(events).toEqual(['joined listener', ...Array.from({ length: 10 }, (_, i) => `joined user${i + 1}`)]);
});

test('refused requests reject with typed errors that name the action, channel and requestId', async () => {
  const server = await startServer({ publishLimitPerUser: 2 });
  const alice = client(server, 'alice');
  const errors: AuthWsError[] = [];
  alice.on('error', (error) => errors.push(error));
  const forbidden = alice.subscribe('users/bob', () => undefined);
  await expect(forbidden.ready).rejects.toMatchObject({ name: 'AuthWsError', code: 'Forbidden', action: 'subscribe', channel: 'users/bob', requestId: expect.any(String) });
  expect(errors.map((error) => error.code)).toEqual(['Forbidden']);

  await expect(alice.publish('rooms//x', 1)).rejects.toMatchObject({ code: 'BadRequest', action: 'publish', channel: 'rooms//x' });
  await alice.publish('rooms/a', 1);
  await alice.publish('rooms/a', 2);
  await expect(alice.publish('rooms/a', 3)).rejects.toMatchObject({ code: 'RateLimited', action: 'publish' });
  await expect(alice.request({ action: 'dance' })).rejects.toBeInstanceOf(AuthWsError);

  // A refused subscription is not asked for again after a reconnect.
  const reopened = new Promise((resolve) => alice.on('open', resolve));
  server.dropAll();
  await reopened;
  expect(server.received.filter(({ frame }) => frame.channel === 'users/bob')).toHaveLength(1);
});

test('a wildcard subscription receives each channel one segment below it', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const seen: string[] = [];
  await alice.subscribe('rooms/*', (message) => seen.push(`${message.channel}#${message.id}`)).ready;
  server.publish('rooms/a', 1);
  server.publish('rooms/a/b', 1);
  server.publish('rooms/b', 1);
  server.publish('rooms/a', 2);
  await until(() => seen.length === 3);
  await sleep(50);
  expect(seen).toEqual(['rooms/a#1', 'rooms/b#1', 'rooms/a#2']);
});

test('requests made before the connection opens wait and are sent once it is open; unanswered ones time out', async () => {
  const server = await startServer();
  let release!: () => void;
  const tokenReady = new Promise<void>((resolve) => (release = resolve));
  const alice = client(server, 'alice', { token: async () => { await tokenReady; return server.token('alice'); }, requestTimeout: 300, maxBufferedMessages: 2 });
  const published = alice.publish('rooms/early', 'first');
  alice.broadcast('hello');
  // The buffer holds two messages: a third is refused at once.
  expect(() => alice.broadcast('one too many')).toThrow(expect.objectContaining({ code: 'BufferFull' }));
  release();
  expect(await published).toEqual({ id: 1 });
  // The server has no answer to broadcast: a request for one times out.
  await expect(alice.request({ action: 'broadcast', message: 'x' })).rejects.toMatchObject({ code: 'Timeout', action: 'broadcast' });
});

test('roll-overs every 700 ms lose no channel message and deliver none twice, broadcasts included', async () => {
  const server = await startServer();
  const listener = client(server, 'listener', { rollOverAfter: 700 });
  const publisher = client(server, 'publisher');
  const ids: number[] = [];
  const broadcasts: number[] = [];
  const rollOvers: boolean[] = [];
  listener.on('open', (event) => rollOvers.push(event.rollOver));
  listener.on('message', (frame) => broadcasts.push(frame.message as number));
  await listener.subscribe('rooms/steady', (message) => ids.push(message.message as number)).ready;
  await publisher.whenOpen();

  const total = 300;
  for (let i = 1; i <= total; i++) {
    server.publish('rooms/steady', i);
    publisher.broadcast(i);
    await sleep(10);
  }
  await until(() => ids.length >= total && broadcasts.length >= total);
  await sleep(700); // late duplicates would show here, and the last old connection closes

  expect(rollOvers.filter(Boolean).length).toBeGreaterThanOrEqual(4);
  expect(ids).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  expect(broadcasts).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  // Replaced connections were closed: at most a roll-over in progress holds two.
  expect(server.connectionCount('listener')).toBeLessThanOrEqual(2);
});

test('a live message that arrives before the replay waits for it: the handler sees every id once, in order', async () => {
  const server = await startServer({ replayDelay: 300 });
  const alice = client(server, 'alice');
  const seen: string[] = [];
  await alice.subscribe('rooms/slow', (message) => seen.push(`${message.id}${message.replay ? 'r' : ''}`)).ready;
  for (let i = 1; i <= 3; i++) server.publish('rooms/slow', i);
  await until(() => seen.length === 3);

  const reconnecting = new Promise((resolve) => alice.on('reconnecting', resolve));
  server.dropAll();
  await reconnecting;
  for (let i = 4; i <= 6; i++) server.publish('rooms/slow', i);
  // As soon as the resubscribe arrived, a live message goes out, 300 ms before the replay.
  await until(() => server.received.filter(({ frame }) => frame.action === 'subscribe').length === 2);
  server.publish('rooms/slow', 7);
  await until(() => seen.length === 7);
  await sleep(100);
  expect(seen).toEqual(['1', '2', '3', '4r', '5r', '6r', '7']);
});

test('ids that restarted on the server (the ack says reset): onReset is called and the new ids are delivered, not dropped', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const seen: string[] = [];
  const resets: string[] = [];
  await alice.subscribe('rooms/r', (message) => seen.push(`${message.message}#${message.id}`), { onReset: (channel) => resets.push(channel) }).ready;
  for (let i = 1; i <= 5; i++) server.publish('rooms/r', `old${i}`);
  await until(() => seen.length === 5);

  const reconnecting = new Promise((resolve) => alice.on('reconnecting', resolve));
  server.dropAll();
  await reconnecting;
  server.resetChannel('rooms/r');
  server.publish('rooms/r', 'new1');
  server.publish('rooms/r', 'new2');
  await until(() => seen.length === 7);
  server.publish('rooms/r', 'new3');
  await until(() => seen.length === 8);
  expect(seen).toEqual(['old1#1', 'old2#2', 'old3#3', 'old4#4', 'old5#5', 'new1#1', 'new2#2', 'new3#3']);
  expect(resets).toEqual(['rooms/r']);
  expect(server.received.filter(({ frame }) => frame.action === 'subscribe').map(({ frame }) => frame.since)).toEqual([undefined, 5]);
});

test('a channel heard through a wildcard gets new ids after a reconnect (no since to compare them with)', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const seen: string[] = [];
  await alice.subscribe('rooms/*', (message) => seen.push(`${message.message}#${message.id}`)).ready;
  for (let i = 1; i <= 3; i++) server.publish('rooms/a', `old${i}`);
  await until(() => seen.length === 3);
  const reopened = new Promise((resolve) => alice.on('open', resolve));
  server.dropAll();
  server.resetChannel('rooms/a');
  await reopened;
  await until(() => server.received.filter(({ frame }) => frame.action === 'subscribe').length === 2);
  await sleep(50); // the ack
  server.publish('rooms/a', 'new1');
  await until(() => seen.length === 4);
  expect(seen).toEqual(['old1#1', 'old2#2', 'old3#3', 'new1#1']);
});

test('subscribed to a channel and a wildcard over it, each message reaches both handlers once', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const exact: number[] = [];
  const wild: number[] = [];
  await alice.subscribe('rooms/a', (message) => exact.push(message.id)).ready;
  await alice.subscribe('rooms/*', (message) => wild.push(message.id)).ready;
  for (let i = 1; i <= 3; i++) server.publish('rooms/a', i);
  await until(() => exact.length === 3);
  await sleep(100);
  // The server sends each message twice (once per subscription): the second is dropped by id.
  expect(exact).toEqual([1, 2, 3]);
  expect(wild).toEqual([1, 2, 3]);
});

test('ids that arrive out of order (concurrent publishes) reach the handler in order', async () => {
  const server = await startServer();
  const alice = client(server, 'alice');
  const ids: number[] = [];
  await alice.subscribe('rooms/busy', (message) => ids.push(message.id)).ready;
  server.publish('rooms/busy', 1);
  const second = server.publishLate('rooms/busy', 2);
  const third = server.publishLate('rooms/busy', 3);
  server.publish('rooms/busy', 4);
  await sleep(50);
  expect(ids).toEqual([1]); // 4 waits for 2 and 3
  third();
  second();
  await until(() => ids.length === 4);
  await sleep(50);
  expect(ids).toEqual([1, 2, 3, 4]);
});

test('an id that never comes holds the next ones for reorderWindow only, and is still delivered if it arrives later', async () => {
  const server = await startServer();
  const alice = client(server, 'alice', { reorderWindow: 200 });
  const ids: number[] = [];
  await alice.subscribe('rooms/lossy', (message) => ids.push(message.id)).ready;
  server.publish('rooms/lossy', 1);
  const lost = server.publishLate('rooms/lossy', 2);
  server.publish('rooms/lossy', 3);
  server.publish('rooms/lossy', 4);
  await until(() => ids.length === 3);
  expect(ids).toEqual([1, 3, 4]);
  lost();
  server.publish('rooms/lossy', 5);
  await until(() => ids.length === 5);
  await sleep(50);
  expect(ids).toEqual([1, 3, 4, 2, 5]); // late rather than lost; no id twice
});

test('on a channel without history, a restarted id that arrives before the reset ack is delivered, not dropped', async () => {
  const server = await startServer({ historyLimit: 0, ackDelay: 300 });
  const alice = client(server, 'alice');
  const seen: string[] = [];
  const resets: string[] = [];
  await alice.subscribe('users/alice', (message) => seen.push(`${message.message}#${message.id}`), { onReset: (channel) => resets.push(channel) }).ready;
  for (let i = 1; i <= 3; i++) server.publish('users/alice', `old${i}`);
  await until(() => seen.length === 3);

  const reconnecting = new Promise((resolve) => alice.on('reconnecting', resolve));
  server.dropAll();
  await reconnecting;
  server.resetChannel('users/alice');
  // Subscribed again, not yet acknowledged: id 1 of the new ids arrives first.
  await until(() => server.received.filter(({ frame }) => frame.action === 'subscribe').length === 2);
  server.publish('users/alice', 'new1');
  await until(() => resets.length === 1);
  server.publish('users/alice', 'new2');
  await until(() => seen.length === 5);
  await sleep(50);
  expect(seen).toEqual(['old1#1', 'old2#2', 'old3#3', 'new1#1', 'new2#2']);
});
