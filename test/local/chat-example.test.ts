import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { SignJWT } from 'jose';
import { synthesizeChatExample, synthesizeQueuedChat } from './fixtures/chat-example';
import { closeAllClients, refusalStatus, TestClient } from './support/clients';
import { cliToken, GatewayProcess, stopAllGateways } from './support/gateway-process';

/**
 * End to end: the bundled `authws` CLI serving the example chat app (examples/chat) with the
 * library's real handler assets, driven by real WebSocket clients (ws and wscat).
 */

const SECRET = 'chat-example-test-secret';
let assembly: string;
let gateway: GatewayProcess;
let url: string;

beforeAll(async () => {
  assembly = synthesizeChatExample();
  gateway = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET]);
  url = gateway.urls[0];
});

afterEach(() => closeAllClients());

afterAll(() => stopAllGateways());

/** The example takes its token as a subprotocol (TokenLocation.subprotocol()), offered beside `authws`. */
async function connectAs(user: string, to = url): Promise<TestClient> {
  return TestClient.connect(to, { protocols: ['authws', await cliToken(SECRET, user)] });
}

/** The registry rows of `userId`, read straight from the gateway's DynamoDB. */
async function registryRowsOf(userId: string, of: GatewayProcess = gateway): Promise<number> {
  const client = new DynamoDBClient({ endpoint: of.dynamoDbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const { Items = [] } = await client.send(new ScanCommand({ TableName: 'AuthwsChat-ChatConnections36D6FAE4' }));
  client.destroy();
  return Items.filter((item) => item.userId?.S === userId).length;
}

test('the gateway prints one READY line with the stage URL and the API\'s name', () => {
  expect(gateway.urls).toEqual([expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/dev$/)]);
  expect(gateway.output).toMatch(/^READY ws:\/\/127\.0\.0\.1:\d+\/dev {2}AuthwsChat\/\S+$/m);
});

test('a secret passed with --secret is never printed; the hint reads it from AUTHWS_SECRET', async () => {
  // The hint follows the READY line.
  while (!gateway.output.includes('Another user\'s token')) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(gateway.output).not.toContain(SECRET);
  expect(gateway.output).toMatch(/Another user's token, with AUTHWS_SECRET set to your secret: .* token --sub bob/);
});

test('AUTHWS_SECRET sets the secret when --secret is absent, and is not printed either', async () => {
  const fromEnvironment = await GatewayProcess.start(['--assembly', assembly], 1, { env: { AUTHWS_SECRET: 'secret-from-the-environment' } });
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('env-user').setExpirationTime('1h')
    .sign(new TextEncoder().encode('secret-from-the-environment'));
  const client = await TestClient.connect(fromEnvironment.urls[0], { protocols: ['authws', token] });
  expect(client.socket.readyState).toBe(client.socket.OPEN);
  expect(fromEnvironment.output).not.toContain('secret-from-the-environment');
  await client.close();
  await fromEnvironment.stop();
});

test('a user id with a line separator and terminal escapes is logged escaped, on one line', async () => {
  // The bundled authorizer refuses user ids with C0 controls (\n, ESC: USER_ID_INVALID); C1 controls and
  // Unicode line separators pass it, and other authorizers may pass anything: the log escapes them all.
  const forged = 'eve\u202800:00:00.000 connect    forged line\u009b2J\u0085x';
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(forged).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const client = await TestClient.connect(url, { protocols: ['authws', token] });
  while (!gateway.output.includes('user=eve')) await new Promise((resolve) => setTimeout(resolve, 20));
  await client.close();
  expect(gateway.output).toContain('user=eve\\u202800:00:00.000 connect    forged line\\u009b2J\\u0085x');
  expect(gateway.output).not.toMatch(/^00:00:00\.000 connect/m);
  expect(gateway.output).not.toMatch(/[\u001b\u009b\u0085\u2028]/);
});

test('two users connect with tokens from `authws token`; a broadcast reaches both', async () => {
  const alice = await connectAs('alice');
  const bob = await connectAs('bob');
  alice.send({ action: 'broadcast', message: 'Hello everyone' });
  expect(await alice.nextJson()).toEqual({ message: 'Hello everyone', sender: 'alice' });
  expect(await bob.nextJson()).toEqual({ message: 'Hello everyone', sender: 'alice' });
});

test('the functions run quietly on this Node.js: the gateway notes the version once, the AWS SDK in each worker adds no warning', async () => {
  const alice = await connectAs('alice');
  alice.send({ action: 'broadcast', message: 'quiet' });
  expect(await alice.nextJson()).toEqual({ message: 'quiet', sender: 'alice' });
  expect(gateway.output).toMatch(/^\S+ note: the functions target nodejs24\.x; they run here on Node\.js/m);
  expect(gateway.output).not.toMatch(/NodeVersionSupportWarning|will require node >=/);
});

test('a message sent to a user reaches each of that user\'s connections, and no one else', async () => {
  const alice = await connectAs('alice');
  const bobPhone = await connectAs('bob');
  const bobLaptop = await connectAs('bob');
  const carol = await connectAs('carol');
  alice.send({ action: 'send', to: 'bob', message: { text: 'hi bob' } });
  expect(await bobPhone.nextJson()).toEqual({ message: { text: 'hi bob' }, sender: 'alice' });
  expect(await bobLaptop.nextJson()).toEqual({ message: { text: 'hi bob' }, sender: 'alice' });
  alice.send({ action: 'send', to: 'carol', message: 'only for carol' });
  // carol's first message is the one meant for her: the message to bob never reached her.
  expect(await carol.nextJson()).toEqual({ message: 'only for carol', sender: 'alice' });
});

test('a connection offers its token as a subprotocol and gets the protocol name back', async () => {
  const alice = await connectAs('alice');
  expect(alice.protocol).toBe('authws');
});

test('a connection without a valid token is refused with 401', async () => {
  expect(await refusalStatus(url)).toBe(401);
  expect(await refusalStatus(url, { protocols: ['authws'] })).toBe(401);
  // A token in the Authorization header is not where this API looks.
  expect(await refusalStatus(url, { headers: { Authorization: `Bearer ${await cliToken(SECRET, 'alice')}` } })).toBe(401);
  expect(await refusalStatus(url, { protocols: ['authws', await cliToken('another-secret', 'mallory')] })).toBe(401);
  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('late').setExpirationTime(Math.floor(Date.now() / 1000) - 600)
    .sign(new TextEncoder().encode(SECRET));
  expect(await refusalStatus(url, { protocols: ['authws', expired] })).toBe(401);
});

test('bad messages get error frames, and the connection stays open', async () => {
  const alice = await connectAs('alice');
  alice.send('not json at all');
  expect((await alice.nextJson()).error.code).toBe('BadRequest');
  alice.send({ action: 'dance' });
  expect((await alice.nextJson()).error.code).toBe('UnknownAction');
  alice.send({ action: 'ping' });
  expect(await alice.nextJson()).toBeDefined();
  expect(alice.socket.readyState).toBe(alice.socket.OPEN);
});

test('a closed connection\'s registry row is removed', async () => {
  const dave = await connectAs('dave');
  expect(await registryRowsOf('dave')).toBe(1);
  await dave.close();
  while (await registryRowsOf('dave') > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await registryRowsOf('dave')).toBe(0);
});

test('wscat connects with the token as a subprotocol and its broadcast reaches everyone', async () => {
  const listener = await connectAs('lena');
  const token = await cliToken(SECRET, 'wanda');
  const wscat = join(__dirname, '..', '..', 'node_modules', '.bin', 'wscat');
  const output = await new Promise<string>((resolve, reject) => {
    execFile(wscat, ['-c', url, '-s', 'authws', '-s', token, '--no-color', '-x', '{"action":"broadcast","message":"Hello from wscat"}', '-w', '2'],
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
  expect(await listener.nextJson()).toEqual({ message: 'Hello from wscat', sender: 'wanda' });
  expect(output).toContain('{"message":"Hello from wscat","sender":"wanda"}');
});

test('with --web (as `npx projen demo` runs it) the gateway prints the page URL and a wscat command with the subprotocol token', async () => {
  const demo = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET, '--web', join(__dirname, '..', '..', 'examples', 'chat', 'web')]);
  while (!demo.output.includes('Browser page')) await new Promise((resolve) => setTimeout(resolve, 20));
  const port = new URL(demo.urls[0]).port;
  expect(demo.output).toContain(`npx wscat -c ws://127.0.0.1:${port}/dev -s authws -s ey`);
  expect(demo.output).toMatch(new RegExp(`^Browser page: http://127\\.0\\.0\\.1:${port}/\\?stage=dev&token=ey\\S+$`, 'm'));
  await demo.stop();
});

describe('connection limits and shutdown', () => {
  test('an idle connection is closed with 1001 after --idle-timeout, and its row removed', async () => {
    const idle = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET, '--idle-timeout', '1s']);
    const client = await connectAs('sleepy', idle.urls[0]);
    expect(await registryRowsOf('sleepy', idle)).toBe(1);
    expect((await client.closed).code).toBe(1001);
    while (await registryRowsOf('sleepy', idle) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await idle.stop()).toBe(0);
  });

  test('a connection is closed with 1001 at --max-lifetime even when active', async () => {
    const short = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET, '--max-lifetime', '2s']);
    const client = await connectAs('busy', short.urls[0]);
    const pinger = setInterval(() => client.send({ action: 'ping' }), 200);
    const closed = await client.closed;
    clearInterval(pinger);
    expect(closed.code).toBe(1001);
    await short.stop();
  });

  test('SIGTERM closes every connection with a close frame and exits 0', async () => {
    const doomed = await GatewayProcess.start(['--assembly', assembly, '--secret', SECRET]);
    const client = await connectAs('zoe', doomed.urls[0]);
    const exitCode = doomed.stop('SIGTERM');
    expect(await client.closed).toEqual({ code: 1001, reason: 'Going away' });
    expect(await exitCode).toBe(0);
    expect(doomed.output).toMatch(/disconnect .* 1001/);
  });
});

describe('FanOut.queue()', () => {
  test('a broadcast goes through the local SQS queue to the fan-out workers and reaches every connection', async () => {
    const queued = await GatewayProcess.start(['--assembly', synthesizeQueuedChat(), '--secret', SECRET]);
    const connect = async (user: string) => TestClient.connect(queued.urls[0], { headers: { Authorization: `Bearer ${await cliToken(SECRET, user)}` } });
    const clients = await Promise.all(['ada', 'ben', 'cy', 'dee'].map(connect));
    clients[0].send({ action: 'broadcast', message: 'through the queue' });
    for (const client of clients) expect(await client.nextJson()).toEqual({ message: 'through the queue', sender: 'ada' });
    // Three segments, three worker invocations, each counting what it delivered.
    while ((queued.output.match(/"action":"worker"/g) ?? []).length < 3) await new Promise((resolve) => setTimeout(resolve, 50));
    const delivered = [...queued.output.matchAll(/"action":"worker".*?"delivered":(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
    expect(delivered).toBe(4);
    expect(queued.output).not.toMatch(/Invalid URL/);
    await queued.stop();
  });
});
