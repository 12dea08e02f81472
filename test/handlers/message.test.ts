import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults, Env, ObservabilityEnv } from '../../src/runtime/environment';
import { WebSocketEvent } from '../../src/runtime/websocket-event';
import { SIGV4_AUTHORIZATION } from '../support/aws-environment';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { useLocalDynamo } from '../support/dynalite';
import { expectEmf } from '../support/emf';
import { API_ID, authorizedAs, newConnectionId, routeEvent } from '../support/websocket-events';

type MessageHandler = (event: WebSocketEvent) => Promise<{ statusCode: number }>;

const dynamo = useLocalDynamo();
let server: ConnectionsServer;
let output: CapturedConsole;
let tables = 0;

beforeEach(async () => {
  server = await ConnectionsServer.start({ postLatencyMs: 2 });
  output = captureConsole();
});

afterEach(async () => {
  output.restore();
  await server.stop();
});

/**
 * A chat with an empty registry of its own and a freshly loaded message handler (a new Lambda
 * container), configured the way the construct configures it.
 */
class Chat {
  static async start(settings: Record<string, string> = {}): Promise<Chat> {
    const tableName = await dynamo.createRegistryTable(`chat-${++tables}`);
    Object.assign(process.env, {
      [Env.TABLE_NAME]: tableName,
      [Env.USER_INDEX_NAME]: 'byUser',
      [Env.CALLBACK_URL]: server.callbackUrl,
      [Env.FANOUT_CONCURRENCY]: String(Defaults.FANOUT_CONCURRENCY),
      [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
      ...settings,
    });
    let handler: MessageHandler | undefined;
    jest.isolateModules(() => { handler = jest.requireActual('../../src/handlers/message.lambda').handler; });
    return new Chat(tableName, handler!);
  }

  private readonly store: ConnectionStore;
  private readonly users = new Map<string, string>();

  private constructor(readonly tableName: string, private readonly handler: MessageHandler) {
    this.store = new ConnectionStore({ client: dynamo.client, tableName });
  }

  /** Opens a connection for `userId`: its registry row as `$connect` writes it, and the live socket. */
  async connect(userId: string, token: { expiresAt?: number; ttlSeconds?: number } = {}): Promise<string> {
    const connectionId = newConnectionId();
    await this.store.register(connectionRow(
      { connectionId, connectedAt: Date.now() },
      { userId, expiresAt: token.expiresAt, claims: {} },
      token.ttlSeconds ?? Defaults.CONNECTION_TTL_SECONDS,
    ));
    server.connect(connectionId);
    this.users.set(connectionId, userId);
    return connectionId;
  }

  /** A frame from `connectionId`, as API Gateway delivers it to the `$default` route. */
  async frame(connectionId: string, body: string, authorizer = authorizedAs(this.users.get(connectionId)!)): Promise<void> {
    expect(await this.handler(routeEvent('MESSAGE', connectionId, authorizer, body))).toEqual({ statusCode: 200 });
  }

  async hasRow(connectionId: string): Promise<boolean> {
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: this.tableName, Key: { connectionId: { S: connectionId } } }));
    return Item !== undefined;
  }
}

const received = (connectionId: string) => server.received(connectionId).map((frame) => JSON.parse(frame));

describe('broadcast', () => {
  test('THE SEED SCENARIO: "Hello everyone" reaches every connection, the sender included, naming the sender', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const b = await chat.connect('user-b');

    await chat.frame(a, '{"action":"broadcast","message":"Hello everyone"}');

    expect(server.received(a)).toEqual(['{"message":"Hello everyone","sender":"user-a"}']);
    expect(server.received(b)).toEqual(['{"message":"Hello everyone","sender":"user-a"}']);
    expect(output.lines.join('\n')).not.toContain('Hello everyone'); // message bodies stay out of the log
  });

  test('any JSON message is relayed as is', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    await chat.frame(a, '{"action":"broadcast","message":{"text":"hi","at":[1,2],"ok":true,"none":null}}');
    expect(received(a)).toEqual([{ message: { text: 'hi', at: [1, 2], ok: true, none: null }, sender: 'user-a' }]);
  });

  test('numbers survive unchanged: 1e400, a 30-digit integer and a nested object reach recipients as the sender wrote them', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const b = await chat.connect('user-b');
    const message = '{"huge":1e400,"id":123456789012345678901234567890,"nested":{"price":0.1000000000000000055511151231257827,"list":[1.0,-0]}}';
    await chat.frame(a, `{"action":"broadcast","message":${message}}`);
    expect(server.received(b)).toEqual([`{"message":${message},"sender":"user-a"}`]);
    await chat.frame(a, '{"action":"send","to":"user-b","message":123456789012345678901234567890}');
    expect(server.received(b).at(-1)).toBe('{"message":123456789012345678901234567890,"sender":"user-a"}');
  });

  test('every request is signed with SigV4 for execute-api, at the stage path', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    await chat.connect('user-b');
    await chat.frame(a, '{"action":"broadcast","message":"hi"}');
    expect(server.requests).toHaveLength(2);
    for (const request of server.requests) {
      expect(request.stage).toBe('dev');
      expect(SIGV4_AUTHORIZATION.exec(request.authorization ?? '')?.groups).toEqual({ region: 'us-east-1', service: 'execute-api' });
    }
  });

  test('a stale row (410) is deleted, the sender\'s is kept, and the others still receive', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const stale = await chat.connect('user-b');
    const c = await chat.connect('user-c');
    server.disconnect(stale); // the socket ended without a $disconnect reaching the registry

    await chat.frame(a, '{"action":"broadcast","message":"hi"}');

    expect(await chat.hasRow(stale)).toBe(false);
    expect(await chat.hasRow(a)).toBe(true);
    expect(await chat.hasRow(c)).toBe(true);
    expect(received(a)).toEqual([{ message: 'hi', sender: 'user-a' }]);
    expect(received(c)).toEqual([{ message: 'hi', sender: 'user-a' }]);
    expect(output.records()).toContainEqual(expect.objectContaining({ event: 'fan_out', delivered: 2, gone: 1, failed: 0 }));
    // One EMF line for the invocation; without WEBSOCKET_API_ID the event's apiId is the dimension.
    expect(output.metrics()).toHaveLength(1);
    expectEmf(output.metrics()[0], API_ID, { Delivered: 2, Gone: 1, Failed: 0, Throttled: 0, Retried: 0 });
  });

  test('throttled, failing and hanging recipients stop no one, and nothing waits past the post timeout', async () => {
    const chat = await Chat.start({ [Env.POST_TIMEOUT_MS]: '300' });
    const a = await chat.connect('user-a');
    const throttled = await chat.connect('user-b');
    const failing = await chat.connect('user-c');
    const hanging = await chat.connect('user-d');
    const e = await chat.connect('user-e');
    server.inject(throttled, 'throttled');
    server.inject(failing, 'internal');
    server.inject(hanging, 'hang');

    await chat.frame(a, '{"action":"broadcast","message":"hi"}');

    expect(received(a)).toEqual([{ message: 'hi', sender: 'user-a' }]);
    expect(received(e)).toEqual([{ message: 'hi', sender: 'user-a' }]);
    // Failures are not gone: their rows stay.
    for (const id of [throttled, failing, hanging]) expect(await chat.hasRow(id)).toBe(true);
    expect(output.records()).toContainEqual(expect.objectContaining({ event: 'fan_out', delivered: 2, gone: 0, failed: 3 }));
    expectEmf(output.metrics()[0], API_ID, { Delivered: 2, Gone: 0, Failed: 3, Throttled: expect.any(Number), Retried: expect.any(Number) });
    expect(output.metrics()[0].Throttled).toBeGreaterThanOrEqual(1);
    expect(output.metrics()[0].Retried).toBeGreaterThanOrEqual(2); // the throttled one and the failing one were retried
  });

  test('reaches every row of a registry larger than one page', async () => {
    const chat = await Chat.start();
    const ids: string[] = [];
    for (let batch = 0; batch < 15; batch++) {
      ids.push(...await Promise.all(Array.from({ length: 100 }, (_, i) => chat.connect(`user-${batch}-${i}`))));
    }
    await chat.frame(ids[0], '{"action":"broadcast","message":"to all 1500"}');
    expect(server.recipients()).toHaveLength(1_500);
    for (const id of ids) expect(server.received(id)).toHaveLength(1);
  });

  test('never has more posts in flight than FANOUT_CONCURRENCY', async () => {
    server = await restartServer({ postLatencyMs: 15 });
    const chat = await Chat.start({ [Env.FANOUT_CONCURRENCY]: '4' });
    const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => chat.connect(`user-${i}`)));
    await chat.frame(ids[0], '{"action":"broadcast","message":"hi"}');
    expect(server.recipients()).toHaveLength(40);
    expect(server.maxInFlight).toBeLessThanOrEqual(4);
    expect(server.maxInFlight).toBeGreaterThan(1);
  });

  test('skips rows whose ttl or token expiry has passed', async () => {
    const chat = await Chat.start();
    const now = Math.floor(Date.now() / 1000);
    const a = await chat.connect('user-a');
    const ttlPassed = await chat.connect('user-b', { ttlSeconds: -10 });
    const tokenExpired = await chat.connect('user-c', { expiresAt: now - 10 });
    const valid = await chat.connect('user-d', { expiresAt: now + 600 });

    await chat.frame(a, '{"action":"broadcast","message":"hi"}');

    expect(server.received(ttlPassed)).toEqual([]);
    expect(server.received(tokenExpired)).toEqual([]);
    expect(received(valid)).toEqual([{ message: 'hi', sender: 'user-a' }]);
  });
});

describe('broadcast under a throttling storm', () => {
  test('with 60% of posts answered 429, an inline broadcast ends by its deadline, long before the function times out, and logs fan_out_incomplete', async () => {
    await server.stop();
    server = await ConnectionsServer.start({ postLatencyMs: 2, throttledShare: 0.6 });
    // A post timeout of 500 ms makes the handler keep 3.5 s free: with 5 s left, its deadline is 1.5 s away.
    const chat = await Chat.start({ [Env.POST_TIMEOUT_MS]: '500' });
    const ids: string[] = [];
    for (let i = 0; i < 600; i++) ids.push(await chat.connect(`user-${i}`));
    const handler = (chat as unknown as { handler: (event: WebSocketEvent, context: object) => Promise<unknown> }).handler;
    const started = Date.now();
    const remaining = 5_000;
    const context = { getRemainingTimeInMillis: () => remaining - (Date.now() - started) };

    await handler(routeEvent('MESSAGE', ids[0], authorizedAs('user-0'), '{"action":"broadcast","message":"storm"}'), context);

    const elapsed = Date.now() - started;
    // The deadline (1.5 s) plus at most one post under way (500 ms) and the bookkeeping after it.
    expect(elapsed).toBeLessThan(1_500 + 500 + 1_000); // it took 12.9 s before waits respected the deadline
    const incomplete = output.logs().find((line) => line.event === 'fan_out_incomplete');
    expect(incomplete).toMatchObject({ level: 'error', to: 'all', cutOff: expect.any(Number) });
    expect(incomplete!.cutOff).toBeGreaterThan(0);
    expect(incomplete!.delivered).toBe(server.recipients().length);
    const summary = output.logs().find((line) => line.event === 'fan_out');
    expect(summary).toMatchObject({ complete: false, cutOff: incomplete!.cutOff, delivered: incomplete!.delivered });
  });
});

describe('send', () => {
  test('reaches each of the user\'s connections and no one else', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const b1 = await chat.connect('user-b');
    const b2 = await chat.connect('user-b');
    const b3 = await chat.connect('user-b');
    const c = await chat.connect('user-c');

    await chat.frame(a, '{"action":"send","to":"user-b","message":{"text":"psst"}}');

    for (const id of [b1, b2, b3]) expect(received(id)).toEqual([{ message: { text: 'psst' }, sender: 'user-a' }]);
    expect(server.received(a)).toEqual([]);
    expect(server.received(c)).toEqual([]);
  });

  test('to one\'s own user id reaches one\'s other connections too', async () => {
    const chat = await Chat.start();
    const phone = await chat.connect('user-a');
    const laptop = await chat.connect('user-a');
    await chat.frame(phone, '{"action":"send","to":"user-a","message":"note to self"}');
    expect(received(phone)).toEqual([{ message: 'note to self', sender: 'user-a' }]);
    expect(received(laptop)).toEqual([{ message: 'note to self', sender: 'user-a' }]);
  });

  test('to a user with no connection delivers nothing and is not an error', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    await chat.frame(a, '{"action":"send","to":"nobody","message":"hello?"}');
    expect(server.requests).toEqual([]);
  });

  test('deletes a stale row of the recipient and still reaches the live one', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const live = await chat.connect('user-b');
    const stale = await chat.connect('user-b');
    server.disconnect(stale);
    await chat.frame(a, '{"action":"send","to":"user-b","message":"hi"}');
    expect(received(live)).toEqual([{ message: 'hi', sender: 'user-a' }]);
    expect(await chat.hasRow(stale)).toBe(false);
    expect(await chat.hasRow(a)).toBe(true);
  });
});

test('ping is answered with pong, to the sender only', async () => {
  const chat = await Chat.start();
  const a = await chat.connect('user-a');
  const b = await chat.connect('user-b');
  await chat.frame(a, '{"action":"ping"}');
  expect(received(a)).toEqual([{ action: 'pong' }]);
  expect(server.received(b)).toEqual([]);
});

test('reauth on an API whose own authorizer checks tokens (WebSocketAuth.lambdaAuthorizer: no AUTH_* settings) gets BadRequest; the connection stays', async () => {
  delete process.env[Env.AUTH_SECRET_ARN];
  delete process.env[Env.AUTH_JWKS_URL];
  const chat = await Chat.start();
  const a = await chat.connect('user-a');
  await chat.frame(a, '{"action":"reauth","token":"e30.e30.sig"}');
  expect(received(a)).toEqual([{ error: { code: 'BadRequest', message: expect.stringMatching(/^reauth is not available on this API.*reconnect with a fresh token/) } }]);
  expect(await chat.hasRow(a)).toBe(true);
});

describe('error frames reach the sender only', () => {
  const longSender = 'user-with-a-rather-long-identifier-0123456789';
  const overhead = '{"action":"broadcast","message":""}'.length;
  const cases: [string, string, string][] = [
    ['non-JSON', 'hello there', 'BadRequest'],
    ['a JSON array', '["broadcast","hi"]', 'BadRequest'],
    ['a JSON number', '42', 'BadRequest'],
    ['a missing action', '{"message":"hi"}', 'BadRequest'],
    ['an unknown action', '{"action":"dance"}', 'UnknownAction'],
    ['a broadcast without message', '{"action":"broadcast"}', 'BadRequest'],
    ['a send without to', '{"action":"send","message":"hi"}', 'BadRequest'],
    ['a send without message', '{"action":"send","to":"user-b"}', 'BadRequest'],
    ['a body over 128 KB', `{"action":"broadcast","message":"${'x'.repeat(Defaults.MAX_MESSAGE_BYTES)}"}`, 'TooLarge'],
    // Under 128 KB coming in, over it going out once the sender's id is added.
    ['an outgoing frame over 128 KB', `{"action":"broadcast","message":"${'x'.repeat(Defaults.MAX_MESSAGE_BYTES - overhead)}"}`, 'TooLarge'],
  ];

  test.each(cases)('%s', async (_case, body, code) => {
    const chat = await Chat.start();
    const sender = await chat.connect(longSender);
    const sameUser = await chat.connect(longSender);
    const other = await chat.connect('user-b');

    await chat.frame(sender, body);

    const frames = received(sender);
    expect(frames).toEqual([{ error: { code, message: expect.any(String) } }]);
    expect(frames[0].error.message.length).toBeGreaterThan(0);
    expect(server.received(sameUser)).toEqual([]);
    expect(server.received(other)).toEqual([]);
  });

  test('the missing field is named', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    await chat.frame(a, '{"message":"hi"}');
    await chat.frame(a, '{"action":"send","message":"hi"}');
    await chat.frame(a, '{"action":"dance"}');
    const messages = received(a).map((frame) => frame.error.message);
    expect(messages[0]).toContain('"action"');
    expect(messages[1]).toContain('"to"');
    expect(messages[2]).toMatch(/broadcast, send, ping/);
  });

  test('a connection without an authenticated user gets Forbidden', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const b = await chat.connect('user-b');
    await chat.frame(a, '{"action":"broadcast","message":"hi"}', { integrationLatency: 1 });
    expect(received(a)).toEqual([{ error: { code: 'Forbidden', message: expect.any(String) } }]);
    expect(server.received(b)).toEqual([]);
  });

  test('a connection whose token has expired gets TokenExpired and sends nothing', async () => {
    const chat = await Chat.start();
    const a = await chat.connect('user-a');
    const b = await chat.connect('user-b');
    const expired = String(Math.floor(Date.now() / 1000) - 60);
    await chat.frame(a, '{"action":"broadcast","message":"hi"}', authorizedAs('user-a', { expiresAt: expired }));
    expect(received(a)).toEqual([{ error: { code: 'TokenExpired', message: expect.any(String) } }]);
    expect(server.received(b)).toEqual([]);
  });
});

test('a registry that cannot be read is logged, and the handler still answers 200', async () => {
  const chat = await Chat.start({ [Env.TABLE_NAME]: 'no-such-table' });
  await chat.frame('someConnection0=', '{"action":"broadcast","message":"secret plans"}', authorizedAs('user-a'));
  expect(output.records()).toContainEqual(expect.objectContaining({ level: 'error', event: 'message_failed', error: 'ResourceNotFoundException' }));
  expect(output.lines.join('\n')).not.toContain('secret plans');
});

describe('logs and metrics', () => {
  test('each line carries the request id, function name, connection id, route and event type; never the body', async () => {
    const chat = await Chat.start({ [ObservabilityEnv.API_ID]: 'api-from-env' });
    const a = await chat.connect('user-a');
    await chat.connect('user-b');
    const handler = (chat as unknown as { handler: (event: WebSocketEvent, context: object) => Promise<unknown> }).handler;
    const context = { awsRequestId: 'req-message-1', functionName: 'Chat-Message', getRemainingTimeInMillis: () => 60_000 };
    try {
      await handler(routeEvent('MESSAGE', a, authorizedAs('user-a'), '{"action":"broadcast","message":"top secret body"}'), context);
      await handler(routeEvent('MESSAGE', a, authorizedAs('user-a'), '{"action":"ping"}'), context);
    } finally {
      delete process.env[ObservabilityEnv.API_ID];
    }

    expect(output.logs()).toEqual([expect.objectContaining({
      level: 'info',
      event: 'fan_out',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      requestId: 'req-message-1',
      functionName: 'Chat-Message',
      connectionId: a,
      routeKey: '$default',
      eventType: 'MESSAGE',
      action: 'broadcast',
      delivered: 2,
    })]);
    // One EMF line, for the broadcast (a pong is not counted); WEBSOCKET_API_ID wins over the event's apiId.
    expect(output.metrics()).toHaveLength(1);
    expectEmf(output.metrics()[0], 'api-from-env', { Delivered: 2, Gone: 0, Failed: 0, Throttled: 0, Retried: 0 });
    expect(output.metrics()[0]).toMatchObject({ requestId: 'req-message-1', functionName: 'Chat-Message' });
    expect(output.lines.join('\n')).not.toContain('top secret body');
  });
});

async function restartServer(options: { postLatencyMs: number }): Promise<ConnectionsServer> {
  await server.stop();
  return ConnectionsServer.start(options);
}
