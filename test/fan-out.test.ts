import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { FanOut } from '../src';
import { logicalId, quickStart, statementsOf } from './support/stacks';

/** The statements on anything but the channels table (whose grants channels.test.ts checks). */
const withoutChannelsTable = (template: ReturnType<typeof quickStart>['template'], statements: Array<Record<string, any>>) => {
  const table = logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable');
  return statements.filter((s) => !JSON.stringify(s.Resource).includes(table));
};

const actionsOf = (statements: Array<Record<string, any>>): string[] =>
  [...new Set(statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])))].sort();

describe('FanOut.inline() (the default)', () => {
  const { template } = quickStart();

  test('creates no queue and no worker', () => {
    template.resourceCountIs('AWS::SQS::Queue', 0);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 0);
  });

  test('the message handler and the publisher read 4 scan segments with 100 posts in flight', () => {
    for (const prefix of ['ChatMessageHandler', 'ChatPublisher']) {
      const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
      expect(fn.Properties.Environment.Variables).toMatchObject({ FANOUT_CONCURRENCY: '100', FANOUT_SEGMENTS: '4', POST_TIMEOUT_MS: '5000' });
      expect(fn.Properties.Environment.Variables.FANOUT_QUEUE_URL).toBeUndefined();
    }
  });
});

describe('FanOut.queue()', () => {
  const { template } = quickStart({ fanOut: FanOut.queue({ segments: 20, concurrency: 50, maxSendRate: 8_000 }) });
  const queue = () => logicalId(template, 'AWS::SQS::Queue', 'ChatFanOutQueue');
  const dlq = () => logicalId(template, 'AWS::SQS::Queue', 'ChatFanOutDeadLetterQueue');
  const worker = () => logicalId(template, 'AWS::Lambda::Function', 'ChatFanOutWorker');

  test('a queue with a dead-letter queue after 3 receives, both encrypted, visibility six times the worker timeout', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 720,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq(), 'Arn'] }, maxReceiveCount: 3 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    const fn = template.findResources('AWS::Lambda::Function')[worker()];
    expect(fn.Properties.Timeout).toBe(120);
  });

  test('queues refuse unencrypted transport', () => {
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  test('the worker takes one task at a time, at most as many invocations as maxSendRate needs (8,000/s: 6 for 20 segments), reporting partial failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: worker() },
      EventSourceArn: { 'Fn::GetAtt': [queue(), 'Arn'] },
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 6 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  test('each worker is held to its share of maxSendRate, so all together stay under it', () => {
    const fn = template.findResources('AWS::Lambda::Function')[worker()];
    const variables = fn.Properties.Environment.Variables;
    expect(variables).toMatchObject({ FANOUT_CONCURRENCY: '50', FANOUT_MAX_SEND_RATE: '1333', POST_TIMEOUT_MS: '5000' });
    expect(Number(variables.FANOUT_MAX_SEND_RATE) * 6).toBeLessThanOrEqual(8_000);
    expect(variables.FANOUT_QUEUE_URL).toEqual({ Ref: queue() });
    expect(variables.FANOUT_DLQ_URL).toEqual({ Ref: dlq() });
    expect(variables.CALLBACK_URL).toBeDefined();
  });

  test('the message handler and the publisher enqueue 20 segments', () => {
    for (const prefix of ['ChatMessageHandler', 'ChatPublisher']) {
      const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
      expect(fn.Properties.Environment.Variables).toMatchObject({ FANOUT_SEGMENTS: '20', FANOUT_QUEUE_URL: { Ref: queue() } });
      expect(actionsOf(statementsOf(template, prefix))).toEqual(expect.arrayContaining(['sqs:SendMessage']));
    }
  });

  test('the worker may scan and delete rows, post to this stage, continue on its queue and dead-letter; nothing more', () => {
    // Its channels-table grants (channel tasks) are checked in channels.test.ts.
    expect(actionsOf(withoutChannelsTable(template, statementsOf(template, 'ChatFanOutWorker')))).toEqual([
      'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:Scan',
      'execute-api:ManageConnections',
      'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:SendMessage',
    ]);
    const manage = statementsOf(template, 'ChatFanOutWorker').filter((s) => s.Action === 'execute-api:ManageConnections');
    expect(JSON.stringify(manage.map((s) => s.Resource))).toMatch(/^\[\{"Fn::Join":\["",\[.*"\/dev\/POST\/@connections\/\*"\]\]\}\]$/);
    const send = statementsOf(template, 'ChatFanOutWorker').filter((s) => [s.Action].flat().includes('sqs:SendMessage'));
    expect(send.flatMap((s) => [s.Resource].flat())).toEqual(expect.arrayContaining([{ 'Fn::GetAtt': [queue(), 'Arn'] }, { 'Fn::GetAtt': [dlq(), 'Arn'] }]));
  });

  test('defaults: 16 segments, 100 in flight, 5,000 posts per second in all, by 4 workers at 1,250 each (not 16 at 312, mostly waiting on pacing)', () => {
    const { template: t } = quickStart({ fanOut: FanOut.queue() });
    const fn = t.findResources('AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', 'ChatFanOutWorker')];
    expect(fn.Properties.Environment.Variables).toMatchObject({ FANOUT_CONCURRENCY: '100', FANOUT_MAX_SEND_RATE: '1250' });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: { MaximumConcurrency: 4 } });
  });

  test('maxWorkers sets the workers and their share; a worker per segment is the most the default takes', () => {
    const { template: t } = quickStart({ fanOut: FanOut.queue({ segments: 20, maxSendRate: 8_000, maxWorkers: 20 }) });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: { MaximumConcurrency: 20 } });
    const fn = t.findResources('AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', 'ChatFanOutWorker')];
    expect(fn.Properties.Environment.Variables.FANOUT_MAX_SEND_RATE).toBe('400');
    expect(FanOut.queue({ segments: 3, maxSendRate: 9_000 }).maxWorkers).toBe(3);
    expect(FanOut.queue({ segments: 16, maxSendRate: 9_000 }).maxWorkers).toBe(6);
  });

  test('one segment still allows Lambda\'s minimum of 2 concurrent workers, each at half the rate', () => {
    const { template: t } = quickStart({ fanOut: FanOut.queue({ segments: 1, maxSendRate: 1_000 }) });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: { MaximumConcurrency: 2 } });
    const fn = t.findResources('AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', 'ChatFanOutWorker')];
    expect(fn.Properties.Environment.Variables.FANOUT_MAX_SEND_RATE).toBe('500');
  });
});

describe('grantSend', () => {
  test('lets any principal invoke the publisher, and only that', () => {
    const chat = quickStart();
    const role = new iam.Role(chat.stack, 'PythonService', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    chat.api.grantSend(role);
    const template = chat.template;
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: any) =>
      p.Properties.Roles.some((r: any) => r.Ref === logicalId(template, 'AWS::IAM::Role', 'PythonService')));
    const statements = policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    expect(actionsOf(statements)).toEqual(['lambda:InvokeFunction']);
    const publisher = logicalId(template, 'AWS::Lambda::Function', 'ChatPublisher');
    expect(statements[0].Resource).toEqual(expect.arrayContaining([{ 'Fn::GetAtt': [publisher, 'Arn'] }]));
  });

  test('a Lambda function also learns the publisher\'s name, for the publish helper', () => {
    const chat = quickStart();
    const fn = new lambda.Function(chat.stack, 'Orders', {
      runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    });
    chat.api.grantSend(fn);
    const template = chat.template;
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: { Variables: { CONNECTIONS_PUBLISHER_FUNCTION_NAME: { Ref: logicalId(template, 'AWS::Lambda::Function', 'ChatPublisher') } } },
    });
  });

  test('the publisher may read and delete rows and post to this stage, never close or read connections', () => {
    const { template } = quickStart();
    const statements = withoutChannelsTable(template, statementsOf(template, 'ChatPublisher'));
    expect(actionsOf(statements)).toEqual(
      ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:Scan', 'execute-api:ManageConnections']);
    const manage = statements.filter((s) => s.Action === 'execute-api:ManageConnections');
    expect(JSON.stringify(manage.map((s) => s.Resource))).toMatch(/^\[\{"Fn::Join":\["",\[.*"\/dev\/POST\/@connections\/\*"\]\]\}\]$/);
  });
});

describe('invalid fan-out options say what to change', () => {
  test.each([
    ['inline concurrency 0', () => FanOut.inline({ concurrency: 0 }), /FanOut\.inline: concurrency is 0; use a whole number from 1 to 1000/],
    ['queue segments 0', () => FanOut.queue({ segments: 0 }), /FanOut\.queue: segments is 0; use a whole number from 1 to 1000/],
    ['queue segments 1.5', () => FanOut.queue({ segments: 1.5 }), /segments is 1\.5/],
    ['queue concurrency 1001', () => FanOut.queue({ concurrency: 1001 }), /concurrency is 1001/],
    ['one worker (Lambda allows 2 at least)', () => FanOut.queue({ maxWorkers: 1 }), /FanOut\.queue: maxWorkers is 1; use a whole number from 2 to 1000/],
    ['a send rate too small to share', () => FanOut.queue({ segments: 10, maxSendRate: 15 }), /maxSendRate is 15; use a whole number of posts per second of at least 2 per worker \(20 for 10 segments\)/],
  ])('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  test('the replaced fanOutConcurrency prop is refused with the new spelling', () => {
    expect(() => quickStart({ fanOutConcurrency: 10 } as never)).toThrow(/fanOutConcurrency was replaced by fanOut; use fanOut: FanOut\.inline\(\{ concurrency \}\)/);
  });
});
