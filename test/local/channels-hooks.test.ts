import { synthesizeChannelsHooks } from './fixtures/channels-hooks';
import { closeAllClients, TestClient } from './support/clients';
import { cliToken, GatewayProcess, stopAllGateways } from './support/gateway-process';
import { publishToChannel } from '../../src/publish';

/**
 * End to end through the bundled `authws local`: what channels ask of the Lambda and EventBridge
 * APIs works locally. A rule's Lambda hook decides subscriptions, lifecycle events reach the local
 * EventBridge (and a rule's function), and a backend on this machine publishes with the publish
 * helper through the local Lambda Invoke API.
 */

const SECRET = 'channels-hooks-secret';
let gateway: GatewayProcess;
let url: string;

beforeAll(async () => {
  gateway = await GatewayProcess.start(['--assembly', synthesizeChannelsHooks(), '--secret', SECRET]);
  url = gateway.urls[0];
}, 60_000);

afterEach(() => closeAllClients());

afterAll(() => stopAllGateways());

async function connectAs(user: string): Promise<TestClient> {
  return TestClient.connect(url, { headers: { Authorization: `Bearer ${await cliToken(SECRET, user)}` } });
}

/** Sends `frame` and resolves with the answer carrying its requestId; other frames are skipped. */
async function ask(client: TestClient, frame: Record<string, unknown>): Promise<any> {
  const requestId = `r${Math.random().toString(36).slice(2)}`;
  client.send({ ...frame, requestId });
  for (;;) {
    const answer = await client.nextJson();
    if (answer.requestId === requestId) return answer;
  }
}

/** Resolves with the gateway's output lines after `from` once one matches `pattern` (fails after 10 s). */
async function logLine(pattern: RegExp, from = 0): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = gateway.output.slice(from).split('\n').find((candidate) => pattern.test(candidate));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern} in:\n${gateway.output.slice(from)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('start-up prints the local Lambda and EventBridge endpoints, on the loopback', () => {
  expect(gateway.output).toMatch(/^Lambda Invoke API at http:\/\/127\.0\.0\.1:\d+ \(AWS_ENDPOINT_URL_LAMBDA\): .*Publisher/m);
  expect(gateway.output).toMatch(/^EventBridge PutEvents at http:\/\/127\.0\.0\.1:\d+ \(AWS_ENDPOINT_URL_EVENTBRIDGE\)$/m);
});

test("the rule's Lambda hook allows rooms/open-* and refuses other rooms", async () => {
  const alice = await connectAs('alice');
  expect(await ask(alice, { action: 'subscribe', channel: 'rooms/open-lobby' })).toMatchObject({ action: 'subscribed', channel: 'rooms/open-lobby' });
  expect(await ask(alice, { action: 'subscribe', channel: 'rooms/staff' }))
    .toMatchObject({ error: { code: 'Forbidden' }, action: 'subscribe', channel: 'rooms/staff' });
  expect(await ask(alice, { action: 'subscribe', channel: 'rooms/open-cafe' })).toMatchObject({ action: 'subscribed' });
}, 30_000);

test('lifecycle events reach the local EventBridge on connect, subscribe and disconnect, and a matching rule runs its function', async () => {
  const from = gateway.output.length;
  const bob = await connectAs('bob');
  expect(await logLine(/eventbridge: default authenticated-websocket-api "Connected" .*"userId":"bob"/, from)).toContain('"connectionId":"');
  await ask(bob, { action: 'subscribe', channel: 'rooms/open-garden' });
  await logLine(/eventbridge: default authenticated-websocket-api "Joined" .*"channel":"rooms\/open-garden".*"userId":"bob"/, from);
  // The rule on source and detail-type invoked its function, whose console output is in the log.
  await logLine(/join-watcher saw bob join rooms\/open-garden/, from);
  await bob.close();
  await logLine(/eventbridge: default authenticated-websocket-api "Left" .*"channel":"rooms\/open-garden".*"userId":"bob"/, from);
  await logLine(/eventbridge: default authenticated-websocket-api "Disconnected" .*"userId":"bob"/, from);
  expect(gateway.output.slice(from)).not.toContain('lifecycle_event_failed');
}, 30_000);

test('a backend on this machine publishes to a channel with the publish helper through the local Lambda endpoint', async () => {
  const carol = await connectAs('carol');
  expect(await ask(carol, { action: 'subscribe', channel: 'rooms/open-news' })).toMatchObject({ action: 'subscribed' });

  const [, endpoint, names] = /^Lambda Invoke API at (\S+) \(AWS_ENDPOINT_URL_LAMBDA\): (.*)$/m.exec(gateway.output)!;
  const publisher = names.split(', ').find((name) => name.includes('Publisher'))!;
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_LAMBDA: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIALOCALBACKEND',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  try {
    const result = await publishToChannel('rooms/open-news', { headline: 'local works' }, { functionName: publisher, sender: 'newsroom' });
    expect(result).toMatchObject({ delivered: 1, id: 1 });
  } finally {
    process.env = saved;
  }
  for (;;) {
    const frame = await carol.nextJson();
    if ('message' in frame) {
      expect(frame).toEqual({ channel: 'rooms/open-news', message: { headline: 'local works' }, sender: 'newsroom', id: 1 });
      break;
    }
  }
}, 30_000);
