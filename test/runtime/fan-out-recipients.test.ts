import { connectionRow, ConnectionStore, RecipientPage } from '../../src/runtime/connection-store';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { LocalDynamo, startDynalite } from '../support/dynalite';

let dynamo: LocalDynamo;
let store: ConnectionStore;
const ids = Array.from({ length: 230 }, (_, i) => `conn-${String(i).padStart(4, '0')}`);

beforeAll(async () => {
  useDummyAwsEnvironment();
  dynamo = await startDynalite('recipients');
  store = new ConnectionStore({ client: dynamo.client, tableName: dynamo.tableName, pageSize: 20 });
  const now = Math.floor(Date.now() / 1000);
  await Promise.all(ids.map((id, i) => store.register(connectionRow(
    { connectionId: id, connectedAt: Date.now() },
    // Every tenth row's token has expired: readers skip it.
    { userId: `u${i % 7}`, expiresAt: i % 10 === 0 ? now - 60 : now + 600, claims: {} },
    3_600,
  ))));
});

afterAll(async () => {
  await dynamo.close();
});

const live = ids.filter((_, i) => i % 10 !== 0);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

test.each([1, 2, 4, 7])('all(%i segments) yields every live row exactly once, expired rows skipped', async (segments) => {
  const read = await collect(store.all(segments));
  expect(read.sort()).toEqual(live);
});

test('segments split the table between them', async () => {
  const parts = await Promise.all([0, 1, 2, 3].map(async (s) => (await collect(store.segment(s, 4))).flatMap((page) => page.ids)));
  expect(parts.flat().sort()).toEqual(live);
  expect(parts.filter((part) => part.length > 0).length).toBeGreaterThan(1);
});

test('a segment resumes from a page\'s start key and reads the same rows from there on', async () => {
  const pages: RecipientPage[] = await collect(store.segment(1, 2));
  expect(pages.length).toBeGreaterThan(2);
  expect(pages[0].startKey).toBeUndefined();
  const resumed = await collect(store.segment(1, 2, pages[2].startKey));
  expect(resumed.flatMap((page) => page.ids)).toEqual(pages.slice(2).flatMap((page) => page.ids));
});

test('a failing segment rejects the merged read', async () => {
  const broken = new ConnectionStore({ client: dynamo.client, tableName: 'no-such-table' });
  await expect(collect(broken.all(3))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
});
