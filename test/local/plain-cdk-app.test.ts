import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { synthesizePlainCdkApp } from './fixtures/plain-cdk-app';
import { closeAllClients, TestClient } from './support/clients';
import { GatewayProcess, stopAllGateways } from './support/gateway-process';

/**
 * End to end: the bundled `authws` CLI serving a CDK app written with aws-cdk-lib alone
 * (WebSocketApi, WebSocketLambdaIntegration, lambda.Function from an asset and inline), including
 * the aws-samples simple-websockets-chat-app handlers, which import the AWS SDK v3 without bundling
 * it and build their @connections endpoint from the event at run time.
 */

let assembly: string;
let gateway: GatewayProcess;
let chatUrl: string;
let echoUrl: string;

beforeAll(async () => {
  assembly = synthesizePlainCdkApp();
  // Run from this repository, as from a project with the SDK installed (the assembly is elsewhere, in a temporary folder).
  gateway = await GatewayProcess.start(['--assembly', assembly], 2, { cwd: join(__dirname, '..', '..') });
  chatUrl = gateway.urls.find((url) => url.endsWith('/production'))!;
  echoUrl = gateway.urls.find((url) => url.endsWith('/dev'))!;
});

afterEach(() => closeAllClients());

afterAll(() => stopAllGateways());

async function connectionRows(of: GatewayProcess = gateway): Promise<string[]> {
  const client = new DynamoDBClient({ endpoint: of.dynamoDbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const tableName = /DynamoDB \(in memory\) at \S+: (\S+)/.exec(of.output)![1];
  const { Items = [] } = await client.send(new ScanCommand({ TableName: tableName }));
  client.destroy();
  return Items.map((item) => item.connectionId.S!);
}

test('each READY line names its API beside its URL, and the HTTP API is reported as not served', () => {
  expect(gateway.output).toMatch(/^READY ws:\/\/127\.0\.0\.1:\d+\/production {2}PlainWebSocketApp\/SimpleChat$/m);
  expect(gateway.output).toMatch(/^READY ws:\/\/127\.0\.0\.1:\d+\/dev {2}PlainWebSocketApp\/Echo$/m);
  expect(gateway.output).toMatch(/warning: HTTP API PlainWebSocketApp\/SideHttpApi\w* \(Side\) is not served: authws local serves WebSocket APIs only/);
});

test('the aws-samples chat: $connect registers with the SDK the runtime provides, sendmessage reaches everyone, $disconnect unregisters', async () => {
  const alice = await TestClient.connect(chatUrl);
  const bob = await TestClient.connect(chatUrl);
  expect(await connectionRows()).toHaveLength(2);

  alice.send({ action: 'sendmessage', data: 'hello from alice' });
  expect(await alice.next()).toBe('hello from alice');
  expect(await bob.next()).toBe('hello from alice');

  await bob.close();
  while ((await connectionRows()).length > 1) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await connectionRows()).toHaveLength(1);
});

test('an endpoint built from apiId and the region reaches the local @connections API', async () => {
  const client = await TestClient.connect(chatUrl);
  client.send({ action: 'whoami' });
  const { connectionId, endpoint } = await client.nextJson();
  expect(connectionId).toMatch(/=$/);
  expect(endpoint).toMatch(/^https:\/\/[a-z0-9]{10}\.execute-api\.us-east-1\.amazonaws\.com\/production$/);
});

test('a request to the execute-api host of an API not served here fails loudly instead of reaching AWS', async () => {
  const client = await TestClient.connect(chatUrl);
  client.send({ action: 'foreign' });
  expect(await client.next()).toMatch(/^failed: authws local: blocked a request to zz9plural9\.execute-api\.us-east-1\.amazonaws\.com: API zz9plural9 is not served by this gateway/);
  expect(gateway.output).toMatch(/blocked a request to zz9plural9\.execute-api/);
});

test('messages sent to an SQS queue reach its event source in batches of at most its batch size; reported failures come back', async () => {
  const client = await TestClient.connect(chatUrl);
  client.send({ action: 'enqueue', count: 5, fail: 3 });
  const received: Array<{ n: number; receiveCount: number; source: string }> = [];
  const redelivered = () => received.some((job) => job.n === 3 && job.receiveCount >= 2);
  // A slow (cold) invocation may outlast the 1 s visibility timeout, so SQS may deliver any job
  // again: wait for every job and for job 3's second receive.
  while (new Set(received.map((job) => job.n)).size < 5 || !redelivered()) {
    const { batch } = await client.nextJson();
    expect(batch.length).toBeLessThanOrEqual(2);
    received.push(...batch);
  }
  expect([...new Set(received.map((job) => job.n))].sort()).toEqual([0, 1, 2, 3, 4]);
  // Job 3 failed on its first receive, so SQS delivered it again after the visibility timeout.
  expect(received.filter((job) => job.n === 3).map((job) => job.receiveCount)[0]).toBe(1);
  expect(received.every((job) => job.source === 'aws:sqs')).toBe(true);
});

test('the second API serves its own routes, with a route response', async () => {
  const client = await TestClient.connect(echoUrl);
  client.send('anything');
  expect(await client.next()).toBe('echo:anything');
});

test('without the SDK in the project, a connect fails with 502 and the log names the package to install', async () => {
  const emptyProject = mkdtempSync(join(tmpdir(), 'authws-no-sdk-'));
  const bare = await GatewayProcess.start(['--assembly', assembly], 2, { cwd: emptyProject });
  const url = bare.urls.find((candidate) => candidate.endsWith('/production'))!;
  await expect(TestClient.connect(url)).rejects.toMatchObject({ statusCode: 502 });
  expect(bare.output).toMatch(/Cannot find package '@aws-sdk\/client-dynamodb'\. Lambda's Node\.js runtime provides it.*npm install --save-dev @aws-sdk\/client-dynamodb/);
  await bare.stop();
});
