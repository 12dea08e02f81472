import WebSocket from 'ws';
import { TokenLocation } from '../../src';
import { freePort, PinnedGateway, signToken, stopPinnedGateways, synthesizeChat } from './support/local-gateway';
import { AuthWsClient, AuthWsError, ClientState, connect, ConnectOptions, IncomingMessage } from '../../src/client';
import { synthesizeChatExample } from '../local/fixtures/chat-example';
import { GatewayProcess, stopAllGateways } from '../local/support/gateway-process';

/**
 * End to end: the client against `authws local` serving the example chat app (token as a
 * subprotocol) with API Gateway's limits made short (`--idle-timeout 2s --max-lifetime 5s`) and
 * tokens that live 6 seconds. Broadcasts carry no id, so what is counted here is every broadcast
 * arriving exactly once across keep-alives, roll-overs and reauths.
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
    sockets: 0,
    reconnects: 0,
    states: [] as ClientState[],
    opens: [] as boolean[],
    errors: [] as AuthWsError[],
    messages: [] as IncomingMessage[],
  };
  class CountingWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[], socketOptions?: WebSocket.ClientOptions) {
      super(address, protocols, socketOptions);
      seen.sockets++;
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

/** Short limits need short clocks: ping every second, roll over at 3.5 s, reauth 4 s before a 6 s token expires. */
const SHORT: Partial<ConnectOptions> = { keepAliveInterval: 1_000, rollOverAfter: 3_500, reauthBefore: 4_000 };

test('over many 5 s lifetimes, 2 s idle timeouts and 6 s tokens, every broadcast arrives exactly once', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET, '--idle-timeout', '2s', '--max-lifetime', '5s']);
  const listener = watch(gateway.urls[0], 'listener', SHORT);
  const publisher = watch(gateway.urls[0], 'publisher', SHORT);
  await Promise.all([listener.client.whenOpen(), publisher.client.whenOpen()]);

  // 18 seconds: more than three lifetimes, nine idle timeouts and three token lifetimes.
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < 18_000) {
    publisher.client.broadcast(++sent);
    await sleep(50);
  }
  const fromPublisher = () => listener.seen.messages.filter((frame) => frame.sender === 'publisher').map((frame) => frame.message as number);
  await until(() => fromPublisher().length >= sent, `${sent} broadcasts (got ${fromPublisher().length})`);
  await sleep(500); // late duplicates would show up here

  const received = fromPublisher();
  expect(received.length).toBe(sent);
  expect([...received].sort((a, b) => a - b)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
  for (const { seen } of [listener, publisher]) {
    expect(seen.errors).toEqual([]);
    expect(seen.reconnects).toBe(0); // no connection ever ended before its replacement was open
    expect(seen.states).toEqual(['open']);
    expect(seen.opens.filter(Boolean).length).toBeGreaterThanOrEqual(4);
    expect(seen.tokens).toBeGreaterThan(seen.opens.length); // the rest were reauths
  }
  expect(sent).toBeGreaterThan(250);
}, 60_000);

test('the gateway killed and restarted: the client reconnects, sends what it buffered meanwhile, and resumes', async () => {
  const port = await freePort();
  let gateway = await PinnedGateway.start(['--assembly', example, '--secret', SECRET], port);
  const listener = watch(gateway.url, 'listener');
  const publisher = watch(gateway.url, 'publisher');
  await Promise.all([listener.client.whenOpen(), publisher.client.whenOpen()]);
  publisher.client.broadcast('before');
  await until(() => listener.seen.messages.length === 1, 'the first broadcast');

  await gateway.stop('SIGKILL');
  await until(() => listener.seen.reconnects > 0 && publisher.seen.reconnects > 0, 'both clients reconnecting');
  expect(listener.client.state).toBe('reconnecting');
  for (let i = 1; i <= 3; i++) publisher.client.broadcast(`while down ${i}`);

  gateway = await PinnedGateway.start(['--assembly', example, '--secret', SECRET], port);
  await Promise.all([listener.client.whenOpen(), publisher.client.whenOpen()]);
  // The buffered broadcasts went out once the publisher was back (it receives its own broadcasts).
  await until(() => publisher.seen.messages.length === 4, 'the buffered broadcasts');
  // (Each broadcast is a Lambda invocation of its own: API Gateway does not promise their order.)
  expect(publisher.seen.messages.map((frame) => frame.message).sort()).toEqual(['before', 'while down 1', 'while down 2', 'while down 3']);

  const before = listener.seen.messages.length;
  for (let i = 1; i <= 10; i++) publisher.client.broadcast(`after ${i}`);
  await until(() => listener.seen.messages.filter((frame) => String(frame.message).startsWith('after')).length === 10, 'ten broadcasts after the restart');
  expect(listener.seen.messages.slice(before).filter((frame) => String(frame.message).startsWith('after')).map((frame) => frame.message).sort())
    .toEqual(Array.from({ length: 10 }, (_, i) => `after ${i + 1}`).sort());
  expect(listener.seen.errors).toEqual([]);
  await gateway.stop();
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
  const sockets = seen.sockets;
  await sleep(1_500);
  expect(seen.sockets).toBe(sockets);
  expect(() => client.broadcast('anyone?')).toThrow(expect.objectContaining({ code: 'Closed' }));
});

test('a handshake refused with 401 (which Node.js ws reports) is not retried with the same token', async () => {
  const gateway = await GatewayProcess.start(['--assembly', example, '--secret', SECRET]);
  const forged = await signToken('not-the-secret', 'mallory', 60);
  const { client, seen } = watch(gateway.urls[0], 'mallory', { token: () => forged });
  await expect(client.whenOpen()).rejects.toMatchObject({ code: 'Unauthorized', status: 401 });
  expect(seen.sockets).toBe(1);
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
