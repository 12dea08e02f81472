import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { FunctionModel, QueueModel } from '../../src/local/assembly';
import { LambdaRunner } from '../../src/local/lambda-runner';
import { LocalSqs, startSqs } from '../../src/local/local-sqs';

/**
 * The local SQS with the real SDK v3 client, and its event source mappings invoking real functions
 * (inline code in worker sandboxes): the redrive policy moves a message that keeps failing to the
 * dead-letter queue, whose own event source then receives it.
 */

const records = mkdtempSync(join(tmpdir(), 'authws-sqs-test-'));
const queue = (name: string, extra: Partial<QueueModel> = {}): QueueModel => ({
  logicalId: name,
  queueName: name,
  arn: `arn:aws:sqs:us-east-1:000000000000:${name}`,
  url: `https://sqs.us-east-1.amazonaws.com/000000000000/${name}`,
  visibilityTimeoutSeconds: 1,
  ...extra,
});
const fn = (name: string, source: string): FunctionModel => ({
  key: `Test/${name}`,
  logicalId: name,
  functionName: name,
  arn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
  runtime: 'nodejs20.x',
  handler: 'index.handler',
  inlineCode: source,
  timeoutSeconds: 5,
  memorySize: 128,
  environment: { RECORDS: records },
  unresolved: [],
});
// Appends each record it gets to a file named after the function, then fails or succeeds.
const recorder = (fail: boolean) => `
const { appendFileSync } = require('node:fs');
exports.handler = async (event) => {
  for (const record of event.Records) appendFileSync(process.env.RECORDS + '/' + process.env.AWS_LAMBDA_FUNCTION_NAME, JSON.stringify({ body: record.body, receiveCount: record.attributes.ApproximateReceiveCount, source: record.eventSourceARN }) + '\\n');
  ${fail ? "throw new Error('cannot handle it');" : 'return { batchItemFailures: [] };'}
};`;

const runners = [
  new LambdaRunner(fn('Failing', recorder(true)), { environment: {}, log: () => undefined }),
  new LambdaRunner(fn('DeadLetters', recorder(false)), { environment: {}, log: () => undefined }),
];
let sqs: LocalSqs;
const logLines: string[] = [];

beforeAll(async () => {
  const deadLetters = queue('dead-letters');
  sqs = await startSqs(
    [queue('work', { deadLetterQueueArn: deadLetters.arn, maxReceiveCount: 2 }), deadLetters],
    [
      { logicalId: 'WorkMapping', queueArn: queue('work').arn, functionArn: runners[0].fn.arn, batchSize: 10, reportBatchItemFailures: true },
      { logicalId: 'DeadLetterMapping', queueArn: deadLetters.arn, functionArn: runners[1].fn.arn, batchSize: 10, reportBatchItemFailures: true },
    ],
    '127.0.0.1',
    (line) => logLines.push(line),
  );
  sqs.startPolling((arn) => runners.find((runner) => runner.fn.arn === arn));
});

afterAll(async () => {
  await sqs.close();
  await Promise.all(runners.map((runner) => runner.close()));
});

function recorded(name: string): Array<{ body: string; receiveCount: string; source: string }> {
  const file = join(records, name);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line)) : [];
}

test('a message whose invocations keep failing is received maxReceiveCount times, then reaches the dead-letter queue\'s consumer', async () => {
  const client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const sent = await client.send(new SendMessageCommand({ QueueUrl: `${sqs.endpoint}/000000000000/work`, MessageBody: 'poison' }));
  client.destroy();
  expect(sent.MessageId).toBeTruthy();

  while (recorded('DeadLetters').length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(recorded('Failing')).toEqual([
    { body: 'poison', receiveCount: '1', source: 'arn:aws:sqs:us-east-1:000000000000:work' },
    { body: 'poison', receiveCount: '2', source: 'arn:aws:sqs:us-east-1:000000000000:work' },
  ]);
  expect(recorded('DeadLetters')).toEqual([{ body: 'poison', receiveCount: '1', source: 'arn:aws:sqs:us-east-1:000000000000:dead-letters' }]);
  expect(logLines.join('\n')).toMatch(/moved to dead-letters after 2 receives/);
});

test('an action the local SQS does not serve is a clear error', async () => {
  const response = await fetch(sqs.endpoint, {
    method: 'POST',
    headers: { 'X-Amz-Target': 'AmazonSQS.PurgeQueue', 'Content-Type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ QueueUrl: `${sqs.endpoint}/000000000000/work` }),
  });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { message: string }).message).toMatch(/serves SendMessage, SendMessageBatch and GetQueueUrl, not PurgeQueue/);
});
