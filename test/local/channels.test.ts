import { synthesizeChannelsChat } from './fixtures/channels-chat';
import { closeAllClients, TestClient } from './support/clients';
import { cliToken, GatewayProcess, stopAllGateways } from './support/gateway-process';

/**
 * End to end: channels through the bundled `authws local`, with the library's real handler
 * assets and real WebSocket clients.
 */

const SECRET = 'channels-test-secret';
let gateway: GatewayProcess;
let url: string;

beforeAll(async () => {
  gateway = await GatewayProcess.start(['--assembly', synthesizeChannelsChat(), '--secret', SECRET]);
  url = gateway.urls[0];
}, 60_000);

afterEach(() => closeAllClients());

afterAll(() => stopAllGateways());

async function connectAs(user: string, ...claims: string[]): Promise<TestClient> {
  return TestClient.connect(url, { headers: { Authorization: `Bearer ${await cliToken(SECRET, user, ...claims)}` } });
}

/** Frames a client received while a test waited for something else, kept in order for later. */
const stashed = new Map<TestClient, any[]>();

/** Sends `frame` and resolves with the answer carrying its requestId; other frames are stashed. */
async function ask(client: TestClient, frame: Record<string, unknown>): Promise<any> {
  const requestId = `r${Math.random().toString(36).slice(2)}`;
  client.send({ ...frame, requestId });
  for (;;) {
    const answer = await client.nextJson();
    if (answer.requestId === requestId) return answer;
    stashed.set(client, [...(stashed.get(client) ?? []), answer]);
  }
}

/** The next channel message (answers and presence events are skipped). */
async function nextMessage(client: TestClient): Promise<any> {
  for (;;) {
    const kept = stashed.get(client) ?? [];
    const frame = kept.length > 0 ? kept.shift() : await client.nextJson();
    if ('channel' in frame && 'message' in frame) return frame;
  }
}

/** Nothing but answers and presence events arrived (all of them already read). */
function heardNoMessages(client: TestClient): boolean {
  return (stashed.get(client) ?? []).every((frame) => !('message' in frame));
}

test('two rooms are isolated from each other', async () => {
  const alice = await connectAs('alice');
  const bob = await connectAs('bob');
  expect(await ask(alice, { action: 'subscribe', channel: 'rooms/red' })).toMatchObject({ action: 'subscribed', channel: 'rooms/red' });
  expect(await ask(bob, { action: 'subscribe', channel: 'rooms/blue' })).toMatchObject({ action: 'subscribed', channel: 'rooms/blue' });

  expect(await ask(alice, { action: 'publish', channel: 'rooms/blue', message: 'for blue' })).toMatchObject({ action: 'published', id: 1 });
  expect(await ask(bob, { action: 'publish', channel: 'rooms/red', message: 'for red' })).toMatchObject({ action: 'published', id: 1 });

  expect(await nextMessage(bob)).toEqual({ channel: 'rooms/blue', message: 'for blue', sender: 'alice', id: 1 });
  expect(await nextMessage(alice)).toEqual({ channel: 'rooms/red', message: 'for red', sender: 'bob', id: 1 });
  // Each heard its own room only: everything queued before a ping's answer was read, and no other message was among it.
  expect(await ask(alice, { action: 'ping' })).toEqual({ action: 'pong', requestId: expect.any(String) });
  expect(await ask(bob, { action: 'ping' })).toEqual({ action: 'pong', requestId: expect.any(String) });
  expect(heardNoMessages(alice) && heardNoMessages(bob)).toBe(true);
}, 30_000);

test('a private user feed is unreadable by others, and no client can publish to it', async () => {
  const alice = await connectAs('alice');
  const mallory = await connectAs('mallory');
  expect(await ask(alice, { action: 'subscribe', channel: 'users/alice' })).toMatchObject({ action: 'subscribed' });
  expect(await ask(mallory, { action: 'subscribe', channel: 'users/alice' }))
    .toMatchObject({ error: { code: 'Forbidden' }, action: 'subscribe', channel: 'users/alice' });
  expect(await ask(mallory, { action: 'subscribe', channel: 'rooms/../users/alice' })).toMatchObject({ error: { code: 'BadRequest' } });
  expect(await ask(mallory, { action: 'publish', channel: 'users/alice', message: 'phish' })).toMatchObject({ error: { code: 'Forbidden' } });
  expect(await ask(alice, { action: 'publish', channel: 'users/alice', message: 'self' })).toMatchObject({ error: { code: 'Forbidden' } });
}, 30_000);

test('a tenant feed: members of the tenant read, only its admins publish, other tenants are refused', async () => {
  const admin = await connectAs('ann', '--claim', 'tenant=acme', '--claim', 'role=admin');
  const member = await connectAs('max', '--claim', 'tenant=acme', '--claim', 'role=member');
  const outsider = await connectAs('oz', '--claim', 'tenant=globex', '--claim', 'role=admin');
  expect(await ask(member, { action: 'subscribe', channel: 'tenants/acme/news' })).toMatchObject({ action: 'subscribed' });
  expect(await ask(outsider, { action: 'subscribe', channel: 'tenants/acme/news' })).toMatchObject({ error: { code: 'Forbidden' } });
  expect(await ask(member, { action: 'publish', channel: 'tenants/acme/news', message: 'x' })).toMatchObject({ error: { code: 'Forbidden' } });
  expect(await ask(admin, { action: 'publish', channel: 'tenants/acme/news', message: 'release at 5' })).toMatchObject({ action: 'published' });
  expect(await nextMessage(member)).toEqual({ channel: 'tenants/acme/news', message: 'release at 5', sender: 'ann', id: 1 });
}, 30_000);

test('replay after reconnect with since loses nothing, in order, and presence follows the tabs', async () => {
  const writer = await connectAs('writer');
  let reader = await connectAs('reader');
  await ask(reader, { action: 'subscribe', channel: 'rooms/log' });
  let lastSeen = 0;
  for (let n = 1; n <= 3; n++) {
    await ask(writer, { action: 'publish', channel: 'rooms/log', message: n });
    lastSeen = (await nextMessage(reader)).id;
  }
  expect(lastSeen).toBe(3);
  await reader.close();
  for (let n = 4; n <= 7; n++) await ask(writer, { action: 'publish', channel: 'rooms/log', message: n });

  reader = await connectAs('reader');
  const ack = await ask(reader, { action: 'subscribe', channel: 'rooms/log', since: lastSeen });
  expect(ack).toEqual({ action: 'subscribed', channel: 'rooms/log', requestId: expect.any(String) });
  const replayed = [];
  for (let i = 0; i < 4; i++) replayed.push(await nextMessage(reader));
  expect(replayed.map((m) => [m.id, m.message, m.replay])).toEqual([[4, 4, true], [5, 5, true], [6, 6, true], [7, 7, true]]);
  await ask(writer, { action: 'publish', channel: 'rooms/log', message: 8 });
  expect(await nextMessage(reader)).toEqual({ channel: 'rooms/log', message: 8, sender: 'writer', id: 8 });

  const page = await ask(reader, { action: 'presence', channel: 'rooms/log' });
  expect(page).toEqual({ action: 'presence', channel: 'rooms/log', members: ['reader'], cursor: null, requestId: expect.any(String) });
}, 30_000);
