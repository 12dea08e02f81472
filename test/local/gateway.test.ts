import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, request as httpRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import WebSocket from 'ws';
import { synthesizeFixtureApp } from './fixtures/fixture-app';
import { closeAllClients, refusalStatus, TestClient } from './support/clients';
import { LocalGateway } from '../../src/local/gateway';

/**
 * The gateway against a test-only assembly (two APIs written with plain CloudFormation resources),
 * pinning the API Gateway behaviours other local emulators get wrong.
 */

interface BackendRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

let gateway: LocalGateway;
let fixtureAssembly: string;
let backend: Server;
const backendRequests: BackendRequest[] = [];
const logLines: string[] = [];
let guardedUrl: string;
let openUrl: string;

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

beforeAll(async () => {
  backend = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      backendRequests.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString() });
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  fixtureAssembly = synthesizeFixtureApp({ httpBackendUrl: `http://127.0.0.1:${(backend.address() as AddressInfo).port}` });
  gateway = await LocalGateway.start({
    assemblyDirectory: fixtureAssembly,
    port: 0,
    log: (line) => {
      logLines.push(line);
      if (process.env.AUTHWS_TEST_LOG) process.stdout.write(`${line}\n`);
    },
  });
  guardedUrl = gateway.stages.find((stage) => stage.api.name === 'Guarded')!.url;
  openUrl = gateway.stages.find((stage) => stage.api.name === 'Open')!.url;
});

afterEach(() => closeAllClients());

afterAll(async () => {
  await gateway?.close();
  backend?.closeAllConnections();
  await new Promise((resolve) => backend?.close(resolve));
});

/** Connects to the guarded API as `user` in `room`. */
function connectGuarded(user: string, query = '', options: { protocols?: string[] } = {}): Promise<TestClient> {
  return TestClient.connect(`${guardedUrl}?room=lobby${query}`, { headers: { Authorization: `good-${user}` }, ...options });
}

/** Asks the echo function for the authorizer's invocation count, as the authorizer context carries it. */
async function authorizerCalls(): Promise<number> {
  const probe = await connectGuarded('probe');
  probe.send({ action: 'echo' });
  const { event } = await probe.nextJson();
  await probe.close();
  return Number(event.requestContext.authorizer.calls);
}

/**
 * The `$disconnect` event of `connectionId`, as the echo function recorded it. The client sees its
 * close before the gateway has run `$disconnect`, so this asks until the event is there.
 */
async function disconnectEventOf(observer: TestClient, connectionId: string): Promise<any> {
  for (;;) {
    observer.send({ action: 'disconnectEvent', of: connectionId });
    const { event } = await observer.nextJson();
    if (event) return event;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function managementClient(callbackUrl: string): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({ endpoint: callbackUrl, region: 'us-east-1', credentials });
}

describe('serving an assembly', () => {
  test('serves every WebSocket API of the assembly, each at its stage', () => {
    expect(gateway.stages.map((stage) => `${stage.api.name} ${new URL(stage.url).pathname}`).sort()).toEqual(['Guarded /test', 'Open /beta']);
  });

  test('creates the template\'s tables with their keys and indexes', async () => {
    const client = new DynamoDBClient({ endpoint: gateway.dynamoDbEndpoint, region: 'us-east-1', credentials });
    const tableName = gateway.assembly.tables[0].tableName;
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    client.destroy();
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }]);
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual(['byOwner']);
  });

  test('gives each function its own environment, with the template\'s references resolved to local resources', async () => {
    const guarded = await connectGuarded('env');
    guarded.send({ action: 'env' });
    const { env: guardedEnv } = await guarded.nextJson();
    const open = await TestClient.connect(openUrl);
    open.send({ action: 'env' });
    const { env: openEnv } = await open.nextJson();

    expect(guardedEnv.FIXTURE_NAME).toBe('guarded');
    expect(openEnv.FIXTURE_NAME).toBe('open');
    expect(guardedEnv.CALLBACK_URL).toBe(gateway.stages.find((stage) => stage.api.name === 'Guarded')!.callbackUrl);
    expect(openEnv.CALLBACK_URL).toBe(gateway.stages.find((stage) => stage.api.name === 'Open')!.callbackUrl);
    expect(guardedEnv.CALLBACK_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/test$/);
    expect(guardedEnv.NOTES_TABLE).toBe(gateway.assembly.tables[0].tableName);
    expect(guardedEnv.NOTES_TABLE_ARN).toBe(`arn:aws:dynamodb:us-east-1:000000000000:table/${gateway.assembly.tables[0].tableName}`);
    expect(openEnv.NOTES_TABLE).toBeUndefined();
    expect(guardedEnv).toMatchObject({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_DYNAMODB: gateway.dynamoDbEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: gateway.secretsManagerEndpoint,
      AWS_ENDPOINT_URL_LAMBDA: gateway.lambdaEndpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: gateway.eventBridgeEndpoint,
    });
    expect(guardedEnv.AWS_ACCESS_KEY_ID).toBeTruthy();
  });
});

describe('$connect and the REQUEST authorizer', () => {
  test('a missing or empty identity source is refused with 401 without calling the authorizer', async () => {
    const before = await authorizerCalls();
    expect(await refusalStatus(`${guardedUrl}?room=lobby`)).toBe(401); // no header
    expect(await refusalStatus(`${guardedUrl}?room=lobby`, { headers: { Authorization: '' } })).toBe(401); // empty header
    expect(await refusalStatus(guardedUrl, { headers: { Authorization: 'good-ann' } })).toBe(401); // no query parameter
    expect(await refusalStatus(`${guardedUrl}?room=`, { headers: { Authorization: 'good-ann' } })).toBe(401); // empty parameter
    // The probe itself is the only invocation since `before`.
    expect(await authorizerCalls()).toBe(before + 1);
  });

  test('a Deny policy is refused with 403', async () => {
    expect(await refusalStatus(`${guardedUrl}?room=lobby`, { headers: { Authorization: 'deny' } })).toBe(403);
  });

  test('an authorizer that throws Unauthorized is refused with 401', async () => {
    expect(await refusalStatus(`${guardedUrl}?room=lobby`, { headers: { Authorization: 'unauthorized' } })).toBe(401);
  });

  test('an authorizer that fails otherwise, or answers without a policy, gives 500', async () => {
    expect(await refusalStatus(`${guardedUrl}?room=lobby`, { headers: { Authorization: 'crash' } })).toBe(500);
    expect(await refusalStatus(`${guardedUrl}?room=lobby`, { headers: { Authorization: 'invalid' } })).toBe(500);
  });

  test('a $connect integration answering non-2xx refuses the handshake with that status', async () => {
    expect(await refusalStatus(`${guardedUrl}?room=lobby&status=409`, { headers: { Authorization: 'good-ann' } })).toBe(409);
    expect(await refusalStatus(`${guardedUrl}?room=lobby&status=302`, { headers: { Authorization: 'good-ann' } })).toBe(302);
  });

  test('a $connect integration that throws refuses the handshake with 502', async () => {
    expect(await refusalStatus(`${guardedUrl}?room=lobby&fail=1`, { headers: { Authorization: 'good-ann' } })).toBe(502);
  });

  test('an API without a $connect route accepts every connection', async () => {
    const client = await TestClient.connect(openUrl);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });

  test('a subprotocol is echoed only when the $connect integration returns it', async () => {
    const echoed = await connectGuarded('ann', '&protocol=chat.v1', { protocols: ['chat.v2', 'chat.v1'] });
    expect(echoed.protocol).toBe('chat.v1');
    // Offered, not returned: no subprotocol in the 101, so a strict client (ws) gives up.
    await expect(connectGuarded('ann', '', { protocols: ['chat.v1'] })).rejects.toThrow(/no subprotocol/i);
  });

  test('an unknown stage is refused with 403 and a plain GET of the endpoint gets 426', async () => {
    expect(await refusalStatus(guardedUrl.replace(/\/test$/, '/prod'), { headers: { Authorization: 'good-ann' } })).toBe(403);
    const response = await fetch(guardedUrl.replace(/^ws/, 'http'));
    expect(response.status).toBe(426);
  });

  test('an upgrade to another protocol than WebSocket gets 426', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(guardedUrl.replace(/^ws/, 'http'), { headers: { Connection: 'Upgrade', Upgrade: 'h2c' } });
      request.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('upgrade', () => reject(new Error('upgraded')));
      request.on('error', reject);
      request.end();
    });
    expect(status).toBe(426);
  });

  test('a client that leaves during $connect still gets its $disconnect', async () => {
    const observer = await connectGuarded('observer');
    const leaving = new WebSocket(`${guardedUrl}?room=lobby&tag=leaver&delay=400`, { headers: { Authorization: 'good-leaver' } });
    leaving.on('error', () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 150));
    leaving.terminate(); // while $connect still runs
    let event: any = null;
    for (const deadline = Date.now() + 5_000; !event && Date.now() < deadline;) {
      observer.send({ action: 'disconnectEventOfTag', tag: 'leaver' });
      event = (await observer.nextJson()).event;
      if (!event) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(event?.requestContext).toMatchObject({ routeKey: '$disconnect', eventType: 'DISCONNECT', disconnectStatusCode: 1006 });
    expect(event.requestContext.authorizer).toMatchObject({ principalId: 'leaver' });
  });
});

describe('events the integrations receive', () => {
  test('$connect gets the handshake headers, the query string and a full requestContext', async () => {
    const client = await connectGuarded('ann', '&tag=a&tag=b');
    client.send({ action: 'connectEvent' });
    const { event } = await client.nextJson();
    expect(event.queryStringParameters).toEqual({ room: 'lobby', tag: 'b' });
    expect(event.multiValueQueryStringParameters).toEqual({ room: ['lobby'], tag: ['a', 'b'] });
    expect(event.headers).toMatchObject({ 'Authorization': 'good-ann', 'Sec-WebSocket-Version': '13', 'X-Forwarded-Proto': 'http' });
    expect(event.headers['Sec-WebSocket-Key']).toBeTruthy();
    expect(event.headers['X-Amzn-Trace-Id']).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(event.multiValueHeaders['X-Amzn-Trace-Id']).toEqual([event.headers['X-Amzn-Trace-Id']]);
    expect(event.isBase64Encoded).toBe(false);
    expect(event.body).toBeUndefined();
    expect(event.requestContext).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      messageDirection: 'IN',
      stage: 'test',
      apiId: gateway.stages.find((stage) => stage.api.name === 'Guarded')!.api.apiId,
      identity: { sourceIp: '127.0.0.1' },
    });
    expect(event.requestContext.messageId).toBeUndefined();
    expect(event.requestContext.connectionId).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(event.requestContext.requestId).toBe(event.requestContext.extendedRequestId);
    expect(event.requestContext.requestTime).toMatch(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
  });

  test('queryStringParameters is absent, not empty, when the URL has no query string', async () => {
    const client = await TestClient.connect(openUrl);
    client.send({ action: 'echo' });
    const { event } = await client.nextJson();
    expect(event).not.toHaveProperty('queryStringParameters');
    expect(event).not.toHaveProperty('headers');
  });

  test('a MESSAGE event has the body, a messageId, and the connectedAt of its connection', async () => {
    const client = await connectGuarded('ann');
    client.send({ action: 'connectEvent' });
    const { event: connect } = await client.nextJson();
    const message = JSON.stringify({ action: 'echo', n: 1 });
    client.send(message);
    const { event } = await client.nextJson();
    expect(event.body).toBe(message);
    expect(event.isBase64Encoded).toBe(false);
    expect(event.requestContext).toMatchObject({ routeKey: 'echo', eventType: 'MESSAGE', connectedAt: connect.requestContext.connectedAt });
    expect(event.requestContext.connectionId).toBe(connect.requestContext.connectionId);
    expect(event.requestContext.messageId).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(event.requestContext.requestTimeEpoch).toEqual(expect.any(Number));
  });

  test('the authorizer context reaches $connect, messages and $disconnect, every value a string', async () => {
    const client = await connectGuarded('ann');
    const observer = await connectGuarded('observer');
    client.send({ action: 'connectEvent' });
    const { event: connect } = await client.nextJson();
    client.send({ action: 'echo' });
    const { event: message } = await client.nextJson();
    await client.close(4000);
    const disconnect = await disconnectEventOf(observer, connect.requestContext.connectionId);

    for (const event of [connect, message, disconnect]) {
      expect(event.requestContext.authorizer).toMatchObject({ principalId: 'ann', room: 'lobby', level: '3', admin: 'true' });
      expect(event.requestContext.authorizer.integrationLatency).toEqual(expect.any(Number));
    }
  });

  test('$disconnect carries the close code and reason, and no client headers', async () => {
    const client = await connectGuarded('ann');
    const observer = await connectGuarded('observer');
    client.send({ action: 'connectEvent' });
    const { event: connect } = await client.nextJson();
    client.socket.close(4001, 'done for today');
    await client.closed;
    const event = await disconnectEventOf(observer, connect.requestContext.connectionId);
    expect(event.requestContext).toMatchObject({ routeKey: '$disconnect', eventType: 'DISCONNECT', disconnectStatusCode: 4001, disconnectReason: 'done for today' });
    expect(event.headers).not.toHaveProperty('Authorization');
  });
});

describe('route selection', () => {
  test('a custom route is selected by the expression; non-JSON and unknown actions go to $default', async () => {
    const client = await connectGuarded('ann');
    client.send('this is not JSON');
    expect(await client.nextJson()).toEqual({ route: '$default', body: 'this is not JSON' });
    client.send({ action: 'nothing-here' });
    expect((await client.nextJson()).route).toBe('$default');
    client.send({ action: '$connect' }); // route keys starting with $ are never selected by content
    expect((await client.nextJson()).route).toBe('$default');
  });

  test('with no match and no $default, the client gets API Gateway\'s Forbidden frame', async () => {
    const client = await TestClient.connect(openUrl);
    client.send({ action: 'nothing-here' });
    const frame = await client.next();
    expect(frame).toMatch(/^\{"message": "Forbidden", "connectionId":"[A-Za-z0-9+/]{15}=", "requestId":"[A-Za-z0-9+/]{15}="\}$/);
  });

  test('a route whose Lambda throws sends the Internal server error frame', async () => {
    const client = await connectGuarded('ann');
    client.send({ action: 'boom' });
    expect(await client.nextJson()).toEqual({ message: 'Internal server error', connectionId: expect.any(String), requestId: expect.any(String) });
  });

  test('a function on a runtime other than Node.js fails its route with a message naming it', async () => {
    const client = await TestClient.connect(openUrl);
    client.send({ action: 'py' });
    expect((await client.nextJson()).message).toBe('Internal server error');
    expect(logLines.join('\n')).toMatch(/PythonFn.*python3\.12.*Node\.js/);
  });

  test('only a route with a route response sends what the integration returns', async () => {
    const client = await connectGuarded('ann');
    client.send({ action: 'reply', text: 'hi' });
    expect(await client.next()).toBe('reply:hi');
  });

  test('an HTTP_PROXY route forwards the body as is, with the mapped headers', async () => {
    const client = await TestClient.connect(openUrl);
    const body = JSON.stringify({ action: 'proxy', text: 'hello' });
    client.send(body);
    await waitFor(() => backendRequests.some((request) => request.path === '/proxy'));
    const request = backendRequests.find((candidate) => candidate.path === '/proxy')!;
    expect(request.body).toBe(body);
    expect(request.headers['x-connection-id']).toMatch(/=$/);
  });

  test('an HTTP route renders its request template', async () => {
    const client = await TestClient.connect(openUrl);
    client.send({ action: 'template', text: 'hello' });
    await waitFor(() => backendRequests.some((request) => request.path === '/template'));
    const request = backendRequests.find((candidate) => candidate.path === '/template')!;
    expect(JSON.parse(request.body)).toEqual({
      connectionId: expect.stringMatching(/=$/),
      eventType: 'MESSAGE',
      routeKey: 'template',
      body: { action: 'template', text: 'hello' },
    });
  });
});

describe('frames', () => {
  /** Sends `text` as a text frame and continuation frames of `frameBytes` each. */
  function sendFragmented(client: TestClient, text: string, frameBytes: number): void {
    const data = Buffer.from(text, 'utf8');
    for (let offset = 0; offset < data.length; offset += frameBytes) {
      const end = Math.min(offset + frameBytes, data.length);
      client.socket.send(data.subarray(offset, end), { binary: false, fin: end === data.length });
    }
  }

  test('a frame over 32 KB closes the connection with 1009', async () => {
    const client = await connectGuarded('ann');
    client.send({ action: 'echo', padding: 'x'.repeat(33 * 1024) });
    expect((await client.closed).code).toBe(1009);
  });

  test('a message of up to 128 KB in frames of at most 32 KB is accepted whole', async () => {
    const client = await connectGuarded('ann');
    const message = JSON.stringify({ action: 'echo', padding: 'x'.repeat(120 * 1024) });
    sendFragmented(client, message, 32 * 1024);
    const { event } = await client.nextJson();
    expect(event.body).toBe(message);
  });

  test('a message over 128 KB closes with 1009 even in 32 KB frames, and so does one frame over 32 KB among small ones', async () => {
    const big = await connectGuarded('ann');
    sendFragmented(big, JSON.stringify({ action: 'echo', padding: 'x'.repeat(129 * 1024) }), 32 * 1024);
    expect((await big.closed).code).toBe(1009);

    const mixed = await connectGuarded('ann');
    const data = Buffer.from(JSON.stringify({ action: 'echo', padding: 'x'.repeat(60 * 1024) }));
    mixed.socket.send(data.subarray(0, 1024), { binary: false, fin: false });
    mixed.socket.send(data.subarray(1024), { binary: false, fin: true }); // about 59 KB in one frame
    expect((await mixed.closed).code).toBe(1009);
  });

  test('a text frame that is not UTF-8 closes with 1007, and $disconnect reports 1007', async () => {
    const client = await connectGuarded('ann');
    const observer = await connectGuarded('observer');
    client.send({ action: 'connectEvent' });
    const { event: connect } = await client.nextJson();
    client.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await client.closed).code).toBe(1007);
    expect((await disconnectEventOf(observer, connect.requestContext.connectionId)).requestContext.disconnectStatusCode).toBe(1007);
  });

  test('a binary frame closes the connection with 1003', async () => {
    const client = await connectGuarded('ann');
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await client.closed).code).toBe(1003);
  });
});

describe('the @connections API', () => {
  const callbackUrl = () => gateway.stages.find((stage) => stage.api.name === 'Guarded')!.callbackUrl;

  async function connectionIdOf(client: TestClient): Promise<string> {
    client.send({ action: 'connectEvent' });
    return (await client.nextJson()).event.requestContext.connectionId;
  }

  test('POST sends the data as a text frame; GET describes the connection', async () => {
    const client = await connectGuarded('ann');
    const connectionId = await connectionIdOf(client);
    const api = managementClient(callbackUrl());
    await api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'from the backend' }));
    expect(await client.next()).toBe('from the backend');

    const described = await api.send(new GetConnectionCommand({ ConnectionId: connectionId }));
    expect(described.Identity?.SourceIp).toBe('127.0.0.1');
    expect(described.ConnectedAt).toBeInstanceOf(Date);
    expect(described.LastActiveAt).toBeInstanceOf(Date);
    api.destroy();
  });

  test('a handler posting from inside the gateway reaches another connection', async () => {
    const sender = await connectGuarded('ann');
    const receiver = await connectGuarded('bob');
    const receiverId = await connectionIdOf(receiver);
    sender.send({ action: 'post', to: receiverId, message: 'psst' });
    expect(await receiver.next()).toBe('psst');
    expect(await sender.nextJson()).toEqual({ status: 200 });
  });

  test('DELETE answers 204 and closes the connection; $disconnect reports 1000', async () => {
    const client = await connectGuarded('ann');
    const observer = await connectGuarded('observer');
    const connectionId = await connectionIdOf(client);
    const api = managementClient(callbackUrl());
    const result = await api.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    expect(result.$metadata.httpStatusCode).toBe(204);
    expect((await client.closed).code).toBe(1000);
    expect((await disconnectEventOf(observer, connectionId)).requestContext.disconnectStatusCode).toBe(1000);
    api.destroy();
  });

  test('an unknown or closed connection is 410 GoneException, which the SDK names', async () => {
    const client = await connectGuarded('ann');
    const connectionId = await connectionIdOf(client);
    await client.close();
    const api = managementClient(callbackUrl());
    for (const id of [connectionId, 'AAAAAAAAAAAAAAA=']) {
      await expect(api.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x' }))).rejects.toMatchObject({
        name: 'GoneException',
        $metadata: { httpStatusCode: 410 },
      });
    }
    api.destroy();
  });

  test('a message over 128 KB is 413 PayloadTooLargeException; up to 128 KB arrives whole', async () => {
    const client = await connectGuarded('ann');
    const connectionId = await connectionIdOf(client);
    const api = managementClient(callbackUrl());
    await expect(api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'x'.repeat(128 * 1024 + 1) }))).rejects.toMatchObject({
      name: 'PayloadTooLargeException',
      $metadata: { httpStatusCode: 413 },
    });
    await api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'y'.repeat(128 * 1024) }));
    expect((await client.next()).length).toBe(128 * 1024);
    api.destroy();
  });

  test('an unsigned request is refused with 403', async () => {
    const client = await connectGuarded('ann');
    const connectionId = await connectionIdOf(client);
    const response = await fetch(`${callbackUrl()}/@connections/${encodeURIComponent(connectionId)}`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });
});

describe('isolation between invocations', () => {
  test('a timed-out invocation fails alone: concurrent invocations of the same function finish', async () => {
    const stuck = await connectGuarded('stuck');
    const bystander = await connectGuarded('bystander');
    stuck.send({ action: 'sleep', ms: 3_000 }); // the function's timeout is 1 s
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Still running when the stuck invocation times out.
    for (let n = 0; n < 5; n++) bystander.send({ action: 'sleep', ms: 600 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => bystander.nextJson()));
    expect(replies).toEqual(Array.from({ length: 5 }, () => ({ slept: 600 })));
    expect(await stuck.nextJson()).toMatchObject({ message: 'Internal server error' });
    expect(logLines.join('\n')).toMatch(/sleep failed: .*Sandbox\.Timedout: Task timed out after 1\.00 seconds/);
  });

  test('one client\'s flood of CPU-bound messages does not hold up another client', async () => {
    const flooder = await connectGuarded('flooder');
    const other = await connectGuarded('other');
    const flood = 60;
    // Warm sandboxes first: this measures the turn order, not cold starts.
    for (let n = 0; n < 8; n++) flooder.send({ action: 'spin', ms: 0, n });
    for (let n = 0; n < 8; n++) await flooder.nextJson();
    const started = Date.now();
    for (let n = 0; n < flood; n++) flooder.send({ action: 'spin', ms: 50, n });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const sent = Date.now();
    other.send({ action: 'spin', ms: 0 });
    await other.nextJson();
    const otherLatency = Date.now() - sent;
    for (let n = 0; n < flood; n++) await flooder.nextJson();
    const floodDuration = Date.now() - started;
    expect(otherLatency).toBeLessThan(floodDuration / 3);
  });
});

describe('start-up', () => {
  test('the embedded DynamoDB, Secrets Manager, Lambda and EventBridge listen on 127.0.0.1 whatever --host says', async () => {
    const wide = await LocalGateway.start({ assemblyDirectory: fixtureAssembly, host: '0.0.0.0', port: 0, log: () => undefined });
    try {
      expect(new URL(wide.dynamoDbEndpoint).hostname).toBe('127.0.0.1');
      expect(new URL(wide.secretsManagerEndpoint).hostname).toBe('127.0.0.1');
      expect(new URL(wide.lambdaEndpoint).hostname).toBe('127.0.0.1');
      expect(new URL(wide.eventBridgeEndpoint).hostname).toBe('127.0.0.1');
      expect(new URL(wide.stages[0].url).hostname).toBe('0.0.0.0');
    } finally {
      await wide.close();
    }
  });

  test('a missing asset folder stops the start with an error naming the function', async () => {
    const copy = copyAssembly();
    const fn = [...gateway.assembly.functions.values()].find((candidate) => candidate.logicalId.startsWith('GuardedEcho'))!;
    rmSync(join(copy, relative(fixtureAssembly, fn.codeDirectory!)), { recursive: true });
    await expect(LocalGateway.start({ assemblyDirectory: copy, port: 0, log: () => undefined }))
      .rejects.toThrow(/The code of function GatewayFixture\/GuardedEcho\w* \(.*asset\.\w+\) is missing from the assembly/);
  });

  test('a malformed template or manifest is an error naming the file', async () => {
    const copy = copyAssembly();
    writeFileSync(join(copy, 'GatewayFixture.template.json'), '{"Resources": ');
    await expect(LocalGateway.start({ assemblyDirectory: copy, port: 0, log: () => undefined }))
      .rejects.toThrow(/GatewayFixture\.template\.json of the cloud assembly is not valid JSON/);
    writeFileSync(join(copy, 'manifest.json'), 'not json');
    await expect(LocalGateway.start({ assemblyDirectory: copy, port: 0, log: () => undefined }))
      .rejects.toThrow(/manifest\.json of the cloud assembly is not valid JSON/);
  });
});

/** A copy of the fixture's assembly, to break. */
function copyAssembly(): string {
  const copy = mkdtempSync(join(tmpdir(), 'authws-broken-'));
  cpSync(fixtureAssembly, copy, { recursive: true });
  return copy;
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}
