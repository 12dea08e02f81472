import type { Context } from 'aws-lambda';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults, Env, ObservabilityEnv } from '../../src/runtime/environment';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { useLocalDynamo } from '../support/dynalite';
import { expectEmf } from '../support/emf';
import { newConnectionId } from '../support/websocket-events';

type Publisher = (event: unknown, context?: Context) => Promise<Record<string, unknown>>;

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

/** A registry of its own and a fresh publisher container, configured as the construct configures it. */
async function start(): Promise<{ publish: Publisher; connect: (userId: string, expiresAt?: number) => Promise<string> }> {
  const tableName = await dynamo.createRegistryTable(`publisher-${++tables}`);
  Object.assign(process.env, {
    [Env.TABLE_NAME]: tableName,
    [Env.USER_INDEX_NAME]: 'byUser',
    [Env.CALLBACK_URL]: server.callbackUrl,
    [Env.FANOUT_CONCURRENCY]: '50',
    [Env.FANOUT_SEGMENTS]: '4',
    [Env.POST_TIMEOUT_MS]: '300',
    [ObservabilityEnv.API_ID]: 'api-publisher',
  });
  delete process.env[Env.FANOUT_QUEUE_URL];
  let publish: Publisher | undefined;
  jest.isolateModules(() => { publish = jest.requireActual('../../src/handlers/publisher.lambda').handler; });
  const store = new ConnectionStore({ client: dynamo.client, tableName });
  const connect = async (userId: string, expiresAt?: number) => {
    const connectionId = newConnectionId();
    const row = connectionRow({ connectionId, connectedAt: Date.now() }, { userId, expiresAt, claims: {} }, Defaults.CONNECTION_TTL_SECONDS);
    await store.register(row);
    server.connect(connectionId);
    return connectionId;
  };
  return { publish: publish!, connect };
}

const zero = { delivered: 0, gone: 0, failed: 0, retried: 0, throttled: 0 };
const context = { getRemainingTimeInMillis: () => 60_000 } as Context;

test('to everyone: every live connection receives {"message"}, and the counts come back', async () => {
  const { publish, connect } = await start();
  const ids = await Promise.all(['a', 'b', 'c', 'd'].map((user) => connect(user)));
  server.disconnect(ids[3]);
  server.inject(ids[2], 'throttled', 1);
  expect(await publish({ to: { all: true }, message: { order: 42, status: 'shipped' } }, context))
    .toEqual({ ...zero, delivered: 3, gone: 1, retried: 1, throttled: 1 });
  for (const id of ids.slice(0, 3)) expect(server.received(id)).toEqual(['{"message":{"order":42,"status":"shipped"}}']);
  expect(output.metrics()).toHaveLength(1);
  expectEmf(output.metrics()[0], 'api-publisher', { Delivered: 3, Gone: 1, Failed: 0, Throttled: 1, Retried: 1 });
});

test('logs the request id, function name and counts, never the message', async () => {
  const { publish, connect } = await start();
  await connect('alice');
  const withIds = { ...context, awsRequestId: 'req-publisher-1', functionName: 'Chat-Publisher' } as Context;
  await publish({ to: { userId: 'alice' }, message: 'confidential payload' }, withIds);
  await publish({ to: { all: true } }, withIds);
  expect(output.logs()).toEqual([
    expect.objectContaining({ level: 'info', event: 'publish', to: 'user', delivered: 1, requestId: 'req-publisher-1', functionName: 'Chat-Publisher' }),
    expect.objectContaining({ level: 'warn', event: 'publish_refused', code: 'BadRequest', requestId: 'req-publisher-1' }),
  ]);
  expect(output.metrics()).toEqual([expect.objectContaining({ Delivered: 1, requestId: 'req-publisher-1' })]);
  expect(output.lines.join('\n')).not.toContain('confidential payload');
});

test('to one user, naming a sender', async () => {
  const { publish, connect } = await start();
  const [phone, laptop, other] = [await connect('alice'), await connect('alice'), await connect('bob')];
  expect(await publish({ to: { userId: 'alice' }, message: 'hi', sender: 'orders-service' }, context)).toEqual({ ...zero, delivered: 2 });
  for (const id of [phone, laptop]) expect(server.received(id)).toEqual(['{"message":"hi","sender":"orders-service"}']);
  expect(server.received(other)).toEqual([]);
});

test('to one connection; a gone one is reported gone', async () => {
  const { publish, connect } = await start();
  const id = await connect('alice');
  expect(await publish({ to: { connectionId: id }, message: null })).toEqual({ ...zero, delivered: 1 });
  expect(server.received(id)).toEqual(['{"message":null}']);
  expect(await publish({ to: { connectionId: 'unknownId000000=' }, message: 1 })).toEqual({ ...zero, gone: 1 });
});

test('to one connection whose token has expired: skipped, as broadcasts and sends skip it', async () => {
  const { publish, connect } = await start();
  const nowSeconds = Math.floor(Date.now() / 1000);
  const expired = await connect('alice', nowSeconds - 10);
  const live = await connect('alice', nowSeconds + 600);
  expect(await publish({ to: { connectionId: expired }, message: 'for the expired one' }, context)).toEqual(zero);
  expect(server.received(expired)).toEqual([]);
  expect(await publish({ to: { connectionId: live }, message: 'for the live one' }, context)).toEqual({ ...zero, delivered: 1 });
  expect(output.logs()).toContainEqual(expect.objectContaining({ event: 'post_skipped_expired', connectionId: expired }));
});

test('a JSON string payload keeps the message text as written: numbers survive unchanged', async () => {
  const { publish, connect } = await start();
  const id = await connect('alice');
  const message = '{"id":123456789012345678901234567890,"huge":1e400,"nested":{"x":[1.0]}}';
  expect(await publish(`{"to":{"connectionId":"${id}"},"message":${message},"sender":"orders"}`)).toEqual({ ...zero, delivered: 1 });
  expect(server.received(id)).toEqual([`{"message":${message},"sender":"orders"}`]);
});

test('a JSON string payload is accepted too (as some SDKs pass it)', async () => {
  const { publish, connect } = await start();
  const id = await connect('alice');
  expect(await publish(JSON.stringify({ to: { userId: 'alice' }, message: 'str' }))).toEqual({ ...zero, delivered: 1 });
  expect(server.received(id)).toEqual(['{"message":"str"}']);
});

test.each([
  ['no message', { to: { all: true } }, 'BadRequest', /"message"/],
  ['no to', { message: 1 }, 'BadRequest', /"to" must be/],
  ['all: false', { to: { all: false }, message: 1 }, 'BadRequest', /"to" must be/],
  ['an empty user id', { to: { userId: '' }, message: 1 }, 'BadRequest', /"to" must be/],
  ['a sender that is not a string', { to: { all: true }, message: 1, sender: 7 }, 'BadRequest', /"sender"/],
  ['an array', [1, 2], 'BadRequest', /JSON object/],
  ['not JSON', '{to:', 'BadRequest', /not valid JSON/],
  ['a message over 128 KB', { to: { all: true }, message: 'x'.repeat(Defaults.MAX_MESSAGE_BYTES) }, 'TooLarge', /limit is 131072/],
])('%s is answered with an error, not thrown, and nothing is sent', async (_name, event, code, message) => {
  const { publish, connect } = await start();
  await connect('alice');
  const answer = await publish(event);
  expect(answer).toEqual({ error: { code, message: expect.stringMatching(message) } });
  expect(server.requests).toEqual([]);
});
