import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { handler } from '../../src/handlers/connection.lambda';
import { Defaults, Env } from '../../src/runtime/environment';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { LocalDynamo, startDynalite } from '../support/dynalite';
import { authorizedAs, newConnectionId, routeEvent } from '../support/websocket-events';

let dynamo: LocalDynamo;
let output: CapturedConsole;

beforeAll(async () => {
  useDummyAwsEnvironment();
  dynamo = await startDynalite();
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
  process.env[Env.TABLE_NAME] = dynamo.tableName;
  process.env[Env.AUTH_CONTEXT_CLAIMS] = 'role,tenant';
});

afterAll(async () => {
  await dynamo.close();
});

beforeEach(() => {
  output = captureConsole();
});

afterEach(() => {
  output.restore();
});

async function row(connectionId: string) {
  const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { connectionId: { S: connectionId } } }));
  return Item;
}

test('$connect registers the connection with every field', async () => {
  const connectionId = newConnectionId();
  const before = Math.floor(Date.now() / 1000);
  const event = routeEvent('CONNECT', connectionId, authorizedAs('user-a', { expiresAt: '1900000000', role: 'admin', tenant: '["t1"]', other: 'not configured' }));

  expect(await handler(event)).toEqual({ statusCode: 200 });

  const item = await row(connectionId);
  expect(item).toMatchObject({
    connectionId: { S: connectionId },
    userId: { S: 'user-a' },
    connectedAt: { N: String(event.requestContext.connectedAt) },
    expiresAt: { N: '1900000000' },
    claims: { M: { role: { S: 'admin' }, tenant: { S: '["t1"]' } } },
  });
  const ttl = Number(item?.ttl?.N);
  expect(ttl).toBeGreaterThanOrEqual(before + Defaults.CONNECTION_TTL_SECONDS);
  expect(ttl).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + Defaults.CONNECTION_TTL_SECONDS);
});

test('$connect with a token that has expired since the authorizer checked it is refused with 401, and nothing is registered', async () => {
  const connectionId = newConnectionId();
  const expiredAt = String(Math.floor(Date.now() / 1000) - 1);
  expect(await handler(routeEvent('CONNECT', connectionId, authorizedAs('user-a', { expiresAt: expiredAt })))).toEqual({ statusCode: 401 });
  expect(await row(connectionId)).toBeUndefined();
  expect(output.logs()).toContainEqual(expect.objectContaining({ level: 'warn', event: 'connect_expired' }));
});

test('$connect takes the ttl from CONNECTION_TTL_SECONDS', async () => {
  process.env[Env.CONNECTION_TTL_SECONDS] = '60';
  try {
    const connectionId = newConnectionId();
    const before = Math.floor(Date.now() / 1000);
    await handler(routeEvent('CONNECT', connectionId, authorizedAs('user-a')));
    const ttl = Number((await row(connectionId))?.ttl?.N);
    expect(ttl).toBeGreaterThanOrEqual(before + 60);
    expect(ttl).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 60);
  } finally {
    delete process.env[Env.CONNECTION_TTL_SECONDS];
  }
});

test('$connect without an expiry or claims writes neither', async () => {
  const connectionId = newConnectionId();
  await handler(routeEvent('CONNECT', connectionId, authorizedAs('user-a')));
  const item = await row(connectionId);
  expect(item).not.toHaveProperty('expiresAt');
  expect(item).not.toHaveProperty('claims');
});

test('$connect falls back to principalId when the context has no userId', async () => {
  const connectionId = newConnectionId();
  expect(await handler(routeEvent('CONNECT', connectionId, { principalId: 'from-principal' }))).toEqual({ statusCode: 200 });
  expect((await row(connectionId))?.userId).toEqual({ S: 'from-principal' });
});

test('$connect twice is fine: the row is replaced, not duplicated', async () => {
  const connectionId = newConnectionId();
  const event = routeEvent('CONNECT', connectionId, authorizedAs('user-a'));
  expect(await handler(event)).toEqual({ statusCode: 200 });
  expect(await handler(event)).toEqual({ statusCode: 200 });
  expect((await row(connectionId))?.userId).toEqual({ S: 'user-a' });
});

test.each([
  ['no authorizer context', undefined],
  ['an empty user id', { principalId: '', userId: '' }],
])('$connect with %s is refused with 403 and writes nothing', async (_case, authorizer) => {
  const connectionId = newConnectionId();
  expect(await handler(routeEvent('CONNECT', connectionId, authorizer))).toEqual({ statusCode: 403 });
  expect(await row(connectionId)).toBeUndefined();
});

test('$disconnect deletes the row', async () => {
  const connectionId = newConnectionId();
  await handler(routeEvent('CONNECT', connectionId, authorizedAs('user-a')));
  expect(await handler(routeEvent('DISCONNECT', connectionId, authorizedAs('user-a')))).toEqual({ statusCode: 200 });
  expect(await row(connectionId)).toBeUndefined();
});

test('$disconnect of an unknown connection, or twice, is fine', async () => {
  const connectionId = newConnectionId();
  expect(await handler(routeEvent('DISCONNECT', connectionId, authorizedAs('user-a')))).toEqual({ statusCode: 200 });
  expect(await handler(routeEvent('DISCONNECT', connectionId, authorizedAs('user-a')))).toEqual({ statusCode: 200 });
});

test('logs one line per connect and disconnect, with the request id, function name, connection id and route; never the token', async () => {
  const connectionId = newConnectionId();
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLWEifQ.dG9rZW4tc2lnbmF0dXJlLWJ5dGVz';
  const context = { awsRequestId: 'req-connection-1', functionName: 'Chat-Connection' };
  const connect = { ...routeEvent('CONNECT', connectionId, authorizedAs('user-a')), headers: { 'Authorization': `Bearer ${token}`, 'Sec-WebSocket-Protocol': `authws, ${token}` } };
  expect(await handler(connect, context)).toEqual({ statusCode: 200 });
  expect(await handler(routeEvent('DISCONNECT', connectionId, authorizedAs('user-a')), context)).toEqual({ statusCode: 200 });
  const ids = { requestId: 'req-connection-1', functionName: 'Chat-Connection', connectionId };
  expect(output.logs()).toEqual([
    expect.objectContaining({ level: 'info', event: 'connected', userId: 'user-a', routeKey: '$connect', eventType: 'CONNECT', ...ids }),
    expect.objectContaining({ level: 'info', event: 'disconnected', disconnectStatusCode: 1001, routeKey: '$disconnect', eventType: 'DISCONNECT', ...ids }),
  ]);
  expect(output.metrics()).toEqual([]);
  expect(output.lines.join('\n')).not.toMatch(/eyJ|dG9rZW4/);
});

test('a registry failure on $connect refuses the handshake (500) instead of throwing', async () => {
  const tableName = process.env[Env.TABLE_NAME];
  // The handler's store is built on its first event; pointing it at a missing table needs a fresh module.
  let fresh: typeof handler | undefined;
  jest.isolateModules(() => { fresh = jest.requireActual('../../src/handlers/connection.lambda').handler; });
  process.env[Env.TABLE_NAME] = 'no-such-table';
  try {
    expect(await fresh!(routeEvent('CONNECT', newConnectionId(), authorizedAs('user-a')))).toEqual({ statusCode: 500 });
    expect(output.records()).toEqual([expect.objectContaining({ level: 'error', event: 'connection_event_failed', error: 'ResourceNotFoundException', eventType: 'CONNECT' })]);
  } finally {
    process.env[Env.TABLE_NAME] = tableName;
  }
});
