import { mkdtempSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { closeAllClients, refusalStatus, TestClient } from './support/clients';
import { AuthenticatedWebSocketApi, RouteTarget, WebSocketAuth } from '../../src';
import { LocalGateway } from '../../src/local/gateway';
import { signToken, TEST_SECRET } from '../support/tokens';

/**
 * What an attacker holding a validly signed token tries, end to end: real WebSocket clients against
 * `authws local` serving an AuthenticatedWebSocketApi with the bundled handlers (`npx projen bundle`)
 * and an HTTP route rendered with the default request template to a backend in the test.
 */

let gateway: LocalGateway;
let backend: Server;
let url: string;
const received: string[] = [];

function synthesize(backendUrl: string): string {
  const outdir = mkdtempSync(join(tmpdir(), 'authws-security-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'Security');
  const secret = new secretsmanager.Secret(stack, 'JwtSecret');
  new AuthenticatedWebSocketApi(stack, 'Chat', {
    apiName: 'chat',
    auth: WebSocketAuth.hmacSecret(secret),
    routes: { legacy: RouteTarget.http(`${backendUrl}/legacy`) },
  });
  app.synth();
  return outdir;
}

beforeAll(async () => {
  backend = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push(Buffer.concat(chunks).toString('utf8'));
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  gateway = await LocalGateway.start({
    assemblyDirectory: synthesize(`http://127.0.0.1:${(backend.address() as AddressInfo).port}`),
    port: 0,
    secret: TEST_SECRET,
    log: () => undefined,
  });
  url = gateway.stages[0].url;
}, 120_000);

afterEach(() => closeAllClients());

afterAll(async () => {
  await gateway?.close();
  backend?.closeAllConnections();
  await new Promise((resolve) => backend?.close(resolve));
});

async function connectAs(sub: string): Promise<TestClient> {
  return TestClient.connect(url, { headers: { Authorization: `Bearer ${await signToken({ sub }, { expiresIn: 600 })}` } });
}

async function statusOf(claims: Record<string, unknown>, expiresIn: number | null = 600): Promise<number> {
  return refusalStatus(url, { headers: { Authorization: `Bearer ${await signToken(claims, { expiresIn })}` } });
}

async function nextBackendRequest(count: number): Promise<any> {
  const until = Date.now() + 10_000;
  while (received.length < count && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return JSON.parse(received[count - 1]);
}

describe('HTTP route with the default request template', () => {
  test('a crafted sub cannot forge the userId the backend reads, and $context text in a frame stays text', async () => {
    const forged = 'mallory","userId":"alice';
    const client = await connectAs(forged);
    const before = received.length;
    client.send({ action: 'legacy', text: '$context.authorizer.userId', quote: '${context.connectionId}' });
    const request = await nextBackendRequest(before + 1);
    expect(request.userId).toBe(forged);
    expect(request.body).toEqual({ action: 'legacy', text: '$context.authorizer.userId', quote: '${context.connectionId}' });
    expect(request.connectionId).toMatch(/=$/);
  });

  test('a user id with quotes, backslashes, slashes and emoji arrives as it is, in valid JSON', async () => {
    const userId = 'o\'brien \\ "x" </ 😀';
    const client = await connectAs(userId);
    const before = received.length;
    client.send({ action: 'legacy' });
    expect((await nextBackendRequest(before + 1)).userId).toBe(userId);
  });
});


describe('validly signed but odd tokens get 401, never a connection or a 500', () => {
  test('a token without exp (required by default)', async () => {
    expect(await statusOf({ sub: 'no-exp' }, null)).toBe(401);
  });

  test('a token expired a second ago, inside the clock tolerance', async () => {
    expect(await statusOf({ sub: 'just-expired' }, -1)).toBe(401);
  });

  test('a 4,000-character sub', async () => {
    expect(await statusOf({ sub: 'x'.repeat(4000) })).toBe(401);
  });

  test('exp: 1e300', async () => {
    expect(await statusOf({ sub: 'forever', exp: 1e300 }, null)).toBe(401);
  });
});

describe('messages keep their text', () => {
  test('1e400, a 30-digit integer and a nested object reach another client exactly as sent', async () => {
    const sender = await connectAs('numbers-sender');
    const recipient = await connectAs('numbers-recipient');
    const message = '{"huge":1e400,"id":123456789012345678901234567890,"nested":{"price":0.10000000000000000555,"list":[1.0,-0,2E+3]}}';
    sender.send(`{"action":"send","to":"numbers-recipient","message":${message}}`);
    expect(await recipient.next()).toBe(`{"message":${message},"sender":"numbers-sender"}`);
  });
});
