import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import type { EventRuleModel, FunctionModel } from '../../src/local/assembly';
import { LambdaRunner } from '../../src/local/lambda-runner';
import { LocalEventBridge, startEventBridge } from '../../src/local/local-eventbridge';
import { LocalLambda, startLambda } from '../../src/local/local-lambda';
import { EventBridgeLifecycleSink } from '../../src/runtime/lifecycle-events';

/**
 * The local Lambda Invoke API with the real SDK v3 LambdaClient, and the local EventBridge with the
 * library's own signed PutEvents client (the lifecycle sink; the EventBridge SDK client is not a
 * dependency), both running real functions (inline code in worker sandboxes).
 */

const records = mkdtempSync(join(tmpdir(), 'authws-lambda-test-'));
const fn = (name: string, source: string): FunctionModel => ({
  key: `Test/${name}`,
  logicalId: name,
  functionName: name,
  arn: `arn:aws:lambda:eu-west-1:111122223333:function:${name}`,
  runtime: 'nodejs20.x',
  handler: 'index.handler',
  inlineCode: source,
  timeoutSeconds: 5,
  memorySize: 128,
  environment: { RECORDS: records },
  unresolved: [],
});

const runners = [
  new LambdaRunner(fn('Echo', 'exports.handler = async (event) => ({ got: event, name: process.env.AWS_LAMBDA_FUNCTION_NAME });'), { environment: {}, log: () => undefined }),
  new LambdaRunner(fn('Thrower', "exports.handler = async () => { const e = new Error('no luck'); e.name = 'LuckError'; throw e; };"), { environment: {}, log: () => undefined }),
  new LambdaRunner(fn('Nothing', 'exports.handler = async () => undefined;'), { environment: {}, log: () => undefined }),
  new LambdaRunner(fn('Recorder', `
const { appendFileSync } = require('node:fs');
exports.handler = async (event) => { appendFileSync(process.env.RECORDS + '/' + process.env.AWS_LAMBDA_FUNCTION_NAME, JSON.stringify(event) + '\\n'); };`),
  { environment: {}, log: () => undefined }),
];
const byArn = new Map(runners.map((runner) => [runner.fn.arn, runner]));
const recorderArn = runners[3].fn.arn;
const rules: EventRuleModel[] = [
  { key: 'Test/Joins', eventBusName: 'default', sources: ['authenticated-websocket-api'], detailTypes: ['Joined'], functionArns: [recorderArn] },
  { key: 'Test/OtherBus', eventBusName: 'audit', sources: ['authenticated-websocket-api'], functionArns: [recorderArn] },
];

let lambda: LocalLambda;
let eventBridge: LocalEventBridge;
let client: LambdaClient;
const logLines: string[] = [];
const log = (line: string) => logLines.push(line);

beforeAll(async () => {
  lambda = await startLambda(() => runners.values(), '127.0.0.1', log);
  eventBridge = await startEventBridge({ rules, functions: (arn) => byArn.get(arn), region: 'eu-west-1', accountId: '111122223333', host: '127.0.0.1', log });
  client = new LambdaClient({ endpoint: lambda.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
});

afterAll(async () => {
  client.destroy();
  await lambda.close();
  await eventBridge.close();
  await Promise.all(runners.map((runner) => runner.close()));
});

const payload = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');
const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('utf8');

test('the endpoint listens on the loopback only', () => {
  expect(new URL(lambda.endpoint).hostname).toBe('127.0.0.1');
  expect(new URL(eventBridge.endpoint).hostname).toBe('127.0.0.1');
});

test('Invoke by name, ARN, partial ARN or qualified name runs the function and answers what it returned', async () => {
  for (const FunctionName of ['Echo', 'arn:aws:lambda:eu-west-1:111122223333:function:Echo', '111122223333:function:Echo', 'Echo:live']) {
    const answer = await client.send(new InvokeCommand({ FunctionName, Payload: payload({ n: FunctionName }) }));
    expect(answer.StatusCode).toBe(200);
    expect(answer.FunctionError).toBeUndefined();
    expect(answer.ExecutedVersion).toBe('$LATEST');
    expect(JSON.parse(text(answer.Payload))).toEqual({ got: { n: FunctionName }, name: 'Echo' });
  }
}, 20_000);

test('a function that returns nothing answers null, as Lambda does', async () => {
  const answer = await client.send(new InvokeCommand({ FunctionName: 'Nothing' }));
  expect(answer.StatusCode).toBe(200);
  expect(text(answer.Payload)).toBe('null');
});

test('a function that throws answers X-Amz-Function-Error Unhandled with its error type and message', async () => {
  const answer = await client.send(new InvokeCommand({ FunctionName: 'Thrower', Payload: payload({}) }));
  expect(answer.StatusCode).toBe(200);
  expect(answer.FunctionError).toBe('Unhandled');
  expect(JSON.parse(text(answer.Payload))).toMatchObject({ errorType: 'LuckError', errorMessage: 'no luck' });
});

test('an unknown function, or one of another account, is a ResourceNotFoundException', async () => {
  for (const FunctionName of ['Missing', 'arn:aws:lambda:eu-west-1:999999999999:function:Echo']) {
    const failure = await client.send(new InvokeCommand({ FunctionName })).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ResourceNotFoundException);
    expect((failure as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
    expect((failure as Error).message).toContain(FunctionName);
  }
});

test('InvocationType Event answers 202 at once and runs the function in the background; DryRun runs nothing', async () => {
  const dry = await client.send(new InvokeCommand({ FunctionName: 'Recorder', InvocationType: 'DryRun', Payload: payload({ dry: true }) }));
  expect(dry.StatusCode).toBe(204);
  const answer = await client.send(new InvokeCommand({ FunctionName: 'Recorder', InvocationType: 'Event', Payload: payload({ async: 1 }) }));
  expect(answer.StatusCode).toBe(202);
  const lines = await recorded((all) => all.some((event) => event.async === 1));
  expect(lines).toEqual([{ async: 1 }]);
}, 20_000);

test('an asynchronous payload over 256 KB is refused with RequestTooLargeException, as Lambda does', async () => {
  const big = payload({ text: 'x'.repeat(300 * 1024) });
  const failure = await client.send(new InvokeCommand({ FunctionName: 'Echo', InvocationType: 'Event', Payload: big })).catch((err: unknown) => err);
  expect((failure as Error).name).toBe('RequestTooLargeException');
  const answer = await client.send(new InvokeCommand({ FunctionName: 'Echo', Payload: big }));
  expect(JSON.parse(text(answer.Payload)).got.text).toHaveLength(300 * 1024);
}, 20_000);

test('a payload that is not JSON is refused with InvalidRequestContentException', async () => {
  const failure = await client.send(new InvokeCommand({ FunctionName: 'Echo', Payload: Buffer.from('{not json') })).catch((err: unknown) => err);
  expect((failure as Error).name).toBe('InvalidRequestContentException');
});

test('PutEvents answers as EventBridge does, logs each event on one line, and invokes the functions of matching rules', async () => {
  const environment = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCAL',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
    WEBSOCKET_API_ID: 'abc123',
  };
  const before = logLines.length;
  await new EventBridgeLifecycleSink('default', environment).presence({ event: 'joined', channel: 'rooms/red', userId: 'alice\nforged' });
  await new EventBridgeLifecycleSink('default', environment).connection({ event: 'connected', connectionId: 'c-1', userId: 'alice' });
  // The sink logs `lifecycle_event_failed` when the put fails; the log lines prove it reached the endpoint.
  const lines = logLines.slice(before);
  expect(lines).toEqual([
    expect.stringMatching(/^eventbridge: default authenticated-websocket-api "Joined" \{.*"channel":"rooms\/red".*\}$/),
    expect.stringMatching(/^eventbridge: default authenticated-websocket-api "Connected" \{.*"connectionId":"c-1".*\}$/),
  ]);
  expect(lines[0]).not.toContain('\n');
  // Only the Joined rule matches: one invocation, with the event as EventBridge delivers it.
  const events = await recorded((all) => all.some((event) => event['detail-type'] === 'Joined'));
  const joined = events.filter((event) => event['detail-type'] === 'Joined');
  expect(joined).toEqual([{
    'version': '0',
    'id': expect.any(String),
    'detail-type': 'Joined',
    'source': 'authenticated-websocket-api',
    'account': '111122223333',
    'time': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    'region': 'eu-west-1',
    'resources': [],
    'detail': { apiId: 'abc123', channel: 'rooms/red', userId: 'alice\nforged' },
  }]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect((await recorded(() => true)).some((event) => event['detail-type'] === 'Connected')).toBe(false);
}, 20_000);

test('PutEvents reports a malformed entry in FailedEntryCount and refuses what is not PutEvents', async () => {
  const post = async (target: string, body: unknown) => {
    const response = await fetch(eventBridge.endpoint, { method: 'POST', headers: { 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify(body) });
    return { status: response.status, body: await response.json() as any };
  };
  const mixed = await post('AWSEvents.PutEvents', {
    Entries: [
      { Source: 'app', DetailType: 'Ok', Detail: '{"a":1}' },
      { Source: 'app', DetailType: 'Bad', Detail: 'not json' },
      { DetailType: 'NoSource', Detail: '{}' },
    ],
  });
  expect(mixed.status).toBe(200);
  expect(mixed.body).toEqual({
    FailedEntryCount: 2,
    Entries: [
      { EventId: expect.any(String) },
      { ErrorCode: 'MalformedDetail', ErrorMessage: expect.any(String) },
      { ErrorCode: 'InvalidArgument', ErrorMessage: expect.any(String) },
    ],
  });
  expect(await post('AWSEvents.PutEvents', { Entries: [] })).toMatchObject({ status: 400, body: { __type: 'ValidationException' } });
  expect(await post('AWSEvents.PutRule', { Name: 'x' })).toMatchObject({ status: 400, body: { __type: 'UnknownOperationException' } });
});

/** The events the Recorder function wrote, once `done` holds (or after 10 s). */
async function recorded(done: (events: any[]) => boolean): Promise<any[]> {
  const file = join(records, 'Recorder');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];
    if (done(events) || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
