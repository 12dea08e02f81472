import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ConnectionExpiry } from '../../src/runtime/connection-expiry';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults, Env } from '../../src/runtime/environment';
import { WebSocketEvent } from '../../src/runtime/websocket-event';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { LocalDynamo, startDynalite } from '../support/dynalite';
import { SecretsServer } from '../support/secrets-server';
import { signToken, TEST_SECRET } from '../support/tokens';
import { authorizedAs, newConnectionId, routeEvent } from '../support/websocket-events';

/**
 * A connection does not outlive its token: the message handler closes an expired connection when
 * it sends, `reauth` extends a connection with a fresh token of the same user, and the sweeper
 * closes expired connections that send nothing.
 */

type Handler<E, R> = (event: E) => Promise<R>;

let dynamo: LocalDynamo;
let secrets: SecretsServer;
let server: ConnectionsServer;
let output: CapturedConsole;
let tables = 0;

const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  useDummyAwsEnvironment();
  dynamo = await startDynalite();
  secrets = await SecretsServer.start();
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
});

afterAll(async () => {
  await Promise.all([dynamo.close(), secrets.stop()]);
});

beforeEach(async () => {
  server = await ConnectionsServer.start();
  output = captureConsole();
});

afterEach(async () => {
  output.restore();
  await server.stop();
});

/** A registry of its own, and fresh message handler and sweeper modules, configured as the construct does. */
class Api {
  static async start(): Promise<Api> {
    const tableName = await dynamo.createRegistryTable(`expiry-${++tables}`);
    Object.assign(process.env, {
      [Env.TABLE_NAME]: tableName,
      [Env.USER_INDEX_NAME]: 'byUser',
      [Env.CALLBACK_URL]: server.callbackUrl,
      [Env.FANOUT_CONCURRENCY]: '10',
      [Env.POST_TIMEOUT_MS]: '2000',
      [Env.AUTH_SECRET_ARN]: secrets.put('reauth', TEST_SECRET),
      [Env.AUTH_CONTEXT_CLAIMS]: 'role',
    });
    let message: Handler<WebSocketEvent, unknown> | undefined;
    let sweep: Handler<void, { closed: number; gone: number; failed: number }> | undefined;
    jest.isolateModules(() => {
      message = jest.requireActual('../../src/handlers/message.lambda').handler;
      sweep = jest.requireActual('../../src/handlers/expiry-sweeper.lambda').handler;
    });
    return new Api(tableName, message!, sweep!);
  }

  private readonly store: ConnectionStore;

  private constructor(readonly tableName: string, private readonly message: Handler<WebSocketEvent, unknown>,
    readonly sweep: Handler<void, { closed: number; gone: number; failed: number }>) {
    this.store = new ConnectionStore({ client: dynamo.client, tableName });
  }

  /** A connection of `userId` whose `$connect` token expires at `expiresAt` (its row and its live socket). */
  async connect(userId: string, expiresAt?: number, options: { open?: boolean } = {}): Promise<string> {
    const connectionId = newConnectionId();
    const row = connectionRow({ connectionId, connectedAt: Date.now() }, { userId, expiresAt, claims: {} }, Defaults.CONNECTION_TTL_SECONDS);
    await this.store.register(row);
    if (options.open ?? true) server.connect(connectionId);
    return connectionId;
  }

  /** A frame from `connectionId`, whose authorizer context still holds the `$connect` token's expiry. */
  async frame(connectionId: string, userId: string, contextExpiresAt: number | undefined, body: object): Promise<void> {
    const authorizer = authorizedAs(userId, contextExpiresAt === undefined ? {} : { expiresAt: String(contextExpiresAt) });
    await this.message(routeEvent('MESSAGE', connectionId, authorizer, JSON.stringify(body)));
  }

  async row(connectionId: string) {
    const key = { connectionId: { S: connectionId } };
    const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
    return Item;
  }
}

const frames = (connectionId: string) => server.received(connectionId).map((frame) => JSON.parse(frame));
const deletes = (connectionId: string) => server.requests.filter((r) => r.method === 'DELETE' && r.connectionId === connectionId).length;

describe('the message handler', () => {
  test('refuses a message after the token expired with TokenExpired, closes the connection and deletes its row', async () => {
    const api = await Api.start();
    const expired = nowSeconds() - 30;
    const a = await api.connect('user-a', expired);
    const b = await api.connect('user-b', nowSeconds() + 600);

    await api.frame(a, 'user-a', expired, { action: 'broadcast', message: 'after expiry' });

    expect(frames(a)).toEqual([{ error: { code: 'TokenExpired', message: expect.any(String) } }]);
    expect(deletes(a)).toBe(1);
    expect(await api.row(a)).toBeUndefined();
    expect(frames(b)).toEqual([]);
    expect(output.records()).toContainEqual(expect.objectContaining({ event: 'connection_expired', outcome: 'closed' }));
  });

  test('serves a connection whose token has not expired, and closes nothing', async () => {
    const api = await Api.start();
    const exp = nowSeconds() + 600;
    const a = await api.connect('user-a', exp);
    await api.frame(a, 'user-a', exp, { action: 'ping' });
    expect(frames(a)).toEqual([{ action: 'pong' }]);
    expect(deletes(a)).toBe(0);
  });
});

describe('reauth', () => {
  test('a fresh token of the same user extends the connection past its $connect token', async () => {
    const api = await Api.start();
    const firstExp = nowSeconds() + 2;
    const a = await api.connect('user-a', firstExp);
    const token = await signToken({ sub: 'user-a', role: 'admin' }, { expiresIn: 3600 });
    const newExp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;

    await api.frame(a, 'user-a', firstExp, { action: 'reauth', token });
    expect(frames(a)).toEqual([{ action: 'reauthenticated', expiresAt: newExp }]);
    expect(await api.row(a)).toMatchObject({ expiresAt: { N: String(newExp) }, claims: { M: { role: { S: 'admin' } } } });

    // The authorizer context still says the first expiry, which has now passed: the registry decides.
    const staleContext = nowSeconds() - 10;
    await api.frame(a, 'user-a', staleContext, { action: 'ping' });
    expect(frames(a).at(-1)).toEqual({ action: 'pong' });
    expect(deletes(a)).toBe(0);
  });

  test('a reauth that shortens the expiry stops the connection at the new, earlier time', async () => {
    // The handlers' clock, moved by hand (jose's own checks read the real one).
    let offset = 0;
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    try {
      const api = await Api.start();
      const firstExp = nowSeconds() + 3600;
      const a = await api.connect('user-a', firstExp);
      const shorterLived = await signToken({ sub: 'user-a' }, { expiresIn: 60 });
      await api.frame(a, 'user-a', firstExp, { action: 'reauth', token: shorterLived });
      expect(frames(a)).toEqual([{ action: 'reauthenticated', expiresAt: expect.any(Number) }]);

      // A minute on, the authorizer context still says an hour from connect; the registry says expired.
      offset = 61_000;
      await api.frame(a, 'user-a', firstExp, { action: 'broadcast', message: 'after the shorter expiry' });
      expect(frames(a).at(-1)).toEqual({ error: { code: 'TokenExpired', message: expect.any(String) } });
      expect(deletes(a)).toBe(1);
      expect(await api.row(a)).toBeUndefined();
    } finally {
      jest.restoreAllMocks();
    }
  });

  test('a token of another user is refused, and the connection keeps its expiry', async () => {
    const api = await Api.start();
    const exp = nowSeconds() + 60;
    const a = await api.connect('user-a', exp);
    await api.frame(a, 'user-a', exp, { action: 'reauth', token: await signToken({ sub: 'user-b' }, { expiresIn: 3600 }) });
    expect(frames(a)).toEqual([{ error: { code: 'Forbidden', message: expect.stringContaining('another user') } }]);
    expect((await api.row(a))?.expiresAt).toEqual({ N: String(exp) });
    expect(output.records()).toContainEqual(expect.objectContaining({ event: 'reauth_refused', reason: 'OTHER_USER' }));
  });

  test.each([
    ['an expired token', () => signToken({ sub: 'user-a' }, { expiresIn: -60 }), 'ERR_JWT_EXPIRED'],
    ['a token signed with another secret', () => signToken({ sub: 'user-a' }, { secret: 'not-the-secret-at-all-0123456789abcdef', expiresIn: 600 }), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['a token without exp', () => signToken({ sub: 'user-a' }, { expiresIn: null }), 'NO_EXPIRY'],
    ['garbage', async () => 'not-a-token', 'ERR_JWS_INVALID'],
  ])('%s is refused with Forbidden', async (_case, makeToken, reason) => {
    const api = await Api.start();
    const exp = nowSeconds() + 60;
    const a = await api.connect('user-a', exp);
    const token = await makeToken();
    await api.frame(a, 'user-a', exp, { action: 'reauth', token });
    expect(frames(a)).toEqual([{ error: { code: 'Forbidden', message: expect.any(String) } }]);
    expect((await api.row(a))?.expiresAt).toEqual({ N: String(exp) });
    expect(output.records()).toContainEqual(expect.objectContaining({ event: 'reauth_refused', reason }));
    expect(output.lines.join('\n')).not.toContain(token);
    expect(output.lines.join('\n')).not.toContain(TEST_SECRET);
  });

  test('a reauth without a token is a BadRequest', async () => {
    const api = await Api.start();
    const exp = nowSeconds() + 60;
    const a = await api.connect('user-a', exp);
    await api.frame(a, 'user-a', exp, { action: 'reauth' });
    expect(frames(a)).toEqual([{ error: { code: 'BadRequest', message: expect.stringContaining('"token"') } }]);
  });

  test('an expired connection cannot reauth: it is closed', async () => {
    const api = await Api.start();
    const expired = nowSeconds() - 5;
    const a = await api.connect('user-a', expired);
    await api.frame(a, 'user-a', expired, { action: 'reauth', token: await signToken({ sub: 'user-a' }, { expiresIn: 600 }) });
    expect(frames(a)).toEqual([{ error: { code: 'TokenExpired', message: expect.any(String) } }]);
    expect(deletes(a)).toBe(1);
  });
});

describe('the sweeper', () => {
  test('closes expired connections that send nothing, with a TokenExpired frame first, and leaves the others', async () => {
    const api = await Api.start();
    const expiredA = await api.connect('user-a', nowSeconds() - 60);
    const expiredB = await api.connect('user-b', nowSeconds() - 1);
    const alreadyGone = await api.connect('user-c', nowSeconds() - 60, { open: false });
    const live = await api.connect('user-d', nowSeconds() + 600);
    const noExpiry = await api.connect('user-e');

    expect(await api.sweep()).toEqual({ closed: 2, gone: 1, failed: 0 });

    for (const id of [expiredA, expiredB]) {
      expect(frames(id)).toEqual([{ error: { code: 'TokenExpired', message: expect.any(String) } }]);
      expect(deletes(id)).toBe(1);
    }
    for (const id of [expiredA, expiredB, alreadyGone]) expect(await api.row(id)).toBeUndefined();
    for (const id of [live, noExpiry]) {
      expect(await api.row(id)).toBeDefined();
      expect(deletes(id)).toBe(0);
    }
    expect(output.records()).toContainEqual(expect.objectContaining({ level: 'info', event: 'expiry_sweep', closed: 2, gone: 1, failed: 0 }));
  });

  test('closes every one of many expired connections', async () => {
    const api = await Api.start();
    const ids = await Promise.all(Array.from({ length: 25 }, (_, i) => api.connect(`user-${i}`, nowSeconds() - 10)));
    expect((await api.sweep()).closed).toBe(25);
    for (const id of ids) expect(deletes(id)).toBe(1);
  });

  test('reads the registry page by page, skipping live rows', async () => {
    const api = await Api.start();
    const expired = await Promise.all(Array.from({ length: 5 }, (_, i) => api.connect(`old-${i}`, nowSeconds() - 10)));
    await Promise.all(Array.from({ length: 5 }, (_, i) => api.connect(`new-${i}`, nowSeconds() + 600)));
    const connections = new ApiGatewayManagementApiClient({ endpoint: server.callbackUrl });
    const expiry = new ConnectionExpiry({ dynamo: dynamo.client, tableName: api.tableName, connections });
    const found: string[] = [];
    for await (const id of expiry.expired(2)) found.push(id);
    expect(found.sort()).toEqual([...expired].sort());
  });

  test('a close that fails is counted and the row kept for the next sweep', async () => {
    const api = await Api.start();
    const a = await api.connect('user-a', nowSeconds() - 10);
    await server.stop();
    expect(await api.sweep()).toEqual({ closed: 0, gone: 0, failed: 1 });
    expect(await api.row(a)).toBeDefined();
    server = await ConnectionsServer.start();
  });

  test('a registry that cannot be read is logged, not thrown', async () => {
    const api = await Api.start();
    process.env[Env.TABLE_NAME] = 'no-such-table';
    let sweep: (() => Promise<unknown>) | undefined;
    jest.isolateModules(() => { sweep = jest.requireActual('../../src/handlers/expiry-sweeper.lambda').handler; });
    await expect(sweep!()).resolves.toEqual({ closed: 0, gone: 0, failed: 0 });
    expect(output.records()).toContainEqual(expect.objectContaining({ level: 'error', event: 'expiry_sweep_failed', error: 'ResourceNotFoundException' }));
    expect(api).toBeDefined();
  });
});
