import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GetConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults } from '../../src/runtime/environment';
import { FanOut, FanOutOptions, fanOutSettings, isGone } from '../../src/runtime/fan-out';
import { SignedConnectionsClient } from '../../src/runtime/signed-connections-client';
import { DynamoStaleConnections } from '../../src/runtime/stale-connections';
import { SIGV4_AUTHORIZATION, useDummyAwsEnvironment } from '../support/aws-environment';
import { ConnectionsServer, ConnectionsServerOptions } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { LocalDynamo, startDynalite } from '../support/dynalite';
import { expectedSignature, parseAuthorization } from '../support/sigv4';
import { newConnectionId } from '../support/websocket-events';

let dynamo: LocalDynamo;
let server: ConnectionsServer;
let transport: SignedConnectionsClient;
let removed: string[][];
let output: CapturedConsole;

beforeAll(async () => {
  useDummyAwsEnvironment();
  dynamo = await startDynalite('fan-out');
});

afterAll(async () => {
  await dynamo.close();
});

async function startServer(options: ConnectionsServerOptions = { postLatencyMs: 5 }): Promise<void> {
  server = await ConnectionsServer.start(options);
  transport = new SignedConnectionsClient({ endpoint: server.callbackUrl, region: 'us-east-1', maxSockets: 100 });
}

beforeEach(async () => {
  await startServer();
  removed = [];
  output = captureConsole();
});

afterEach(async () => {
  output.restore();
  transport.destroy();
  await server.stop();
});

/** An engine with fast backoff, its gone rows recorded in `removed` batch by batch. */
function fanOut(options: Partial<FanOutOptions> = {}): FanOut {
  return new FanOut({
    transport,
    staleConnections: { removeAll: async (ids) => { removed.push([...ids]); } },
    backoffBaseMs: 5,
    backoffMaxMs: 40,
    ...options,
  });
}

function openConnections(count: number): string[] {
  return Array.from({ length: count }, () => {
    const id = newConnectionId();
    server.connect(id);
    return id;
  });
}

async function* each(ids: readonly string[]): AsyncGenerator<string> {
  yield* ids;
}

const counts = (delivered: number, gone: number, failed: number, more: { retried?: number; throttled?: number } = {}) =>
  ({ delivered, gone, failed, retried: more.retried ?? 0, throttled: more.throttled ?? 0, payloadTooLarge: false, complete: true, cutOff: 0 });

test('delivers the payload, byte for byte, to every recipient', async () => {
  const ids = openConnections(20);
  const payload = JSON.stringify({ message: 'Grüße 👋', sender: 'user-a' });
  expect(await fanOut().send(each(ids), payload)).toEqual(counts(20, 0, 0));
  for (const id of ids) expect(server.received(id)).toEqual([payload]);
});

test('every request carries a valid SigV4 signature for execute-api, recomputed from the wire', async () => {
  const ids = ['L0SM9cOFvHcCIhw=', 'ab+cd/efGHijkl0=', ...openConnections(3)];
  ids.slice(0, 2).forEach((id) => server.connect(id));
  await fanOut().send(each(ids), '{"message":"signed"}');
  expect(server.requests).toHaveLength(5);
  for (const request of server.requests) {
    const auth = parseAuthorization(request.authorization!);
    expect(request.authorization).toMatch(SIGV4_AUTHORIZATION);
    expect(auth).toMatchObject({ accessKeyId: 'AKIDEXAMPLE', region: 'us-east-1', service: 'execute-api' });
    expect(auth.signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-content-sha256']));
    expect(auth.date).toBe(String(request.headers['x-amz-date']).slice(0, 8));
    expect(auth.signature).toBe(expectedSignature({ ...request, body: request.body! }, process.env.AWS_SECRET_ACCESS_KEY!));
  }
  // A signature made with another secret does not match: the check has teeth.
  const first = server.requests[0];
  expect(parseAuthorization(first.authorization!).signature).not.toBe(expectedSignature({ ...first, body: first.body! }, 'another-secret'));
});

test('connection ids are URL-encoded in the path: ids often contain "=", "+" or "/"', async () => {
  const ids = ['L0SM9cOFvHcCIhw=', 'ab+cd/efGHijkl0=', 'plainId01234567'];
  ids.forEach((id) => server.connect(id));
  expect(await fanOut().send(each(ids), 'x')).toEqual(counts(3, 0, 0));
  expect(server.requests.map((r) => r.connectionId).sort()).toEqual([...ids].sort());
});

describe('against dynalite with a share of 410, 429, 5xx and hanging posts', () => {
  test('every live connection receives the message, every gone row is deleted, the counts add up', async () => {
    const tableName = await dynamo.createRegistryTable(`faults-${Date.now()}`);
    const store = new ConnectionStore({ client: dynamo.client, tableName, pageSize: 40 });
    const ids = await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      const id = newConnectionId();
      await store.register(connectionRow({ connectionId: id, connectedAt: Date.now() }, { userId: `u${i}`, claims: {} }, Defaults.CONNECTION_TTL_SECONDS));
      server.connect(id);
      return id;
    }));
    const gone = ids.slice(0, 40); // 10%: closed without $disconnect
    const throttledTwice = ids.slice(40, 80); // 10%
    const failingOnce = ids.slice(80, 120); // 10% 5xx
    const hangingOnce = ids.slice(120, 140); // 5%
    gone.forEach((id) => server.disconnect(id));
    throttledTwice.forEach((id) => server.inject(id, 'throttled', 2));
    failingOnce.forEach((id) => server.inject(id, 'internal', 1));
    hangingOnce.forEach((id) => server.inject(id, 'hang', 1));

    const engine = new FanOut({
      transport,
      staleConnections: new DynamoStaleConnections(dynamo.client, tableName),
      concurrency: 50,
      postTimeoutMs: 300,
      backoffBaseMs: 5,
      backoffMaxMs: 40,
    });
    const started = Date.now();
    const result = await engine.send(store.all(4), '{"message":"storm"}');

    expect(result).toEqual({
      delivered: 360,
      gone: 40,
      failed: 0,
      retried: 40 * 2 + 40 + 20,
      throttled: 80,
      payloadTooLarge: false,
      complete: true,
      cutOff: 0,
    });
    expect(result.delivered + result.gone + result.failed).toBe(ids.length);
    for (const id of ids.slice(40)) expect(server.received(id)).toEqual(['{"message":"storm"}']); // exactly once here
    for (const id of gone) {
      const { Item } = await dynamo.client.send(new GetItemCommand({ TableName: tableName, Key: { connectionId: { S: id } } }));
      expect(Item).toBeUndefined();
    }
    expect(await collect(store.all())).toHaveLength(360); // live rows all kept
    // A hung post never answers, so finishing at all means each was abandoned at its timeout
    // (postsAbandoned below). The bound is far above the ~1 s this takes, so a loaded machine does
    // not fail it; it only stops a regression from waiting for jest's own timeout.
    expect(Date.now() - started).toBeLessThan(20_000);
    await server.idle();
    expect(server.postsAbandoned).toBe(20);
  });
});

test('gone rows are deleted in batches of at most 25', async () => {
  const ids = openConnections(60);
  ids.forEach((id) => server.disconnect(id));
  expect(await fanOut().send(each(ids), 'hi')).toEqual(counts(0, 60, 0));
  expect(removed.flat().sort()).toEqual([...ids].sort());
  expect(Math.max(...removed.map((batch) => batch.length))).toBeLessThanOrEqual(25);
  expect(removed.length).toBeGreaterThanOrEqual(3);
});

test('a batch that cannot be deleted is still counted gone, logged, and stops nothing', async () => {
  const [stale, alive] = openConnections(2);
  server.disconnect(stale);
  const failingRemove = fanOut({ staleConnections: { removeAll: async () => { throw new Error('DynamoDB down'); } } });
  expect(await failingRemove.send(each([stale, alive]), 'hi')).toEqual(counts(1, 1, 0));
  expect(output.records()).toContainEqual(expect.objectContaining({ event: 'stale_connections_not_removed', count: 1, error: 'Error' }));
});

test('persistent 429 and 500 are retried up to their bounds, then counted failed; rows stay', async () => {
  const [throttled, broken, ok1, ok2] = openConnections(4);
  server.inject(throttled, 'throttled');
  server.inject(broken, 'internal');
  const result = await fanOut({ maxThrottledAttempts: 5, maxFailedAttempts: 3 }).send(each([throttled, broken, ok1, ok2]), 'hi');
  expect(result).toEqual(counts(2, 0, 2, { retried: 4 + 2, throttled: 5 }));
  expect(server.attempts(throttled)).toBe(5);
  expect(server.attempts(broken)).toBe(3);
  expect(server.received(ok1)).toEqual(['hi']);
  expect(removed).toEqual([]);
  expect(output.records()).toEqual(expect.arrayContaining([
    expect.objectContaining({ level: 'warn', event: 'post_failed', connectionId: throttled, error: 'LimitExceededException', attempts: 5 }),
    expect.objectContaining({ level: 'warn', event: 'post_failed', connectionId: broken, error: 'InternalServerErrorException', attempts: 3 }),
  ]));
});

test('a post that always hangs is abandoned at each timeout and never holds the send longer than its attempts', async () => {
  const [hung, ok] = openConnections(2);
  server.inject(hung, 'hang');
  const failed: string[] = [];
  const started = Date.now();
  const result = await fanOut({ postTimeoutMs: 150, maxFailedAttempts: 2 }).send(each([hung, ok]), 'hi', { onFailed: (id) => failed.push(id) });
  expect(result).toEqual(counts(1, 0, 1, { retried: 1 }));
  expect(failed).toEqual([hung]);
  // The hung post never answers: the send ends only because both attempts were abandoned. Generous
  // bound (normally ~350 ms), so machine load cannot fail it.
  expect(Date.now() - started).toBeLessThan(10_000);
  await server.idle();
  expect(server.postsAbandoned).toBe(2); // the client closed each request rather than leaving it open
  expect(output.records()).toContainEqual(expect.objectContaining({ event: 'post_failed', connectionId: hung, error: 'Timeout' }));
});

test('a payload the API refuses as too large (413) is reported and stops the send', async () => {
  const ids = openConnections(30);
  const result = await fanOut({ concurrency: 2 }).send(each(ids), 'x'.repeat(131_073));
  expect(result.payloadTooLarge).toBe(true);
  expect(result.delivered).toBe(0);
  expect(result.failed).toBeLessThanOrEqual(2);
  expect(server.requests.length).toBeLessThanOrEqual(2);
});

test('sustained 429s under a rate ceiling lower the send rate, and nothing is lost', async () => {
  transport.destroy();
  await server.stop();
  // 200/s holds a burst of 20 posts: the first 50 concurrent posts overrun it however slow the
  // machine, so the ceiling is always met (at 800/s a loaded machine could stay under it).
  await startServer({ postLatencyMs: 5, maxPostsPerSecond: 200 });
  const ids = openConnections(400);
  // A generous throttle budget: this test is about the rate being learnt and nothing lost, not the budget.
  const engine = fanOut({ concurrency: 50, backoffBaseMs: 20, backoffMaxMs: 500, maxThrottledAttempts: 30 });
  const result = await engine.send(each(ids), 'hi');
  expect(result.delivered).toBe(400);
  expect(result.failed).toBe(0);
  expect(result.throttled).toBeGreaterThan(0);
  expect(engine.sendRate).toBeLessThan(2_000); // it learnt a ceiling instead of hammering
  for (const id of ids) expect(server.received(id)).toEqual(['hi']);
});

test('maxSendRate paces the posts', async () => {
  const ids = openConnections(60);
  const started = Date.now();
  await fanOut({ maxSendRate: 200 }).send(each(ids), 'hi');
  // 60 posts at 200/s take about 300 ms (less a 50 ms burst allowance).
  expect(Date.now() - started).toBeGreaterThanOrEqual(200);
});

test('a deadline stops pulling recipients, lets the posts under way finish, and reports the send incomplete', async () => {
  transport.destroy();
  await server.stop();
  await startServer({ postLatencyMs: 20 });
  const ids = openConnections(200);
  const result = await fanOut({ concurrency: 5 }).send(each(ids), 'hi', { deadline: Date.now() + 150 });
  expect(result.complete).toBe(false);
  expect(result.delivered).toBeGreaterThan(0);
  expect(result.delivered).toBeLessThan(200);
  expect(server.recipients()).toHaveLength(result.delivered);
});

test('under 60% 429s, the send returns by its deadline (rate limiter and backoff waits included) and reports who was not reached', async () => {
  transport.destroy();
  await server.stop();
  await startServer({ postLatencyMs: 5, throttledShare: 0.6 });
  const ids = openConnections(1000);
  // The production backoff (50 ms doubling to 2 s) and throttle budget: the waits a storm causes are real.
  const engine = new FanOut({ transport, staleConnections: { removeAll: async () => undefined }, concurrency: 100 });
  const started = Date.now();
  const deadline = started + 1_000;
  const result = await engine.send(each(ids), 'hi', { deadline });
  const overrun = Date.now() - deadline;
  expect(overrun).toBeLessThan(500); // it was 2.6 s past the deadline before waits respected it
  expect(result.throttled).toBeGreaterThan(0);
  expect(result.cutOff).toBeGreaterThan(0);
  // Every recipient pulled is accounted for once; the ones the deadline cut off are among the failed.
  expect(server.recipients().length).toBe(result.delivered);
  expect(result.failed).toBeGreaterThanOrEqual(result.cutOff);
  expect(result.delivered + result.failed).toBeLessThanOrEqual(1000);
  await server.idle(1_000);
});

test('a deadline that comes after the last recipient leaves the send complete', async () => {
  const ids = openConnections(5);
  expect(await fanOut().send(each(ids), 'hi', { deadline: Date.now() + 10_000 })).toEqual(counts(5, 0, 0));
});

test('never has more posts in flight than the concurrency bound', async () => {
  const ids = openConnections(60);
  const result = await fanOut({ concurrency: 4 }).send(each(ids), 'hi');
  expect(result.delivered).toBe(60);
  expect(server.maxInFlight).toBeLessThanOrEqual(4);
  expect(server.maxInFlight).toBeGreaterThan(1); // and does post in parallel
});

test('pulls recipients only as slots free up, never the whole audience ahead', async () => {
  const concurrency = 5;
  let pulled = 0;
  let mostAhead = 0;
  async function* recipients(): AsyncGenerator<string> {
    for (let i = 0; i < 200; i++) {
      const id = `conn-${i}`;
      server.connect(id);
      pulled += 1;
      mostAhead = Math.max(mostAhead, pulled - server.postsAnswered);
      yield id;
    }
  }
  expect(await fanOut({ concurrency }).send(recipients(), 'hi')).toEqual(counts(200, 0, 0));
  expect(mostAhead).toBeLessThanOrEqual(concurrency);
});

test('an iterator that fails mid-way rejects the send after the posts under way have settled', async () => {
  const ids = openConnections(3);
  async function* failing(): AsyncGenerator<string> {
    yield* ids;
    throw new Error('Scan failed');
  }
  await expect(fanOut().send(failing(), 'hi')).rejects.toThrow('Scan failed');
  for (const id of ids) expect(server.received(id)).toEqual(['hi']);
});

test('an empty audience sends nothing', async () => {
  expect(await fanOut().send(each([]), 'hi')).toEqual(counts(0, 0, 0));
  expect(server.requests).toEqual([]);
});

test('sendTo reports what became of a single post and deletes a gone row', async () => {
  const [id] = openConnections(1);
  expect(await fanOut().sendTo(id, 'pong')).toBe('delivered');
  expect(await fanOut().sendTo('unknownId000000=', 'pong')).toBe('gone');
  expect(removed).toEqual([['unknownId000000=']]);
});

test('sendTo retries a throttled post only while its deadline allows', async () => {
  const [id] = openConnections(1);
  server.inject(id, 'throttled');
  const started = Date.now();
  // Production backoff: 8 throttled attempts would wait seconds; the deadline ends it after ~300 ms.
  const engine = new FanOut({ transport, staleConnections: { removeAll: async () => undefined } });
  expect(await engine.sendTo(id, 'pong', started + 300)).toBe('failed');
  expect(Date.now() - started).toBeLessThan(300 + 400);
  expect(await engine.sendTo(id, 'pong', Date.now() - 1)).toBe('failed');
  expect(server.attempts(id)).toBeLessThan(8);
});

describe('the connections server speaks the real wire format', () => {
  test('GET answers the connection with ISO dates; DELETE answers 204 and the connection is gone', async () => {
    const client = new ApiGatewayManagementApiClient({ endpoint: server.callbackUrl });
    const [id] = openConnections(1);
    const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'connections-server' });
    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    const err = await client.send(new GetConnectionCommand({ ConnectionId: id })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'GoneException', $metadata: { httpStatusCode: 410 } });
    expect(isGone(err)).toBe(true);
    client.destroy();
  });

  test('an unsigned request is refused', async () => {
    const res = await fetch(`${server.callbackUrl}/@connections/abc`, { method: 'POST', body: 'hi' });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });

  test('the signed client reads the status and the error type', async () => {
    const [id] = openConnections(1);
    expect(await transport.post(id, Buffer.from('hi'), 1_000)).toEqual({ status: 200, errorType: undefined });
    expect(await transport.post('unknownId000000=', Buffer.from('hi'), 1_000)).toEqual({ status: 410, errorType: 'GoneException' });
  });
});

test('isGone recognises SDK v3 errors by name or HTTP status only', () => {
  expect(isGone({ name: 'GoneException' })).toBe(true);
  expect(isGone({ name: 'Unknown', $metadata: { httpStatusCode: 410 } })).toBe(true);
  expect(isGone({ statusCode: 410 })).toBe(false); // SDK v2's shape: v3 errors have no statusCode
  expect(isGone({ name: 'LimitExceededException', $metadata: { httpStatusCode: 429 } })).toBe(false);
  expect(isGone(undefined)).toBe(false);
});

test('fanOutSettings reads the bound and timeout, defaulting to 100 and 5000', () => {
  expect(fanOutSettings({})).toEqual({ concurrency: 100, postTimeoutMs: 5000 });
  expect(fanOutSettings({ FANOUT_CONCURRENCY: '8', POST_TIMEOUT_MS: '250' })).toEqual({ concurrency: 8, postTimeoutMs: 250 });
  expect(() => fanOutSettings({ FANOUT_CONCURRENCY: '0' })).toThrow(/FANOUT_CONCURRENCY/);
  expect(() => fanOutSettings({ POST_TIMEOUT_MS: 'soon' })).toThrow(/POST_TIMEOUT_MS/);
});

async function collect(ids: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const id of ids) all.push(id);
  return all;
}
