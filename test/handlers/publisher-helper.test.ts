import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults, Env } from '../../src/runtime/environment';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { LocalDynamo, startDynalite } from '../support/dynalite';
import { LambdaServer } from '../support/lambda-server';
import { newConnectionId } from '../support/websocket-events';

/**
 * The publish helper as a consumer uses it: `import { publish } from
 * 'cdk-authenticated-websocket-api/lib/publish'` in a route Lambda of their own, bundled by esbuild
 * as NodejsFunction bundles it, type-checked against the declarations we ship, then run: the helper
 * invokes the publisher (a real Lambda Invoke, signed), which posts through the @connections server.
 */
const root = resolve(__dirname, '../..');
const bin = (name: string) => join(root, 'node_modules/.bin', name);
let consumer: string;
let dynamo: LocalDynamo;
let server: ConnectionsServer;
let lambda: LambdaServer;
let output: CapturedConsole;
let store: ConnectionStore;

beforeAll(async () => {
  useDummyAwsEnvironment();
  // What `npx projen compile` does after jsii (post-compile): lib/publish/index.js and index.d.ts.
  execFileSync(bin('projen'), ['bundle:publish'], { cwd: root, stdio: 'pipe' });

  consumer = mkdtempSync(join(tmpdir(), 'publish-consumer-'));
  mkdirSync(join(consumer, 'node_modules'));
  symlinkSync(root, join(consumer, 'node_modules', 'cdk-authenticated-websocket-api'), 'dir');
  writeFileSync(join(consumer, 'orders.ts'), `
import { publish, publishToUser, PublishError, PublishResult } from 'cdk-authenticated-websocket-api/lib/publish';

export const handler = async (event: { userId: string }): Promise<PublishResult[]> => {
  const toUser = await publishToUser(event.userId, { order: 42 }, { sender: 'orders' });
  const toAll: PublishResult = await publish({ to: { all: true }, message: 'restock' });
  return [toUser, toAll];
};

export const refused = async (): Promise<string> => {
  try {
    await publish({ to: { userId: '' }, message: 1 });
    return 'sent';
  } catch (err) {
    return err instanceof PublishError ? err.code : 'other';
  }
};
`);
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [], skipLibCheck: false },
    files: ['orders.ts'],
  }));
  writeFileSync(join(consumer, 'package.json'), '{"name":"consumer","private":true}');

  dynamo = await startDynalite();
  server = await ConnectionsServer.start();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    [Env.TABLE_NAME]: dynamo.tableName,
    [Env.USER_INDEX_NAME]: 'byUser',
    [Env.CALLBACK_URL]: server.callbackUrl,
  });
  delete process.env[Env.FANOUT_QUEUE_URL];
  let publisher: ((event: unknown) => Promise<unknown>) | undefined;
  jest.isolateModules(() => { publisher = jest.requireActual('../../src/handlers/publisher.lambda').handler; });
  lambda = await LambdaServer.start({ 'chat-publisher': (event) => publisher!(event) });
  process.env.AWS_ENDPOINT_URL_LAMBDA = lambda.endpoint;
  process.env[Env.PUBLISHER_FUNCTION_NAME] = 'chat-publisher';
  store = new ConnectionStore({ client: dynamo.client, tableName: dynamo.tableName });
}, 60_000);

afterAll(async () => {
  rmSync(consumer, { recursive: true, force: true });
  await lambda?.stop();
  await server?.stop();
  await dynamo?.close();
});

beforeEach(() => { output = captureConsole(); });
afterEach(() => output.restore());

async function connect(userId: string): Promise<string> {
  const connectionId = newConnectionId();
  await store.register(connectionRow({ connectionId, connectedAt: Date.now() }, { userId, claims: {} }, Defaults.CONNECTION_TTL_SECONDS));
  server.connect(connectionId);
  return connectionId;
}

test('a consumer\'s TypeScript imports the helper and type-checks against the shipped declarations', () => {
  expect(() => execFileSync(bin('tsc'), ['-p', consumer], { cwd: consumer, stdio: 'pipe' })).not.toThrow();
});

test('bundled as NodejsFunction bundles it, the consumer pushes through the publisher and gets the counts', async () => {
  const out = join(consumer, 'dist/index.js');
  // NodejsFunction's defaults for nodejs22.x: CommonJS, node target, @aws-sdk/* left to the runtime.
  execFileSync(bin('esbuild'), ['orders.ts', '--bundle', '--platform=node', '--target=node22', '--format=cjs', '--external:@aws-sdk/*', `--outfile=${out}`], { cwd: consumer, stdio: 'pipe' });
  const alice = await connect('alice');
  const bob = await connect('bob');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bundle = require(out) as { handler: (e: { userId: string }) => Promise<unknown>; refused: () => Promise<string> };

  const [toUser, toAll] = await bundle.handler({ userId: 'alice' }) as Array<Record<string, number>>;
  expect(toUser).toEqual({ delivered: 1, gone: 0, failed: 0, retried: 0, throttled: 0 });
  expect(toAll).toEqual({ delivered: 2, gone: 0, failed: 0, retried: 0, throttled: 0 });
  expect(server.received(alice)).toEqual(['{"message":{"order":42},"sender":"orders"}', '{"message":"restock"}']);
  expect(server.received(bob)).toEqual(['{"message":"restock"}']);
  expect(lambda.invocations).toEqual([
    { functionName: 'chat-publisher', service: 'lambda' },
    { functionName: 'chat-publisher', service: 'lambda' },
  ]);

  expect(await bundle.refused()).toBe('BadRequest');
});
