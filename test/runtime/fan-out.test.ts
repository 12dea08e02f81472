import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GetConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { FanOut, fanOutSettings, isGone } from '../../src/runtime/fan-out';
import { SIGV4_AUTHORIZATION, useDummyAwsEnvironment } from '../support/aws-environment';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { newConnectionId } from '../support/websocket-events';

let server: ConnectionsServer;
let client: ApiGatewayManagementApiClient;
let removed: string[];
let output: CapturedConsole;

beforeAll(async () => {
  useDummyAwsEnvironment();
});

beforeEach(async () => {
  server = await ConnectionsServer.start({ postLatencyMs: 5 });
  client = new ApiGatewayManagementApiClient({ endpoint: server.callbackUrl, requestHandler: { httpAgent: { maxSockets: 100 } } });
  removed = [];
  output = captureConsole();
});

afterEach(async () => {
  output.restore();
  client.destroy();
  await server.stop();
});

function fanOut(options: { concurrency?: number; postTimeoutMs?: number } = {}): FanOut {
  return new FanOut({ client, onGone: async (id) => { removed.push(id); }, ...options });
}

function openConnections(count: number): string[] {
  return Array.from({ length: count }, () => {
    const id = newConnectionId();
    server.connect(id);
    return id;
  });
}

async function* each(ids: string[]): AsyncGenerator<string> {
  yield* ids;
}

test('delivers the payload, byte for byte, to every recipient, with SigV4-signed requests', async () => {
  const ids = openConnections(20);
  const payload = JSON.stringify({ message: 'Grüße 👋', sender: 'user-a' });
  expect(await fanOut().send(each(ids), payload)).toEqual({ delivered: 20, gone: 0, failed: 0 });
  for (const id of ids) expect(server.received(id)).toEqual([payload]);
  for (const request of server.requests) {
    expect(request.authorization).toMatch(SIGV4_AUTHORIZATION);
    expect(SIGV4_AUTHORIZATION.exec(request.authorization!)?.groups).toEqual({ region: 'us-east-1', service: 'execute-api' });
  }
});

test('connection ids are URL-encoded in the path: ids often contain "=", "+" or "/"', async () => {
  const ids = ['L0SM9cOFvHcCIhw=', 'ab+cd/efGHijkl0=', 'plainId01234567'];
  ids.forEach((id) => server.connect(id));
  expect(await fanOut().send(each(ids), 'x')).toEqual({ delivered: 3, gone: 0, failed: 0 });
  expect(server.requests.map((r) => r.connectionId).sort()).toEqual([...ids].sort());
});

test('a gone recipient (410) has its row deleted, and the others still receive', async () => {
  const [alive1, stale, alive2] = openConnections(3);
  server.disconnect(stale);
  expect(await fanOut().send(each([alive1, stale, alive2]), 'hi')).toEqual({ delivered: 2, gone: 1, failed: 0 });
  expect(removed).toEqual([stale]);
  expect(server.received(alive1)).toEqual(['hi']);
  expect(server.received(alive2)).toEqual(['hi']);
});

test('a row that cannot be deleted is still counted gone and stops nothing', async () => {
  const [stale, alive] = openConnections(2);
  server.disconnect(stale);
  const failingRemove = new FanOut({ client, onGone: async () => { throw new Error('DynamoDB down'); } });
  expect(await failingRemove.send(each([stale, alive]), 'hi')).toEqual({ delivered: 1, gone: 1, failed: 0 });
});

test('throttled (429) and failing (500) recipients are retried, counted failed, and stop no one', async () => {
  const [throttled, broken, ok1, ok2] = openConnections(4);
  server.inject(throttled, 'throttled');
  server.inject(broken, 'internal');
  expect(await fanOut().send(each([throttled, broken, ok1, ok2]), 'hi')).toEqual({ delivered: 2, gone: 0, failed: 2 });
  expect(server.received(ok1)).toEqual(['hi']);
  expect(server.received(ok2)).toEqual(['hi']);
  // The SDK's jittered backoff retries throttling and 5xx before giving up.
  expect(server.attempts(throttled)).toBeGreaterThan(1);
  expect(server.attempts(broken)).toBeGreaterThan(1);
  expect(removed).toEqual([]);
  expect(output.records()).toEqual(expect.arrayContaining([
    { level: 'warn', event: 'post_failed', connectionId: throttled, error: 'LimitExceededException' },
    { level: 'warn', event: 'post_failed', connectionId: broken, error: 'InternalServerErrorException' },
  ]));
});

test('a recipient throttled once is delivered on the retry', async () => {
  const [once] = openConnections(1);
  server.inject(once, 'throttled', 1);
  expect(await fanOut().send(each([once]), 'hi')).toEqual({ delivered: 1, gone: 0, failed: 0 });
  expect(server.attempts(once)).toBe(2);
});

test('a hanging recipient is abandoned at the post timeout; the others receive', async () => {
  const [hung, ok1, ok2] = openConnections(3);
  server.inject(hung, 'hang');
  expect(await fanOut({ postTimeoutMs: 200 }).send(each([hung, ok1, ok2]), 'hi')).toEqual({ delivered: 2, gone: 0, failed: 1 });
  expect(server.received(ok1)).toEqual(['hi']);
  expect(server.received(ok2)).toEqual(['hi']);
  // The client closed the request rather than leaving it open.
  await server.idle();
  expect(server.postsAbandoned).toBe(1);
});

test('a payload the API refuses as too large (413) is counted failed', async () => {
  const [id] = openConnections(1);
  expect(await fanOut().send(each([id]), 'x'.repeat(131_073))).toEqual({ delivered: 0, gone: 0, failed: 1 });
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
  expect(await fanOut({ concurrency }).send(recipients(), 'hi')).toEqual({ delivered: 200, gone: 0, failed: 0 });
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
  expect(await fanOut().send(each([]), 'hi')).toEqual({ delivered: 0, gone: 0, failed: 0 });
  expect(server.requests).toEqual([]);
});

test('sendTo reports what became of a single post', async () => {
  const [id] = openConnections(1);
  expect(await fanOut().sendTo(id, 'pong')).toBe('delivered');
  expect(await fanOut().sendTo('unknownId000000=', 'pong')).toBe('gone');
  expect(removed).toEqual(['unknownId000000=']);
});

describe('the connections server speaks the real wire format', () => {
  test('GET answers the connection with ISO dates; DELETE answers 204 and the connection is gone', async () => {
    const [id] = openConnections(1);
    const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'connections-server' });
    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    const err = await client.send(new GetConnectionCommand({ ConnectionId: id })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'GoneException', $metadata: { httpStatusCode: 410 } });
    expect(isGone(err)).toBe(true);
  });

  test('an unsigned request is refused', async () => {
    const res = await fetch(`${server.callbackUrl}/@connections/abc`, { method: 'POST', body: 'hi' });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
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
