import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ConnectionRow, connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Env } from '../../src/runtime/environment';
import { useLocalDynamo } from '../support/dynalite';

const dynamo = useLocalDynamo();
let tables = 0;

const nowSeconds = () => Math.floor(Date.now() / 1000);

function row(connectionId: string, userId: string, overrides: Partial<ConnectionRow> = {}): ConnectionRow {
  return { connectionId, userId, connectedAt: Date.now(), ttl: nowSeconds() + 3600, ...overrides };
}

async function collect(ids: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const id of ids) all.push(id);
  return all.sort();
}

/** A store over an empty table of its own. */
async function emptyStore(pageSize?: number): Promise<ConnectionStore> {
  const tableName = await dynamo.createRegistryTable(`connections-${++tables}`);
  return new ConnectionStore({ client: dynamo.client, tableName, pageSize });
}

/** The raw item, read from the table the latest emptyStore() created. */
async function storedItem(connectionId: string) {
  const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: `connections-${tables}`, Key: { connectionId: { S: connectionId } } }));
  return Item;
}

test('register writes every field of the row with DynamoDB types', async () => {
  const store = await emptyStore();
  await store.register({ connectionId: 'L0SM9cOFvHcCIhw=', userId: 'u1', connectedAt: 1_700_000_000_123, ttl: 1_700_007_500, expiresAt: 1_700_003_600, claims: { role: 'admin' } });
  expect(await storedItem('L0SM9cOFvHcCIhw=')).toEqual({
    connectionId: { S: 'L0SM9cOFvHcCIhw=' },
    userId: { S: 'u1' },
    connectedAt: { N: '1700000000123' },
    ttl: { N: '1700007500' },
    expiresAt: { N: '1700003600' },
    claims: { M: { role: { S: 'admin' } } },
  });
});

test('register leaves out an absent expiry and empty claims', async () => {
  const store = await emptyStore();
  await store.register(row('c1', 'u1', { claims: {} }));
  const written = await storedItem('c1');
  expect(written).not.toHaveProperty('expiresAt');
  expect(written).not.toHaveProperty('claims');
});

test('register and remove are idempotent', async () => {
  const store = await emptyStore();
  await store.register(row('c1', 'u1'));
  await store.register(row('c1', 'u1'));
  expect(await collect(store.all())).toEqual(['c1']);
  await store.remove('c1');
  await store.remove('c1');
  await store.remove('never-registered');
  expect(await collect(store.all())).toEqual([]);
});

test('all() reads every page', async () => {
  const store = await emptyStore(7);
  const ids = Array.from({ length: 50 }, (_, i) => `c${String(i).padStart(2, '0')}`);
  await Promise.all(ids.map((id, i) => store.register(row(id, `u${i % 3}`))));
  expect(await collect(store.all())).toEqual(ids);
});

test('ofUser() reads every page of one user\'s connections and no one else\'s', async () => {
  const store = await emptyStore(2);
  await Promise.all([
    ...['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => store.register(row(id, 'alice'))),
    ...['b1', 'b2'].map((id) => store.register(row(id, 'bob'))),
  ]);
  expect(await collect(store.ofUser('alice'))).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
  expect(await collect(store.ofUser('bob'))).toEqual(['b1', 'b2']);
  expect(await collect(store.ofUser('nobody'))).toEqual([]);
});

test('rows past their ttl or their token expiry are skipped, because TTL deletion lags', async () => {
  const store = await emptyStore();
  await Promise.all([
    store.register(row('live', 'u')),
    store.register(row('live-with-exp', 'u', { expiresAt: nowSeconds() + 60 })),
    store.register(row('ttl-passed', 'u', { ttl: nowSeconds() - 1 })),
    store.register(row('token-expired', 'u', { expiresAt: nowSeconds() - 1 })),
  ]);
  expect(await collect(store.all())).toEqual(['live', 'live-with-exp']);
  expect(await collect(store.ofUser('u'))).toEqual(['live', 'live-with-exp']);
});

test('the reading is lazy: a consumer that stops early reads no further pages', async () => {
  const store = await emptyStore(5);
  await Promise.all(Array.from({ length: 40 }, (_, i) => store.register(row(`c${i}`, 'u'))));
  const send = jest.spyOn(dynamo.client, 'send');
  for await (const id of store.all()) {
    expect(id).toBeDefined();
    break;
  }
  expect(send).toHaveBeenCalledTimes(1);
  send.mockRestore();
});

test('fromEnvironment reads the table and index names, and the endpoint from AWS_ENDPOINT_URL_DYNAMODB', async () => {
  const tableName = await dynamo.createRegistryTable('from-environment');
  const store = ConnectionStore.fromEnvironment({ [Env.TABLE_NAME]: tableName, [Env.USER_INDEX_NAME]: 'byUser' });
  await store.register(row('c1', 'u1'));
  expect(await collect(store.ofUser('u1'))).toEqual(['c1']);
  expect(() => ConnectionStore.fromEnvironment({})).toThrow(/CONNECTIONS_TABLE_NAME/);
});

test('connectionRow counts the ttl from now and carries the user\'s expiry and claims', () => {
  const now = 1_700_000_000_500;
  expect(connectionRow({ connectionId: 'c', connectedAt: 1_600_000_000_000 }, { userId: 'u', expiresAt: 1_700_000_900, claims: { a: 'b' } }, 7500, now))
    .toEqual({ connectionId: 'c', userId: 'u', connectedAt: 1_600_000_000_000, ttl: 1_700_007_500, expiresAt: 1_700_000_900, claims: { a: 'b' } });
});
