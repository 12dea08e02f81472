import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Access, AuthenticatedWebSocketApi, ChannelRule, FanOut, WebSocketAuth } from '../src';
import { logicalId, newStack, quickStart, statementsOf } from './support/stacks';

const actionsOf = (statements: Array<Record<string, any>>): string[] =>
  [...new Set(statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])))].sort();

function envOf(template: ReturnType<typeof quickStart>['template'], prefix: string): Record<string, any> {
  const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
  return fn.Properties.Environment.Variables;
}

describe('the channels table', () => {
  const { template } = quickStart();

  test('is keyed pk/sk, lists a connection\'s subscriptions in GSI byConnection, expires items by ttl, on demand', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: [{
        IndexName: 'byConnection',
        KeySchema: [{ AttributeName: 'connectionId', KeyType: 'HASH' }, { AttributeName: 'pk', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      }],
    });
  });

  test('without channel props, broadcast and send stay open and the rate limit defaults to 100 per 10 s', () => {
    const env = envOf(template, 'ChatMessageHandler');
    expect(JSON.parse(env.CHANNELS_CONFIG)).toEqual({ rules: [], actions: { broadcast: { kind: 'authenticated' }, send: { kind: 'authenticated' } } });
    expect(env.CLIENT_FANOUT_RATE_LIMIT).toBe('100');
    expect(env.CLIENT_FANOUT_RATE_WINDOW_SECONDS).toBe('10');
  });

  test('the message handler, publisher and connection handler reach the channels table and its index only', () => {
    const table = logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable');
    for (const [prefix, actions] of [
      ['ChatMessageHandler', ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']],
      ['ChatPublisher', ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']],
      ['ChatConnectionHandler', ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:UpdateItem']],
    ] as const) {
      const onChannels = statementsOf(template, prefix).filter((s) => JSON.stringify(s.Resource).includes(table));
      expect(actionsOf(onChannels)).toEqual(actions);
      for (const statement of onChannels) {
        expect(statement.Resource).toEqual([
          { 'Fn::GetAtt': [table, 'Arn'] },
          { 'Fn::Join': ['', [{ 'Fn::GetAtt': [table, 'Arn'] }, '/index/byConnection']] },
        ]);
      }
    }
    expect(JSON.stringify(statementsOf(template, 'ChatExpirySweeper'))).not.toContain(table);
  });
});

describe('rules', () => {
  test('are passed to the handlers as they read them', () => {
    const { template } = quickStart({
      channels: [
        ChannelRule.pattern('rooms/*', { presence: true, historySize: 50, historyMaxAge: Duration.hours(1), wildcardSubscriptions: true }),
        ChannelRule.pattern('users/${userId}', { publish: Access.none() }),
        ChannelRule.pattern('tenants/${claim:tenant}/*', { publish: Access.claim('role', 'admin', 'ops') }),
      ],
      actions: { broadcast: Access.claim('role', 'admin') },
      clientFanOutRateLimit: 20,
    }, { contextClaims: ['tenant', 'role'] });
    const env = envOf(template, 'ChatMessageHandler');
    expect(JSON.parse(env.CHANNELS_CONFIG)).toEqual({
      rules: [
        { pattern: 'rooms/*', subscribe: { kind: 'authenticated' }, publish: { kind: 'authenticated' }, presence: true, history: { size: 50, maxAgeSeconds: 3600 }, wildcardSubscriptions: true },
        { pattern: 'users/${userId}', subscribe: { kind: 'authenticated' }, publish: { kind: 'none' } },
        { pattern: 'tenants/${claim:tenant}/*', subscribe: { kind: 'authenticated' }, publish: { kind: 'claim', claim: 'role', values: ['admin', 'ops'] } },
      ],
      actions: { broadcast: { kind: 'claim', claim: 'role', values: ['admin'] }, send: { kind: 'authenticated' } },
    });
    expect(env.CLIENT_FANOUT_RATE_LIMIT).toBe('20');
    expect(envOf(template, 'ChatPublisher').CHANNELS_CONFIG).toBe(env.CHANNELS_CONFIG);
  });

  test('an authorizer function is named in the rule, asked by default, and only the message handler may invoke it', () => {
    const stack = newStack();
    const hook = new lambda.Function(stack, 'OrdersAuth', {
      runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ allow: true })'),
    });
    new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret')),
      channels: [ChannelRule.pattern('orders/*', { authorizer: hook, authorizerCacheTtl: Duration.seconds(30) })],
    });
    const template = Template.fromStack(stack);
    const config = envOf(template, 'ChatMessageHandler').CHANNELS_CONFIG;
    // The function's name is a token resolved by CloudFormation: the config is joined around it.
    const text = JSON.stringify(config);
    expect(text).toContain('\\"subscribe\\":{\\"kind\\":\\"function\\"}');
    expect(text).toContain('\\"authorizerCacheSeconds\\":30');
    const invoke = statementsOf(template, 'ChatMessageHandler').filter((s) => s.Action === 'lambda:InvokeFunction');
    expect(invoke.map((s) => s.Resource)).toEqual([[
      { 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'OrdersAuth'), 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'OrdersAuth'), 'Arn'] }, ':*']] },
    ]]);
    expect(JSON.stringify(statementsOf(template, 'ChatPublisher'))).not.toContain('lambda:InvokeFunction');
  });

  test('a customer-managed key encrypts the channels table too, and the channel handlers may use it', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret')), encryptionKey: key });
    const template = Template.fromStack(stack);
    const keyId = logicalId(template, 'AWS::KMS::Key', 'Key');
    const channels = template.findResources('AWS::DynamoDB::Table')[logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable')];
    expect(channels.Properties.SSESpecification).toEqual({ KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] }, SSEEnabled: true, SSEType: 'KMS' });
    expect(actionsOf(statementsOf(template, 'ChatPublisher').filter((s) => JSON.stringify(s.Resource).includes(keyId)))).toContain('kms:GenerateDataKey');
  });
});

describe('bad props throw at synth, saying what to change', () => {
  test.each([
    ['a partial placeholder', () => ChannelRule.pattern('users/u-${userId}'), /whole segment \$\{userId\}/],
    ['an empty segment', () => ChannelRule.pattern('rooms//x'), /not a valid segment/],
    ['historySize 0', () => ChannelRule.pattern('rooms/*', { historySize: 0 }), /historySize is 0; use a whole number from 1 to 1000/],
    ['historyMaxAge without historySize', () => ChannelRule.pattern('rooms/*', { historyMaxAge: Duration.hours(1) }), /historyMaxAge needs historySize/],
    ['wildcard subscriptions on a pattern not ending in /*', () => ChannelRule.pattern('users/${userId}', { wildcardSubscriptions: true }), /ending in '\/\*'/],
    ['custom access without an authorizer', () => ChannelRule.pattern('orders/*', { publish: Access.custom() }), /needs an authorizer function/],
    ['a claim policy without values', () => Access.claim('role'), /at least one accepted value/],
    ['a bad claim name', () => Access.claim('ro le', 'x'), /claim name 'ro le' is not valid/],
    ['a negative rate limit', () => quickStart({ clientFanOutRateLimit: -1 }), /clientFanOutRateLimit is -1/],
    ['custom access for broadcast', () => quickStart({ actions: { broadcast: Access.custom() } }), /actions.broadcast cannot be Access.custom/],
    ['a pattern claim the registry does not keep', () => quickStart({ channels: [ChannelRule.pattern('tenants/${claim:tenant}/*')] }, { contextClaims: ['role'] }),
      /pattern 'tenants\/\$\{claim:tenant\}\/\*' uses claim 'tenant', which the registry does not keep; add 'tenant' to the auth's contextClaims/],
    ['a policy claim the registry does not keep', () => quickStart({ actions: { broadcast: Access.claim('role', 'admin') } }), /actions.broadcast uses claim 'role'/],
  ])('%s', (_case, build, message) => {
    expect(build).toThrow(message);
  });

  test('rules too large for the handlers\' environment', () => {
    const rules = Array.from({ length: 60 }, (_, i) => ChannelRule.pattern(`rooms-${i}/*`, { publish: Access.claim('role', 'admin') }));
    expect(() => quickStart({ channels: rules }, { contextClaims: ['role'] })).toThrow(/the limit is 3000. Use fewer rules/);
  });
});

describe('lifecycle events', () => {
  test('are off by default: no bus, no PutEvents grant', () => {
    const { template } = quickStart();
    expect(envOf(template, 'ChatConnectionHandler').LIFECYCLE_EVENT_BUS_NAME).toBeUndefined();
    expect(JSON.stringify(template.toJSON())).not.toContain('events:PutEvents');
  });

  test('lifecycleEvents: true names the default bus, and the connection, message and publisher functions may put to it only', () => {
    const { template } = quickStart({ lifecycleEvents: true });
    for (const prefix of ['ChatConnectionHandler', 'ChatMessageHandler', 'ChatPublisher']) {
      expect(envOf(template, prefix).LIFECYCLE_EVENT_BUS_NAME).toBe('default');
      const put = statementsOf(template, prefix).filter((s) => s.Action === 'events:PutEvents');
      expect(put.map((s) => s.Resource)).toEqual([
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:eu-west-1:111111111111:event-bus/default']] },
      ]);
    }
    expect(JSON.stringify(statementsOf(template, 'ChatExpirySweeper'))).not.toContain('events:PutEvents');
  });

  test('a bus of the app\'s own', () => {
    const stack = newStack();
    const bus = new events.EventBus(stack, 'AppBus');
    new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret')), lifecycleEventBus: bus });
    const template = Template.fromStack(stack);
    expect(envOf(template, 'ChatMessageHandler').LIFECYCLE_EVENT_BUS_NAME).toEqual({ Ref: logicalId(template, 'AWS::Events::EventBus', 'AppBus') });
    expect(() => quickStart({ lifecycleEvents: false, lifecycleEventBus: events.EventBus.fromEventBusName(newStack(), 'B', 'x') }))
      .toThrow(/lifecycleEvents is false but lifecycleEventBus is set/);
  });
});

describe('queue mode', () => {
  test('subscriptions spread over as many shards as a broadcast has segments, and the worker may serve channel tasks', () => {
    const { template } = quickStart({ fanOut: FanOut.queue({ segments: 12 }) });
    for (const prefix of ['ChatMessageHandler', 'ChatPublisher', 'ChatConnectionHandler', 'ChatFanOutWorker']) {
      expect(envOf(template, prefix).CHANNEL_SHARDS).toBe('12');
    }
    const table = logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable');
    const onChannels = statementsOf(template, 'ChatFanOutWorker').filter((s) => JSON.stringify(s.Resource).includes(table));
    expect(actionsOf(onChannels)).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(envOf(quickStart({ fanOut: FanOut.queue({ segments: 200 }) }).template, 'ChatFanOutWorker').CHANNEL_SHARDS).toBe('64');
  });
});
