import WebSocket from 'ws';
import { TokenLocation } from '../../src';
import { freePort, PinnedGateway, signToken, stopPinnedGateways, synthesizeChat } from './support/local-gateway';
import { AuthWsClient, AuthWsError, ChannelMessage, ClientState, connect, ConnectOptions, IncomingMessage, SubscribeOptions } from '../../src/client';
import { synthesizeChatExample } from '../local/fixtures/chat-example';
import { GatewayProcess, stopAllGateways } from '../local/support/gateway-process';

/**
 * End to end: the client against `authws local` serving the example chat app (token as a
 * subprotocol; channel rules `rooms/*` with presence and history, `users/${userId}` private feeds)
 * with API Gateway's limits made short (`--idle-timeout 2s --max-lifetime 5s`) and tokens that
 * live 6 seconds. Room messages carry ids: what is counted is every published id arriving exactly
 * once, in order, across keep-alives, roll-overs, reauths, dropped connections and a restarted
 * gateway. Every user stays under the API's default rate limit (100 publishes and broadcasts per
 * 10 seconds).
 */

const SECRET = 'client-e2e-secret';
let example: string;
const clients: AuthWsClient[] = [];

beforeAll(() => {
  example = synthesizeChatExample();
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await stopAllGateways();
  await stopPinnedGateways();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client and what it saw. */
function watch(url: string, userId: string, options: Partial<ConnectOptions> = {}) {
  const seen = {
    tokens: 0,
    sockets: [] as WebSocket[],
    reconnects: 0,
    states: [] as ClientState[],
    opens: [] as boolean[],
    errors: [] as AuthWsError[],
    messages: [] as IncomingMessage[],
  };
  class CountingWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[], socketOptions?: WebSocket.ClientOptions) {
      super(address, protocols, socketOptions);
      seen.sockets.push(this);
    }
  }
  const client = connect({
    url,
    token: () => {
      seen.tokens++;
      return signToken(SECRET, userId, 6);
    },
    WebSocket: CountingWebSocket as any,
    reconnectDelay: 100,
    maxReconnectDelay: 1_000,
    ...options,
  });
  client.on('state', (state) => seen.states.push(state));
  client.on('open', (event) => seen.opens.push(event.rollOver));
  client.on('error', (error) => seen.errors.push(error));
  client.on('message', (frame) => seen.messages.push(frame));
  client.on('reconnecting', () => seen.reconnects++);
  clients.push(client);
  return { client, seen };
}

/** Subscribes `client` to `channel`, keeping every message its handler gets. */
function listen(client: AuthWsClient, channel: string, options: SubscribeOptions = {}) {
  const received: ChannelMessage[] = [];
  const subscription = client.subscribe(channel, (message) => received.push(message), options);
  return { received, subscription };
}

/** Short limits need short clocks: ping every second, roll over at 3.5 s, reauth 4 s before a 6 s token expires. */
const SHORT: Partial<ConnectOptions> = { keepAliveInterval: 1_000, rollOverAfter: 3_500, reauthBefore: 4_000 };

test('over many 5 s lifetimes, 2 s idle timeouts and 6 s tokens, a room subscriber gets every published message once, in id order', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET, '--idle-timeout', '2s', '--max-lifetime', '5s']);
  const url = gateway.urls[0];
  const listener = watch(url, 'listener', SHORT);
  const room = listen(listener.client, 'rooms/e2e');
  await room.subscription.ready;
  // Three users publish to the room, one more broadcasts: each well under 100 requests per 10 s.
  const publishers = ['ann', 'ben', 'cat'].map((user) => watch(url, user, SHORT));
  const announcer = watch(url, 'announcer', SHORT);
  await Promise.all([...publishers, announcer].map(({ client }) => client.whenOpen()));

  // 18 seconds: more than three lifetimes, nine idle timeouts and three token lifetimes.
  const started = Date.now();
  const acknowledged: Array<{ id: number; text: string }> = [];
  const publishing = publishers.map(async ({ client }, p) => {
    for (let n = 1; Date.now() - started < 18_000; n++) {
      const text = `${p}:${n}`;
      const { id } = await client.publish('rooms/e2e', text);
      acknowledged.push({ id, text });
      await sleep(150);
    }
  });
  let broadcasts = 0;
  while (Date.now() - started < 18_000) {
    announcer.client.broadcast(++broadcasts);
    await sleep(150);
  }
  await Promise.all(publishing);
  await until(() => room.received.length >= acknowledged.length, `${acknowledged.length} room messages (got ${room.received.length})`);
  const announced = () => listener.seen.messages.filter((frame) => frame.sender === 'announcer').map((frame) => frame.message as number);
  await until(() => announced().length >= broadcasts, `${broadcasts} broadcasts (got ${announced().length})`);
  await sleep(1_000); // late duplicates would show up here

  // Every id the publishers were given, each once and in order, with the text it was given for.
  const total = acknowledged.length;
  expect(total).toBeGreaterThan(200);
  expect(room.received.map((message) => message.id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  const sent = new Map(acknowledged.map(({ id, text }) => [id, text]));
  expect(room.received.every((message) => message.message === sent.get(message.id) && message.channel === 'rooms/e2e')).toBe(true);
  expect(room.received.map((message) => message.sender).sort()).toEqual(
    acknowledged.map(({ text }) => ['ann', 'ben', 'cat'][Number(text.split(':')[0])]).sort());
  // Broadcasts carry no id: each arrived once (their order is not promised).
  expect([...announced()].sort((a, b) => a - b)).toEqual(Array.from({ length: broadcasts }, (_, i) => i + 1));
  for (const { seen } of [listener, ...publishers, announcer]) {
    expect(seen.errors).toEqual([]);
    expect(seen.reconnects).toBe(0); // no connection ever ended before its replacement was open
    expect(seen.states).toEqual(['open']);
    expect(seen.opens.filter(Boolean).length).toBeGreaterThanOrEqual(4);
    expect(seen.tokens).toBeGreaterThan(seen.opens.length); // the rest were reauths
  }
}, 90_000);

test('a listener whose connection drops resubscribes with since and gets every message published meanwhile, in order, once', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const url = gateway.urls[0];
  // The listener's token provider waits at the gate while it is closed: the reconnect waits with it.
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => undefined as void;
  const listener = watch(url, 'listener', {
    token: async () => {
      await gate;
      return signToken(SECRET, 'listener', 60);
    },
  });
  const room = listen(listener.client, 'rooms/drop');
  await room.subscription.ready;
  const publisher = watch(url, 'publisher');
  for (let n = 1; n <= 5; n++) await publisher.client.publish('rooms/drop', n);
  await until(() => room.received.length === 5, 'five messages');

  gate = new Promise((resolve) => (openGate = resolve));
  const reconnecting = new Promise((resolve) => listener.client.on('reconnecting', resolve));
  listener.seen.sockets[listener.seen.sockets.length - 1].terminate(); // a network failure
  await reconnecting;
  for (let n = 6; n <= 15; n++) await publisher.client.publish('rooms/drop', n);
  openGate();
  await until(() => room.received.length >= 15, 'fifteen messages');
  for (let n = 16; n <= 20; n++) await publisher.client.publish('rooms/drop', n);
  await until(() => room.received.length >= 20, 'twenty messages');
  await sleep(500);

  expect(room.received.map((message) => message.id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(room.received.map((message) => message.message)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(room.received.filter((message) => message.replay).map((message) => message.id)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  expect(listener.seen.errors).toEqual([]);
}, 60_000);

test('the gateway killed and restarted: the client reconnects, sends what it buffered, and takes the room\'s restarted ids as new', async () => {
  const port = await freePort();
  let gateway = await PinnedGateway.start(['--assembly', example, '--secret', SECRET], port);
  const listener = watch(gateway.url, 'listener');
  const resets: string[] = [];
  const room = listen(listener.client, 'rooms/restart', { onReset: (channel) => resets.push(channel) });
  const publisher = watch(gateway.url, 'publisher', { requestTimeout: 30_000 });
  await room.subscription.ready;
  for (let n = 1; n <= 5; n++) await publisher.client.publish('rooms/restart', `before ${n}`);
  publisher.client.broadcast('before');
  await until(() => room.received.length === 5 && listener.seen.messages.length === 1, 'the first messages');

  await gateway.stop('SIGKILL');
  await until(() => listener.seen.reconnects > 0 && publisher.seen.reconnects > 0, 'both clients reconnecting');
  expect(listener.client.state).toBe('reconnecting');
  // While down: requests wait in the publisher's buffer.
  const buffered = [publisher.client.publish('rooms/restart', 'while down 1'), publisher.client.publish('rooms/restart', 'while down 2')];
  publisher.client.broadcast('while down');

  // The restarted gateway's DynamoDB is empty: the room's ids start at 1 again.
  gateway = await PinnedGateway.start(['--assembly', example, '--secret', SECRET], port);
  await Promise.all([listener.client.whenOpen(), publisher.client.whenOpen()]);
  expect((await Promise.all(buffered)).map(({ id }) => id).sort()).toEqual([1, 2]);
  // The listener resubscribed with since 5, above the room's last id: the ack said reset.
  await until(() => resets.length === 1, 'the reset');
  for (let n = 1; n <= 10; n++) await publisher.client.publish('rooms/restart', `after ${n}`);
  await until(() => room.received.length >= 17, 'the messages after the restart');
  await sleep(500);

  expect(resets).toEqual(['rooms/restart']);
  const afterRestart = room.received.slice(5);
  // Nothing dropped as a duplicate of the old ids: new ids 1..12, in order, once each.
  expect(afterRestart.map((message) => message.id)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect(afterRestart.slice(0, 2).map((message) => message.message).sort()).toEqual(['while down 1', 'while down 2']);
  expect(afterRestart.slice(2).map((message) => message.message)).toEqual(Array.from({ length: 10 }, (_, i) => `after ${i + 1}`));
  // The buffered broadcast went out once the publisher was back.
  await until(() => listener.seen.messages.length === 2, 'the buffered broadcast');
  expect(listener.seen.messages.map((frame) => frame.message)).toEqual(['before', 'while down']);
  expect(listener.seen.errors).toEqual([]);
  await gateway.stop();
}, 60_000);

test('the example\'s channels: rooms with presence for everyone, a private feed only its owner reads and no client publishes to', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const url = gateway.urls[0];
  const alice = watch(url, 'alice', { tokenLocation: 'subprotocol' });
  const bob = watch(url, 'bob');
  const joined: string[] = [];
  await alice.client.subscribe('rooms/lobby', () => undefined, { onPresence: (event) => joined.push(`${event.event} ${event.userId}`) }).ready;
  await bob.client.subscribe('rooms/lobby', () => undefined).ready;
  await until(() => joined.length === 2, 'two joined events');
  expect(joined).toEqual(['joined alice', 'joined bob']);
  expect(await bob.client.presence('rooms/lobby')).toEqual({ members: ['alice', 'bob'], cursor: null });

  await alice.client.subscribe('users/alice', () => undefined).ready;
  await expect(bob.client.subscribe('users/alice', () => undefined).ready).rejects.toMatchObject({ code: 'Forbidden', action: 'subscribe', channel: 'users/alice' });
  await expect(alice.client.publish('users/alice', 'to myself')).rejects.toMatchObject({ code: 'Forbidden', action: 'publish', channel: 'users/alice' });
  // No presence on a feed, no wildcard subscription to rooms, no channel outside the rules.
  await expect(alice.client.presence('users/alice')).rejects.toMatchObject({ code: 'BadRequest', channel: 'users/alice' });
  await expect(alice.client.subscribe('rooms/*', () => undefined).ready).rejects.toBeInstanceOf(AuthWsError);
  await expect(alice.client.publish('news/today', 'x')).rejects.toMatchObject({ code: 'Forbidden', channel: 'news/today' });
  // The seed scenario: a broadcast still reaches everyone.
  alice.client.broadcast('hello everyone');
  await until(() => bob.seen.messages.length === 1, 'the broadcast');
  expect(bob.seen.messages).toEqual([{ message: 'hello everyone', sender: 'alice' }]);
}, 60_000);

test('over the rate limit (100 a user per 10 s) a publish is refused with RateLimited, naming the request', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const { client } = watch(gateway.urls[0], 'eager', { requestTimeout: 30_000 });
  await client.whenOpen();
  // The limit counts per 10-second window of the clock: start early in one, so all 105 fall in it.
  if (Date.now() % 10_000 > 2_000) await sleep(10_000 - (Date.now() % 10_000) + 50);
  const answers = await Promise.allSettled(Array.from({ length: 105 }, (_, n) => client.publish('rooms/flood', n)));
  const refused = answers.filter((answer): answer is PromiseRejectedResult => answer.status === 'rejected').map((answer) => answer.reason);
  expect(answers.filter((answer) => answer.status === 'fulfilled')).toHaveLength(100);
  expect(refused).toHaveLength(5);
  for (const error of refused) expect(error).toMatchObject({ name: 'AuthWsError', code: 'RateLimited', action: 'publish', channel: 'rooms/flood', requestId: expect.any(String) });
}, 60_000);

test('without reauth, the API\'s TokenExpired makes the client replace the connection with a fresh token', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const { client, seen } = watch(gateway.urls[0], 'lena', {
    token: () => {
      seen.tokens++;
      return signToken(SECRET, 'lena', 2);
    },
    reauthBefore: 0,
    keepAliveInterval: 500,
  });
  await client.whenOpen();
  await until(() => seen.opens.filter(Boolean).length >= 2, 'two replacements after TokenExpired', 20_000);
  expect(seen.errors.map((error) => error.code).every((code) => code === 'TokenExpired')).toBe(true);
  expect(seen.errors.length).toBeGreaterThanOrEqual(2);
  client.broadcast('still here');
  await until(() => seen.messages.some((frame) => frame.message === 'still here'), 'the broadcast');
  expect(seen.states).not.toContain('closed');
}, 40_000);

test('a revoked user (the token provider now fails) stops reconnecting with a clear error', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET, '--max-lifetime', '2s']);
  let revoked = false;
  const { client, seen } = watch(gateway.urls[0], 'mallory', {
    token: () => {
      seen.tokens++;
      if (revoked) throw new Error('mallory was signed out');
      return signToken(SECRET, 'mallory', 60);
    },
  });
  await client.whenOpen();
  const closed = new Promise((resolve) => client.on('close', (event) => !event.willReconnect && resolve(event)));
  revoked = true;
  // The gateway ends the connection at its lifetime; the client needs a token to go on.
  expect(await closed).toEqual({ code: 1000, reason: expect.stringContaining('mallory was signed out'), willReconnect: false });
  expect(client.state).toBe('closed');
  expect(seen.errors).toEqual([expect.objectContaining({ code: 'TokenUnavailable', message: expect.stringContaining('not reconnecting') })]);
  const sockets = seen.sockets.length;
  await sleep(1_500);
  expect(seen.sockets).toHaveLength(sockets);
  expect(() => client.broadcast('anyone?')).toThrow(expect.objectContaining({ code: 'Closed' }));
});

test('a handshake refused with 401 (which Node.js ws reports) is not retried with the same token', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const forged = await signToken('not-the-secret', 'mallory', 60);
  const { client, seen } = watch(gateway.urls[0], 'mallory', { token: () => forged });
  await expect(client.whenOpen()).rejects.toMatchObject({ code: 'Unauthorized', status: 401 });
  expect(seen.sockets).toHaveLength(1);
  expect(client.state).toBe('closed');
});

test.each([
  ['header', TokenLocation.header('Authorization')],
  ['query', TokenLocation.queryString('token')],
  ['subprotocol', TokenLocation.subprotocol()],
] as const)('token location %s: the client connects and its broadcast comes back', async (location, tokenLocation) => {
  const assembly = location === 'subprotocol' ? example : synthesizeChat(tokenLocation);
  const gateway = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET]);
  const { client, seen } = watch(gateway.urls[0], 'alice', { tokenLocation: location });
  await client.whenOpen();
  client.broadcast({ via: location });
  await until(() => seen.messages.length === 1, 'the broadcast');
  expect(seen.messages).toEqual([{ message: { via: location }, sender: 'alice' }]);
  await client.ping(); // a pong answers even a server that does not echo requestId
  await gateway.stop();
});
