import { AuthWsClient, AuthWsError, backoffDelay, ClientState, connect, ConnectOptions, ReconnectingEvent, tokenExpiry } from '../../src/client';

/**
 * The client's clocks with fake timers: reconnect backoff, keep-alive, roll-over before the 2-hour
 * cap and reauth before the token's expiry. The WebSocket is a scripted stand-in (a real one cannot
 * run on fake time); the channel and end-to-end tests use real peers.
 */

/** A WebSocket the test opens, refuses, closes and feeds. */
class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  readonly sent: any[] = [];
  closedByClient: { code?: number; reason?: string } | undefined;
  private readonly listeners = new Map<string, Array<(event: any) => void>>();

  constructor(readonly url: string, readonly protocols?: string | string[], readonly options?: { headers: Record<string, string> }) {
    ScriptedSocket.all.push(this);
  }

  addEventListener(type: string, listener: (event: any) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.emit('close', { code: code ?? 1005, reason: reason ?? '' }));
  }

  // ---- what the server does ----
  open(): void {
    this.readyState = 1;
    this.emit('open', {});
  }

  refuse(status?: number): void {
    if (status) this.emit('error', { message: `Unexpected server response: ${status}` });
    this.readyState = 3;
    this.emit('close', { code: 1006, reason: '' });
  }

  serverClose(code = 1001, reason = 'Going away'): void {
    this.readyState = 3;
    this.emit('close', { code, reason });
  }

  receive(frame: object): void {
    this.emit('message', { data: JSON.stringify(frame) });
  }

  /** The frames sent with this action. */
  sentOf(action: string): any[] {
    return this.sent.filter((frame) => frame.action === action);
  }

  private emit(type: string, event: any): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

/** An unsigned JWT with `exp` (the client only reads it). */
function jwt(sub: string, exp: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256' })}.${part({ sub, exp })}.c2lnbmF0dXJl`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const latest = () => ScriptedSocket.all[ScriptedSocket.all.length - 1];
let client: AuthWsClient | undefined;

beforeEach(() => {
  jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
  ScriptedSocket.all = [];
});

afterEach(() => {
  client?.close();
  client = undefined;
  jest.useRealTimers();
});

function start(options: Partial<ConnectOptions> = {}): AuthWsClient {
  client = connect({ url: 'wss://chat.example.com/dev', token: () => jwt('alice', nowSeconds() + 3600), WebSocket: ScriptedSocket as any, ...options });
  return client;
}

/** Lets the client's promises (token provider, open handling) run. */
const settle = () => jest.advanceTimersByTimeAsync(0);

describe('backoff', () => {
  test('full jitter: a random delay below min(max, initial * 2^attempt)', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(0);
    expect(backoffDelay(0, 500, 30_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 30_000, () => 0.5)).toBe(2_000);
    expect(backoffDelay(20, 500, 30_000, () => 0.999)).toBe(29_970);
    expect(backoffDelay(10_000, 500, 30_000, () => 0.5)).toBe(15_000);
  });

  test('failed attempts wait longer each time, up to the cap, and the first open resets the count', async () => {
    const delays: number[] = [];
    start({ reconnectDelay: 100, maxReconnectDelay: 1_000, random: () => 0.5 }).on('reconnecting', (event: ReconnectingEvent) => delays.push(event.delay));
    await settle();
    for (let attempt = 0; attempt < 7; attempt++) {
      latest().refuse();
      await settle();
      await jest.advanceTimersByTimeAsync(delays[attempt]);
    }
    expect(delays).toEqual([50, 100, 200, 400, 500, 500, 500]);
    expect(ScriptedSocket.all).toHaveLength(8);

    latest().open();
    await settle();
    latest().serverClose(1006, '');
    await settle();
    expect(delays[7]).toBe(50);
  });

  test('a socket is not retried before its delay has passed', async () => {
    start({ reconnectDelay: 1_000, random: () => 0.99 });
    await settle();
    latest().refuse();
    await jest.advanceTimersByTimeAsync(989);
    expect(ScriptedSocket.all).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(ScriptedSocket.all).toHaveLength(2);
  });
});

test('after a reconnect the connection takes over at once, while its subscriptions are being restored', async () => {
  const app = start({ reconnectDelay: 10 });
  await settle();
  latest().open();
  await settle();
  app.subscribe('rooms/lobby', () => undefined);
  latest().serverClose(1006, '');
  await settle();
  app.broadcast('while away');
  await jest.advanceTimersByTimeAsync(10);
  const second = latest();
  second.open();
  await settle();
  expect(app.state).toBe('open');
  expect(second.sent.map((frame) => frame.action)).toEqual(['broadcast', 'subscribe']);
});

describe('keep-alive', () => {
  test('a ping goes out after keepAliveInterval without sending, and sending postpones it', async () => {
    const app = start({ keepAliveInterval: 1_000 });
    await settle();
    latest().open();
    await jest.advanceTimersByTimeAsync(999);
    expect(latest().sentOf('ping')).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(latest().sentOf('ping')).toHaveLength(1);

    await jest.advanceTimersByTimeAsync(500);
    app.broadcast('busy');
    await jest.advanceTimersByTimeAsync(999);
    expect(latest().sentOf('ping')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(latest().sentOf('ping')).toHaveLength(2);
  });

  test('the default keeps a connection alive under API Gateway\'s 10-minute idle timeout', async () => {
    start();
    await settle();
    latest().open();
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    expect(latest().sentOf('ping').length).toBeGreaterThanOrEqual(2);
  });
});

describe('roll-over', () => {
  test('before the cap a new connection opens with a fresh token and resubscribes; the old closes after', async () => {
    let issued = 0;
    const states: ClientState[] = [];
    const opens: boolean[] = [];
    const app = start({ rollOverAfter: 60_000, token: () => jwt('alice', nowSeconds() + 3600 + ++issued) });
    app.on('state', (state) => states.push(state));
    app.on('open', (event) => opens.push(event.rollOver));
    await settle();
    const first = latest();
    first.open();
    await settle();
    app.subscribe('rooms/lobby', () => undefined);
    const subscribe = first.sentOf('subscribe')[0];
    first.receive({ action: 'subscribed', channel: 'rooms/lobby', requestId: subscribe.requestId });
    first.receive({ channel: 'rooms/lobby', message: 'm', sender: 'bob', id: 7 });

    await jest.advanceTimersByTimeAsync(59_999);
    expect(ScriptedSocket.all).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    const second = latest();
    expect(ScriptedSocket.all).toHaveLength(2);
    expect(second.protocols).toEqual(['authws', jwt('alice', nowSeconds() + 3600 + 2)]);
    expect(first.closedByClient).toBeUndefined();

    second.open();
    await settle();
    const resubscribe = second.sentOf('subscribe')[0];
    expect(resubscribe).toEqual({ action: 'subscribe', channel: 'rooms/lobby', since: 7, requestId: expect.any(String) });
    expect(first.closedByClient).toBeUndefined(); // not before the new connection is subscribed
    second.receive({ action: 'subscribed', channel: 'rooms/lobby', requestId: resubscribe.requestId });
    await settle();
    // The old connection stays a moment for frames on their way to it, then closes.
    await jest.advanceTimersByTimeAsync(499);
    expect(first.closedByClient).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    expect(first.closedByClient).toEqual({ code: 1000, reason: 'roll-over' });
    expect(opens).toEqual([false, true]);
    expect(states).toEqual(['open']); // connecting -> open, never reconnecting

    // Requests now go through the new connection, and it rolls over in its turn.
    app.broadcast('after');
    expect(second.sentOf('broadcast')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(ScriptedSocket.all).toHaveLength(3);
  });

  test('the old connection waits for the answers to requests sent on it before it closes', async () => {
    const app = start({ rollOverAfter: 60_000 });
    await settle();
    const first = latest();
    first.open();
    await jest.advanceTimersByTimeAsync(59_000);
    const published = app.publish('rooms/lobby', 'just before');
    await jest.advanceTimersByTimeAsync(1_000);
    latest().open();
    await jest.advanceTimersByTimeAsync(2_000);
    expect(first.closedByClient).toBeUndefined();
    const [publish] = first.sentOf('publish');
    first.receive({ action: 'published', channel: 'rooms/lobby', id: 1, requestId: publish.requestId });
    expect(await published).toEqual({ id: 1 });
    await jest.advanceTimersByTimeAsync(50);
    expect(first.closedByClient).toEqual({ code: 1000, reason: 'roll-over' });
  });

  test('the default rolls over before API Gateway\'s 2-hour cap', async () => {
    start();
    await settle();
    latest().open();
    await jest.advanceTimersByTimeAsync(115 * 60_000);
    expect(ScriptedSocket.all).toHaveLength(2);
  });

  test('if the new connection fails, the old one stays and the roll-over is tried again', async () => {
    start({ rollOverAfter: 1_000, reconnectDelay: 100, random: () => 0.5 });
    await settle();
    const first = latest();
    first.open();
    await jest.advanceTimersByTimeAsync(1_000);
    latest().refuse();
    await settle();
    expect(first.closedByClient).toBeUndefined();
    await jest.advanceTimersByTimeAsync(50);
    expect(ScriptedSocket.all).toHaveLength(3);
    latest().open();
    await jest.advanceTimersByTimeAsync(500);
    expect(first.closedByClient).toEqual({ code: 1000, reason: 'roll-over' });
  });
});

describe('reauth', () => {
  test('reauth goes out reauthBefore the token\'s exp, with a fresh token, and the next is scheduled from the answer', async () => {
    const tokens = [jwt('alice', nowSeconds() + 120), jwt('alice', nowSeconds() + 600)];
    const app = start({ reauthBefore: 60_000, token: () => tokens.shift() ?? jwt('alice', nowSeconds() + 3600) });
    await settle();
    const socket = latest();
    socket.open();
    await jest.advanceTimersByTimeAsync(59_999);
    expect(socket.sentOf('reauth')).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    const [reauth] = socket.sentOf('reauth');
    expect(reauth.token).toBe(jwt('alice', nowSeconds() - 60 + 600));
    expect(tokenExpiry(reauth.token)).toBe(nowSeconds() - 60 + 600);
    socket.receive({ action: 'reauthenticated', expiresAt: nowSeconds() - 60 + 600, requestId: reauth.requestId });
    await settle();
    // 600 s after the start, less 60 s: 480 s from now.
    await jest.advanceTimersByTimeAsync(479_999);
    expect(socket.sentOf('reauth')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.sentOf('reauth')).toHaveLength(2);
    expect(app.state).toBe('open');
    expect(ScriptedSocket.all).toHaveLength(1);
  });

  test('a server that does not echo requestId still answers reauth', async () => {
    const tokens = [jwt('alice', nowSeconds() + 120)];
    start({ reauthBefore: 60_000, token: () => tokens.shift() ?? jwt('alice', nowSeconds() + 600) });
    await settle();
    const socket = latest();
    socket.open();
    await jest.advanceTimersByTimeAsync(60_000);
    socket.receive({ action: 'reauthenticated', expiresAt: nowSeconds() + 540 });
    await jest.advanceTimersByTimeAsync(10_000); // the request timeout passes without an error
    expect(ScriptedSocket.all).toHaveLength(1);
  });

  test('a refused reauth is reported and replaced by a new connection', async () => {
    const tokens = [jwt('alice', nowSeconds() + 120)];
    const errors: AuthWsError[] = [];
    start({ reauthBefore: 60_000, token: () => tokens.shift() ?? jwt('alice', nowSeconds() + 3600) }).on('error', (e) => errors.push(e));
    await settle();
    const socket = latest();
    socket.open();
    await jest.advanceTimersByTimeAsync(60_000);
    const [reauth] = socket.sentOf('reauth');
    socket.receive({ error: { code: 'Forbidden', message: 'no' }, action: 'reauth', requestId: reauth.requestId });
    await settle();
    expect(errors.map((e) => e.code)).toEqual(['Forbidden']);
    expect(ScriptedSocket.all).toHaveLength(2);
  });

  test('TokenExpired opens a new connection with a fresh token at once', async () => {
    let issued = 0;
    start({ token: () => jwt('alice', nowSeconds() + 100 + ++issued) });
    await settle();
    const socket = latest();
    socket.open();
    socket.receive({ error: { code: 'TokenExpired', message: 'expired' } });
    await settle();
    expect(ScriptedSocket.all).toHaveLength(2);
    expect(latest().protocols).toEqual(['authws', jwt('alice', nowSeconds() + 102)]);
  });
});

describe('tokens and refusals', () => {
  test('a 401 with no fresh token from the provider stops the client with Unauthorized', async () => {
    const token = jwt('alice', nowSeconds() + 3600);
    const closes: boolean[] = [];
    const app = start({ token: () => token, reconnectDelay: 10 });
    app.on('close', (event) => closes.push(event.willReconnect));
    const opened = expect(app.whenOpen()).rejects.toMatchObject({ code: 'Unauthorized', status: 401 });
    await settle();
    latest().refuse(401);
    await jest.advanceTimersByTimeAsync(20);
    await opened;
    expect(app.state).toBe('closed');
    expect(ScriptedSocket.all).toHaveLength(1);
    expect(closes).toEqual([false]);
  });

  test('a 401 followed by a different token from the provider is retried', async () => {
    let issued = 0;
    const app = start({ token: () => jwt('alice', nowSeconds() + 3600 + ++issued), reconnectDelay: 10 });
    await settle();
    latest().refuse(403);
    await jest.advanceTimersByTimeAsync(20);
    expect(ScriptedSocket.all).toHaveLength(2);
    latest().open();
    await settle();
    expect(app.state).toBe('open');
  });

  test('a token provider that fails stops the client with TokenUnavailable', async () => {
    let fail = false;
    const errors: AuthWsError[] = [];
    const app = start({ token: () => (fail ? Promise.reject(new Error('user revoked')) : jwt('alice', nowSeconds() + 3600)), reconnectDelay: 10 });
    app.on('error', (e) => errors.push(e));
    await settle();
    latest().open();
    fail = true;
    latest().serverClose(1006, '');
    await jest.advanceTimersByTimeAsync(20);
    expect(app.state).toBe('closed');
    expect(errors).toEqual([expect.objectContaining({ code: 'TokenUnavailable', message: expect.stringContaining('user revoked') })]);
    expect(() => app.broadcast('x')).toThrow(expect.objectContaining({ code: 'Closed' }));
  });

  test('requests time out after requestTimeout', async () => {
    const app = start({ requestTimeout: 1_000 });
    await settle();
    latest().open();
    const ping = app.ping();
    const outcome = expect(ping).rejects.toMatchObject({ code: 'Timeout', action: 'ping' });
    await jest.advanceTimersByTimeAsync(1_000);
    await outcome;
  });

  test('token locations: subprotocol pair, query parameter, or header through an injected constructor', async () => {
    const token = jwt('alice', nowSeconds() + 3600);
    start({ token: () => token });
    await settle();
    expect(latest()).toMatchObject({ url: 'wss://chat.example.com/dev', protocols: ['authws', token] });
    client!.close();
    start({ token: () => token, tokenLocation: 'query' });
    await settle();
    expect(latest().url).toBe(`wss://chat.example.com/dev?token=${token}`);
    client!.close();
    start({ token: () => token, tokenLocation: 'header' });
    await settle();
    expect(latest().options).toEqual({ headers: { Authorization: `Bearer ${token}` } });
    client!.close();
    expect(() => connect({ url: 'wss://x/dev', token: () => token, tokenLocation: 'header', WebSocket: undefined })).toThrow(/header.*ws/);
    expect(() => connect({ url: 'https://x/dev', token: () => token, WebSocket: ScriptedSocket as any })).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => connect({ url: 'wss://x/dev', token: () => token, WebSocket: ScriptedSocket as any, keepAliveInterval: -1 })).toThrow(/keepAliveInterval/);
  });
});
