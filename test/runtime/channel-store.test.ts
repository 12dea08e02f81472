import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { ChannelStore } from '../../src/runtime/channel-store';
import { channelsTableInput } from '../support/channels-table';
import { useLocalDynamo } from '../support/dynalite';

const dynamo = useLocalDynamo();
let tables = 0;

/** A fresh channels table and a store whose clock the test moves. */
async function storeAt(startMs: number): Promise<{ store: ChannelStore; clock: { now: number } }> {
  const tableName = `store-${++tables}`;
  await dynamo.client.send(new CreateTableCommand(channelsTableInput(tableName)));
  const clock = { now: startMs };
  return { store: new ChannelStore({ client: dynamo.client, tableName, now: () => clock.now }), clock };
}

const T0 = Date.UTC(2026, 0, 1);
const collect = async (pages: AsyncIterable<string[]>): Promise<string[]> => {
  const ids: string[] = [];
  for await (const page of pages) ids.push(...page);
  return ids;
};

test('history keeps the last N for at most its max age; replay past it reports the gap', async () => {
  const { store, clock } = await storeAt(T0);
  for (let id = 1; id <= 3; id++) await store.remember('rooms/a', { id, frame: `{"id":${id}}` }, 10, 60);
  await store.nextId('rooms/a');
  await store.nextId('rooms/a');
  await store.nextId('rooms/a');
  expect(await store.replay('rooms/a', 1, 10)).toEqual({ entries: [{ id: 2, frame: '{"id":2}' }, { id: 3, frame: '{"id":3}' }], gap: false });
  clock.now += 61_000;
  expect(await store.replay('rooms/a', 1, 10)).toEqual({ entries: [], gap: true });
  expect(await store.replay('rooms/a', 3, 10)).toEqual({ entries: [], gap: false });
});

test('subscriptions past their ttl are skipped by publish and by the member list', async () => {
  const { store, clock } = await storeAt(T0);
  const ttl = T0 / 1000 + 100;
  await store.subscribe({ connectionId: 'c1', userId: 'alice', channel: 'rooms/a', rule: 0, presence: true, ttl });
  await store.subscribe({ connectionId: 'c2', userId: 'bob', channel: 'rooms/a', rule: 0, presence: true, ttl: ttl + 1_000 });
  const all = async () => (await Promise.all(Array.from({ length: store.shards }, (_, s) => collect(store.subscribers('rooms/a', s))))).flat().sort();
  expect(await all()).toEqual(['c1', 'c2']);
  clock.now += 200_000; // past c1's ttl (and alice's presence ttl), not c2's
  expect(await all()).toEqual(['c2']);
  expect(await store.members('rooms/a')).toEqual({ members: ['bob'], cursor: null });
});

test('the rate window counts per user and starts over in the next window', async () => {
  const { store, clock } = await storeAt(T0);
  expect(await store.withinRate('alice', 2, 10)).toBe(true);
  expect(await store.withinRate('alice', 2, 10)).toBe(true);
  expect(await store.withinRate('alice', 2, 10)).toBe(false);
  expect(await store.withinRate('bob', 2, 10)).toBe(true);
  clock.now += 10_000;
  expect(await store.withinRate('alice', 2, 10)).toBe(true);
});

test('a bad presence cursor is a RangeError (answered BadRequest), not a DynamoDB error', async () => {
  const { store } = await storeAt(T0);
  await expect(store.members('rooms/a', '')).resolves.toEqual({ members: [], cursor: null });
  await expect(store.members('rooms/a', Buffer.from('x'.repeat(600)).toString('base64url'))).rejects.toThrow(RangeError);
});
