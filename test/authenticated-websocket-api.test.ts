import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, FanOut, RouteTarget, TokenLocation, WebSocketAuth } from '../src';
import { fullyConfigured, logicalId, newStack, quickStart, statementsOf } from './support/stacks';
import { renderTemplate } from '../src/local/request-template';

const actionsOf = (statements: Array<Record<string, any>>): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

describe('the quick start', () => {
  const { template, stack, api } = quickStart();
  const apiId = () => logicalId(template, 'AWS::ApiGatewayV2::Api', 'ChatApi');

  test('creates a WebSocket API selecting routes by $request.body.action', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
  });

  test('deploys a stage named dev automatically', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: 'dev', AutoDeploy: true });
    expect(template.findResources('AWS::ApiGatewayV2::Stage')[logicalId(template, 'AWS::ApiGatewayV2::Stage', 'ChatStage')]
      .Properties.DefaultRouteSettings).toBeUndefined();
  });

  test('guards $connect with a REQUEST Lambda authorizer reading the Authorization header', () => {
    const authorizerFn = logicalId(template, 'AWS::Lambda::Function', 'ChatAuthorizer');
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: ['route.request.header.Authorization'],
      AuthorizerUri: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [authorizerFn, 'Arn'] }])]) }),
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$connect',
      AuthorizationType: 'CUSTOM',
      AuthorizerId: { Ref: logicalId(template, 'AWS::ApiGatewayV2::Authorizer', 'ChatApiAuthorizer') },
    });
  });

  test.each([
    ['$connect', 'ChatConnectionHandler'],
    ['$disconnect', 'ChatConnectionHandler'],
    ['$default', 'ChatMessageHandler'],
  ])('wires %s to the bundled %s', (routeKey, fnPrefix) => {
    const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route'))
      .find((r: any) => r.Properties.RouteKey === routeKey) as any;
    const integrationId = route.Properties.Target['Fn::Join'][1][1].Ref;
    const integration = template.findResources('AWS::ApiGatewayV2::Integration')[integrationId];
    expect(integration.Properties.IntegrationType).toBe('AWS_PROXY');
    expect(JSON.stringify(integration.Properties.IntegrationUri)).toContain(logicalId(template, 'AWS::Lambda::Function', fnPrefix));
  });

  test('defines only $connect, $disconnect and $default', () => {
    const keys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r: any) => r.Properties.RouteKey);
    expect(keys.sort()).toEqual(['$connect', '$default', '$disconnect']);
  });

  test('keeps the registry in an on-demand, encrypted table keyed by connectionId, with a GSI by user and a TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'connectionId', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      GlobalSecondaryIndexes: [{
        IndexName: 'byUser',
        KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['ttl', 'expiresAt'] },
      }],
    });
  });

  test('runs every bundled handler on Node.js 24, the newest Lambda offers (arm64)', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(5); // authorizer, connection handler, message handler, publisher, expiry sweeper
    for (const fn of functions as any[]) {
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
    }
  });

  test('tells the authorizer where the secret is, never what it is', () => {
    const secretId = logicalId(template, 'AWS::SecretsManager::Secret', 'JwtSecret');
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          AUTH_SECRET_ARN: { Ref: secretId },
          AUTH_ALGORITHMS: 'HS256',
          AUTH_TOKEN_LOCATION: 'header:Authorization',
          AUTH_USER_ID_CLAIM: 'sub',
          AUTH_CLOCK_TOLERANCE_SECONDS: '5',
        }),
      },
    });
    const json = JSON.stringify(template.toJSON());
    // A secret value in a template is a dynamic reference ({{resolve:secretsmanager:...}}) or a literal SecretString.
    expect(/\{\{resolve:secretsmanager|"SecretString"/.test(json)).toBe(false);
  });

  test('the authorizer may read the secret and nothing else', () => {
    const secretId = logicalId(template, 'AWS::SecretsManager::Secret', 'JwtSecret');
    const statements = statementsOf(template, 'ChatAuthorizer');
    expect(actionsOf(statements)).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(statements.every((s) => s.Resource.Ref === secretId)).toBe(true);
  });

  test('besides the message handler (which verifies reauth tokens), no other function may read the secret', () => {
    for (const prefix of ['ChatConnectionHandler', 'ChatPublisher', 'ChatExpirySweeper']) {
      expect(JSON.stringify(statementsOf(template, prefix))).not.toContain('secretsmanager');
    }
  });

  test('the connection handler may only put and delete registry rows (and clean up channel subscriptions)', () => {
    const statements = statementsOf(template, 'ChatConnectionHandler');
    const channelsTable = logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable');
    const onRegistry = statements.filter((s) => !JSON.stringify(s.Resource).includes(channelsTable) && s.Action !== 'execute-api:ManageConnections');
    expect(actionsOf(onRegistry)).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:PutItem']);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { CONNECTIONS_TABLE_NAME: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'ChatConnections') }, CONNECTION_TTL_SECONDS: '7500', AWS_NODEJS_CONNECTION_REUSE_ENABLED: '1' } },
    });
  });

  test('the message handler may read, delete (one by one or 25 to a batch) and extend rows, read the secret, and post to and close connections of this stage only', () => {
    const channelsTable = logicalId(template, 'AWS::DynamoDB::Table', 'ChatChannelsTable');
    const statements = statementsOf(template, 'ChatMessageHandler').filter((s) => !JSON.stringify(s.Resource).includes(channelsTable));
    expect(actionsOf(statements)).toEqual([
      'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:UpdateItem',
      'execute-api:ManageConnections', 'secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue',
    ]);
    // It posts, and closes connections whose token expired: POST and DELETE, never GET.
    const manage = statements.find((s) => s.Action === 'execute-api:ManageConnections')!;
    expect(manage.Resource).toEqual(['POST', 'DELETE'].map((method) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:eu-west-1:111111111111:', { Ref: apiId() }, `/dev/${method}/@connections/*`]],
    })));
  });

  test('builds the callback URL from the API id, region and stage', () => {
    const expected = { 'Fn::Join': ['', ['https://', { Ref: apiId() }, '.execute-api.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/dev']] };
    expect(stack.resolve(api.callbackUrl)).toEqual(expected);
    expect(stack.resolve(api.url)).toEqual({ 'Fn::Join': ['', ['wss://', { Ref: apiId() }, '.execute-api.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/dev']] });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ CALLBACK_URL: expected, FANOUT_CONCURRENCY: '100', CONNECTIONS_USER_INDEX_NAME: 'byUser' }) },
    });
  });

  test('exposes its parts', () => {
    expect(api.webSocketApi.apiId).toBeDefined();
    expect(api.stage.stageName).toBe('dev');
    expect(stack.resolve(api.table.tableName)).toEqual({ Ref: logicalId(template, 'AWS::DynamoDB::Table', 'ChatConnections') });
    expect([api.authorizerFunction, api.connectionFunction, api.messageFunction].map((f) => f.node.id))
      .toEqual(['Authorizer', 'ConnectionHandler', 'MessageHandler']);
  });
});

describe('props', () => {
  test('stageName names the stage, the URLs and the ManageConnections scope', () => {
    const { template, api, stack } = quickStart({ stageName: 'prod' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: 'prod' });
    expect(JSON.stringify(stack.resolve(api.url))).toContain('/prod');
    expect(JSON.stringify(statementsOf(template, 'ChatMessageHandler'))).toContain('/prod/POST/@connections/*');
  });

  test('routeSelectionExpression is passed to the API', () => {
    const { template } = quickStart({ routeSelectionExpression: '${request.body.service}/${request.body.action}' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { RouteSelectionExpression: '${request.body.service}/${request.body.action}' });
  });

  test('throttle sets the stage default route settings', () => {
    const { template } = quickStart({ throttle: { rateLimit: 500, burstLimit: 1000 } });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
  });

  test('apiName names the API', () => {
    quickStart({ apiName: 'chat' }).template.hasResourceProperties('AWS::ApiGatewayV2::Api', { Name: 'chat' });
  });

  test('without apiName, each API is named after its construct path, so two APIs never share a name', () => {
    const stack = newStack();
    const auth = WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'));
    new AuthenticatedWebSocketApi(stack, 'Chat', { auth });
    new AuthenticatedWebSocketApi(stack, 'Orders', { auth });
    const names = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Api')).map((r: any) => r.Properties.Name).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^TestStackChat[0-9A-F]{8}$/);
    expect(names[1]).toMatch(/^TestStackOrders[0-9A-F]{8}$/);
  });

  test('fanOut: FanOut.inline({ concurrency }) reaches the message handler', () => {
    quickStart({ fanOut: FanOut.inline({ concurrency: 25 }) }).template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FANOUT_CONCURRENCY: '25' }) },
    });
  });

  test('auth options reach the authorizer, and context claims the connection handler', () => {
    const { template } = quickStart({}, {
      issuer: 'https://issuer.example',
      audience: ['chat', 'admin'],
      algorithms: ['HS512', 'HS256'],
      clockTolerance: Duration.seconds(30),
      userIdClaim: 'uid',
      contextClaims: ['email', 'org'],
      tokenLocation: TokenLocation.queryString('access_token'),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          AUTH_ISSUER: 'https://issuer.example',
          AUTH_AUDIENCE: 'chat,admin',
          AUTH_ALGORITHMS: 'HS512,HS256',
          AUTH_CLOCK_TOLERANCE_SECONDS: '30',
          AUTH_USER_ID_CLAIM: 'uid',
          AUTH_CONTEXT_CLAIMS: 'email,org',
          AUTH_TOKEN_LOCATION: 'query:access_token',
        }),
      },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { IdentitySource: ['route.request.querystring.access_token'] });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ CONNECTION_TTL_SECONDS: '7500', AUTH_CONTEXT_CLAIMS: 'email,org' }) },
    });
  });

  test('a custom header name becomes the identity source', () => {
    quickStart({}, { tokenLocation: TokenLocation.header('X-Token') }).template
      .hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { IdentitySource: ['route.request.header.X-Token'] });
  });
});

describe('operational knobs', () => {
  test('the registry is deleted with the stack by default (its rows are ephemeral), without PITR, with an AWS managed key', () => {
    const { template } = quickStart();
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    const table = Object.values(template.findResources('AWS::DynamoDB::Table'))[0] as any;
    expect(table.Properties.PointInTimeRecoverySpecification).toBeUndefined();
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
  });

  test('removalPolicy and pointInTimeRecovery reach the registry', () => {
    const { template } = quickStart({ removalPolicy: RemovalPolicy.RETAIN, pointInTimeRecovery: true });
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
    });
  });

  test('encryptionKey encrypts the registry; writers may use the key, readers only decrypt, with no wildcard action', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'RegistryKey');
    const api = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')), encryptionKey: key });
    const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    api.grantReadConnections(reader);
    const template = Template.fromStack(stack);
    const keyArn = { 'Fn::GetAtt': [logicalId(template, 'AWS::KMS::Key', 'RegistryKey'), 'Arn'] };
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn } });
    const kmsOf = (statements: Array<Record<string, any>>) => statements.filter((s) => JSON.stringify(s.Action).includes('kms:'));
    expect(kmsOf(statementsOf(template, 'ChatConnectionHandler'))).toEqual([{
      Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
      Effect: 'Allow',
      Resource: keyArn,
    }]);
    const readerPolicy = Object.values(template.findResources('AWS::IAM::Policy'))
      .find((p: any) => p.Properties.Roles.some((r: any) => r.Ref === logicalId(template, 'AWS::IAM::Role', 'Reader'))) as any;
    expect(kmsOf(readerPolicy.Properties.PolicyDocument.Statement)).toEqual([{ Action: ['kms:Decrypt', 'kms:DescribeKey'], Effect: 'Allow', Resource: keyArn }]);
  });

  test('encryptionKey also encrypts the fan-out queues and every log group, and lets CloudWatch Logs use the key', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'RegistryKey');
    new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')), encryptionKey: key, fanOut: FanOut.queue(),
    });
    const template = Template.fromStack(stack);
    const keyArn = { 'Fn::GetAtt': [logicalId(template, 'AWS::KMS::Key', 'RegistryKey'), 'Arn'] };
    const queues = Object.values(template.findResources('AWS::SQS::Queue')) as any[];
    expect(queues).toHaveLength(2);
    for (const queue of queues) {
      expect(queue.Properties.KmsMasterKeyId).toEqual(keyArn);
      expect(queue.Properties.SqsManagedSseEnabled).toBeUndefined();
    }
    const logGroups = Object.values(template.findResources('AWS::Logs::LogGroup')) as any[];
    expect(logGroups).toHaveLength(7); // six functions and the access logs
    for (const group of logGroups) expect(group.Properties.KmsKeyId).toEqual(keyArn);
    const keyPolicy = (Object.values(template.findResources('AWS::KMS::Key'))[0] as any).Properties.KeyPolicy.Statement;
    expect(keyPolicy).toContainEqual(expect.objectContaining({
      Principal: { Service: 'logs.eu-west-1.amazonaws.com' },
      Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': expect.anything() } },
    }));
    // Senders encrypt what they enqueue; the worker decrypts what it receives.
    for (const prefix of ['ChatMessageHandler', 'ChatPublisher', 'ChatFanOutWorker']) {
      expect(actionsOf(statementsOf(template, prefix).filter((s) => JSON.stringify(s.Resource) === JSON.stringify(keyArn))))
        .toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey']));
    }
  });

  test('an imported encryptionKey comes with a warning that its policy must let CloudWatch Logs use it', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'Imported', 'arn:aws:kms:eu-west-1:111111111111:key/11111111-2222-3333-4444-555555555555');
    new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')), encryptionKey: key });
    Annotations.fromStack(stack).hasWarning('/TestStack/Chat', Match.stringLikeRegexp('encryptionKey was imported.*logs\\.eu-west-1\\.amazonaws\\.com'));
  });

  test('architecture applies to every bundled function', () => {
    const { template } = quickStart({ architecture: lambda.Architecture.X86_64 });
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function')) as any[]) expect(fn.Properties.Architectures).toEqual(['x86_64']);
  });

  test('handlers size and reserve each function on its own; the rest keep their defaults', () => {
    const { template } = quickStart({
      fanOut: FanOut.queue({ segments: 4 }),
      handlers: {
        authorizer: { memorySize: 1024, reservedConcurrency: 100 },
        message: { memorySize: 2048 },
        fanOutWorker: { reservedConcurrency: 4 },
      },
    });
    const fn = (prefix: string) => template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)].Properties;
    expect(fn('ChatAuthorizer')).toMatchObject({ MemorySize: 1024, ReservedConcurrentExecutions: 100 });
    expect(fn('ChatMessageHandler').MemorySize).toBe(2048);
    expect(fn('ChatMessageHandler').ReservedConcurrentExecutions).toBeUndefined();
    expect(fn('ChatFanOutWorker')).toMatchObject({ MemorySize: 512, ReservedConcurrentExecutions: 4 });
    expect(fn('ChatConnectionHandler').MemorySize).toBe(256);
    expect(fn('ChatPublisher').MemorySize).toBe(512);
  });

  test('handlers set a function\'s timeout, extra environment and VPC, as NodejsFunction users expect', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
    const sg = new ec2.SecurityGroup(stack, 'PublisherSg', { vpc });
    new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')),
      fanOut: FanOut.queue(),
      handlers: {
        publisher: {
          timeout: Duration.seconds(90),
          environment: { NODE_OPTIONS: '--enable-source-maps' },
          vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          securityGroups: [sg],
        },
        fanOutWorker: { timeout: Duration.minutes(5) },
      },
    });
    const template = Template.fromStack(stack);
    const fn = (prefix: string) => template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)].Properties;
    expect(fn('ChatPublisher').Timeout).toBe(90);
    expect(fn('ChatPublisher').Environment.Variables).toMatchObject({ NODE_OPTIONS: '--enable-source-maps', CONNECTIONS_TABLE_NAME: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'ChatConnections') } });
    expect(fn('ChatPublisher').VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [logicalId(template, 'AWS::EC2::SecurityGroup', 'PublisherSg'), 'GroupId'] }]);
    expect(fn('ChatPublisher').VpcConfig.SubnetIds).toHaveLength(2);
    expect(fn('ChatMessageHandler').Timeout).toBe(30);
    expect(fn('ChatMessageHandler').VpcConfig).toBeUndefined();
    expect(fn('ChatFanOutWorker').Timeout).toBe(300);
    // The queue keeps a task invisible for six times the worker's timeout.
    template.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 1800 });
  });

  test('routeThrottle sets route settings over the stage throttle, once the routes exist', () => {
    const stack = newStack();
    const orders = new lambda.Function(stack, 'Orders', {
      runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
    });
    new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')),
      throttle: { rateLimit: 500, burstLimit: 1000 },
      routes: { orders: RouteTarget.function(orders) },
      routeThrottle: { $connect: { rateLimit: 50, burstLimit: 100 }, orders: { rateLimit: 5 } },
    });
    const template = Template.fromStack(stack);
    const stage = template.findResources('AWS::ApiGatewayV2::Stage')[logicalId(template, 'AWS::ApiGatewayV2::Stage', 'ChatStage')];
    expect(stage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 });
    expect(stage.Properties.RouteSettings).toEqual({
      $connect: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      orders: { ThrottlingRateLimit: 5 },
    });
    const routeId = (key: string) => Object.entries(template.findResources('AWS::ApiGatewayV2::Route')).find(([, r]: any) => r.Properties.RouteKey === key)![0];
    expect(stage.DependsOn).toEqual(expect.arrayContaining([routeId('$connect'), routeId('orders')]));
  });
});

describe('invalid operational options throw with what to change', () => {
  const build = (props: Parameters<typeof quickStart>[0]) => () => quickStart(props);
  test.each<[string, Parameters<typeof quickStart>[0], RegExp]>([
    ['a route throttle of a route the API lacks', { routeThrottle: { orders: { rateLimit: 1 } } }, /routeThrottle names route 'orders', which the API does not have; use \$connect, \$disconnect, \$default or add the route to routes/],
    ['a negative route rate limit', { routeThrottle: { $default: { rateLimit: -5 } } }, /routeThrottle\['\$default'\]\.rateLimit is -5/],
    ['a fractional route burst limit', { routeThrottle: { $connect: { burstLimit: 0.5 } } }, /routeThrottle\['\$connect'\]\.burstLimit is 0\.5; use a whole number/],
    ['a SNAPSHOT removal policy', { removalPolicy: RemovalPolicy.SNAPSHOT }, /removalPolicy SNAPSHOT is not supported by DynamoDB tables; use RemovalPolicy\.DESTROY/],
    ['100 MB of memory', { handlers: { message: { memorySize: 100 } } }, /handlers\.message\.memorySize is 100; use a whole number of MB from 128 to 10240/],
    ['a reserved concurrency of 0', { handlers: { authorizer: { reservedConcurrency: 0 } } }, /handlers\.authorizer\.reservedConcurrency is 0; use a whole number of 1 or more \(0 would stop the function\)/],
    ['a timeout past 15 minutes', { handlers: { publisher: { timeout: Duration.minutes(20) } } }, /handlers\.publisher\.timeout is 1200 seconds; Lambda allows 1 second to 15 minutes/],
    ['an environment variable the construct sets', { handlers: { message: { environment: { CALLBACK_URL: 'x' } } } }, /handlers\.message\.environment sets CALLBACK_URL, which the construct sets itself/],
    ['an environment variable Lambda reserves', { handlers: { message: { environment: { AWS_REGION: 'x' } } } }, /handlers\.message\.environment sets AWS_REGION, which Lambda reserves/],
    ['fan-out worker options with inline fan-out', { handlers: { fanOutWorker: { memorySize: 1024 } } }, /handlers\.fanOutWorker applies to queued fan-out only; use fanOut: FanOut\.queue\(\)/],
    ['fewer reserved workers than the queue runs', { fanOut: FanOut.queue({ segments: 8, maxWorkers: 8 }), handlers: { fanOutWorker: { reservedConcurrency: 4 } } }, /handlers\.fanOutWorker\.reservedConcurrency is 4, below the 8 workers the queue runs at once.*reserve at least 8/],
  ])('%s', (_name, props, message) => {
    expect(build(props)).toThrow(message);
  });
});

describe('routes', () => {
  function withRoutes(routes: (stack: ReturnType<typeof newStack>) => Record<string, RouteTarget>) {
    const stack = newStack();
    const secret = new secretsmanager.Secret(stack, 'JwtSecret');
    const api = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(secret), routes: routes(stack) });
    return { stack, api, template: Template.fromStack(stack) };
  }
  const userFunction = (stack: ReturnType<typeof newStack>, id = 'Orders') => new lambda.Function(stack, id, {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
  });

  /** The resource ARNs of the ManageConnections statements, with the API's logical id as <Api>. */
  const connectionsResources = (template: Template, statements: Array<Record<string, any>>): string[] => {
    const apiId = logicalId(template, 'AWS::ApiGatewayV2::Api', 'ChatApi');
    return statements.filter((s) => s.Action === 'execute-api:ManageConnections')
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]))
      .map((r) => JSON.stringify(r).replace(new RegExp(apiId, 'g'), '<Api>'));
  };

  test('a function target gets a route, the callback URL and a post-only grant by default: no registry, no closing', () => {
    const { template } = withRoutes((stack) => ({ orders: RouteTarget.function(userFunction(stack)) }));
    const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).find((r: any) => r.Properties.RouteKey === 'orders') as any;
    expect(route).toBeDefined();
    expect(route.Properties.RouteResponseSelectionExpression).toBeUndefined();
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'Orders'), 'Arn'] }])]) }),
    });
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'Orders')];
    expect(Object.keys(fn.Properties.Environment.Variables)).toEqual(['CALLBACK_URL']);
    const statements = statementsOf(template, 'Orders');
    expect(actionsOf(statements)).toEqual(['execute-api:ManageConnections']);
    const resources = connectionsResources(template, statements);
    expect(resources).toHaveLength(1);
    expect(resources[0]).toContain('<Api>');
    expect(resources[0]).toContain('/dev/POST/@connections/*');
  });

  test('readConnections opts in to the registry; postToConnections: false drops the @connections grant', () => {
    const { template } = withRoutes((stack) => ({
      orders: RouteTarget.function(userFunction(stack), { readConnections: true, postToConnections: false }),
    }));
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'Orders')];
    expect(fn.Properties.Environment.Variables).toEqual({
      CONNECTIONS_TABLE_NAME: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'ChatConnections') },
      CONNECTIONS_USER_INDEX_NAME: 'byUser',
    });
    expect(actionsOf(statementsOf(template, 'Orders'))).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan']);
  });

  test('a function of another stack gets its route there: both stacks synthesize, the function\'s depends on the API\'s', () => {
    const app = new App();
    const apiStack = new Stack(app, 'ApiStack', { env: { account: '111111111111', region: 'eu-west-1' } });
    const routeStack = new Stack(app, 'RouteStack', { env: { account: '111111111111', region: 'eu-west-1' } });
    const orders = new lambda.Function(routeStack, 'Orders', {
      runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
    });
    new AuthenticatedWebSocketApi(apiStack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(apiStack, 'S')),
      routes: { orders: RouteTarget.function(orders, { returnResponse: true }) },
    });
    const assembly = app.synth();
    expect(routeStack.dependencies).toEqual([apiStack]);
    expect(apiStack.dependencies).toEqual([]);
    const routeTemplate = Template.fromJSON(assembly.getStackByName('RouteStack').template);
    routeTemplate.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'orders', RouteResponseSelectionExpression: '$default' });
    routeTemplate.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    routeTemplate.resourceCountIs('AWS::Lambda::Permission', 1);
    expect(actionsOf(statementsOf(routeTemplate, 'Orders'))).toEqual(['execute-api:ManageConnections']);
    const apiTemplate = Template.fromJSON(assembly.getStackByName('ApiStack').template);
    expect(Object.values(apiTemplate.findResources('AWS::ApiGatewayV2::Route')).map((r: any) => r.Properties.RouteKey).sort())
      .toEqual(['$connect', '$default', '$disconnect']);
  });

  test('a throttled route whose function lives in another stack throws with what to change', () => {
    const app = new App();
    const apiStack = new Stack(app, 'ApiStack');
    const routeStack = new Stack(app, 'RouteStack');
    const orders = new lambda.Function(routeStack, 'Orders', {
      runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
    });
    expect(() => new AuthenticatedWebSocketApi(apiStack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(apiStack, 'S')),
      routes: { orders: RouteTarget.function(orders) },
      routeThrottle: { orders: { rateLimit: 5 } },
    })).toThrow(/routeThrottle names route 'orders', whose function lives in stack 'RouteStack'.*Drop routeThrottle\['orders'\]/);
  });

  test('any WebSocket integration can serve a route: SQS through WebSocketAwsIntegration, or a mock', () => {
    const { template } = withRoutes((stack) => {
      const role = new iam.Role(stack, 'SqsRole', { assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com') });
      return {
        enqueue: RouteTarget.integration(new integrations.WebSocketAwsIntegration('Enqueue', {
          integrationUri: 'arn:aws:apigateway:eu-west-1:sqs:path/111111111111/orders',
          integrationMethod: 'POST',
          credentialsRole: role,
          requestTemplates: { $default: 'Action=SendMessage&MessageBody=$input.body' },
          templateSelectionExpression: '\\$default',
        })),
        echo: RouteTarget.integration(new integrations.WebSocketMockIntegration('Echo'), { returnResponse: true }),
      };
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS',
      IntegrationUri: 'arn:aws:apigateway:eu-west-1:sqs:path/111111111111/orders',
      RequestTemplates: { $default: 'Action=SendMessage&MessageBody=$input.body' },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'MOCK' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'echo', RouteResponseSelectionExpression: '$default' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'enqueue' });
  });

  test('returnResponse sends the function\'s answer back to the client', () => {
    const { template } = withRoutes((stack) => ({ orders: RouteTarget.function(userFunction(stack), { returnResponse: true }) }));
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'orders', RouteResponseSelectionExpression: '$default' });
    template.hasResourceProperties('AWS::ApiGatewayV2::RouteResponse', { RouteResponseKey: '$default' });
  });

  test('an imported function is wired with a warning that it gets no environment or grants', () => {
    const { stack } = withRoutes((s) => ({ orders: RouteTarget.function(lambda.Function.fromFunctionArn(s, 'Imported', 'arn:aws:lambda:eu-west-1:111111111111:function:orders')) }));
    Annotations.fromStack(stack).hasWarning('/TestStack/Chat', Match.stringLikeRegexp("Route 'orders' targets a function this app did not define.*set them on the function"));
  });

  test('an HTTP target renders the default template with connection id, event type, route key, user id and body', () => {
    const { template } = withRoutes(() => ({ legacy: RouteTarget.http('https://backend.example/ws') }));
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'HTTP',
      IntegrationUri: 'https://backend.example/ws',
      IntegrationMethod: 'POST',
      TimeoutInMillis: 29000,
      TemplateSelectionExpression: '\\$default',
      RequestTemplates: { $default: RouteTarget.HTTP_DEFAULT_TEMPLATE },
    });
    for (const part of ['$context.connectionId', '$context.eventType', '$context.routeKey', '$context.authorizer.userId', '$input.body']) {
      expect(RouteTarget.HTTP_DEFAULT_TEMPLATE).toContain(part);
    }
    // Rendered with sample values (as `authws local` renders it), the template is the JSON a backend parses.
    const rendered = renderTemplate(RouteTarget.HTTP_DEFAULT_TEMPLATE, {
      body: '{"action":"legacy","n":1}',
      requestContext: { connectionId: 'x', eventType: 'x', routeKey: 'x', requestId: 'x', authorizer: { userId: 'x' } },
      stageVariables: {},
    });
    expect(JSON.parse(rendered)).toEqual({ connectionId: 'x', eventType: 'x', routeKey: 'x', requestId: 'x', userId: 'x', body: { action: 'legacy', n: 1 } });
  });

  test('an HTTP target takes a template, method and timeout of its own', () => {
    const { template } = withRoutes(() => ({
      legacy: RouteTarget.http('https://backend.example/ws', { template: '{"who":"$context.authorizer.userId"}', method: 'PUT', timeout: Duration.seconds(5) }),
    }));
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'HTTP',
      IntegrationMethod: 'PUT',
      TimeoutInMillis: 5000,
      RequestTemplates: { $default: '{"who":"$context.authorizer.userId"}' },
    });
  });

  test('an HTTP proxy target forwards the body and tells the backend who sent it in headers', () => {
    const { template } = withRoutes(() => ({ legacy: RouteTarget.http('https://backend.example/ws', { proxy: true }) }));
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'HTTP_PROXY',
      IntegrationUri: 'https://backend.example/ws',
      RequestParameters: {
        'integration.request.header.x-authws-connection-id': 'context.connectionId',
        'integration.request.header.x-authws-user-id': 'context.authorizer.userId',
      },
      RequestTemplates: Match.absent(),
    });
  });

  test('several routes live side by side', () => {
    const { template } = withRoutes((stack) => ({
      orders: RouteTarget.function(userFunction(stack)),
      stock: RouteTarget.function(userFunction(stack, 'Stock')),
      legacy: RouteTarget.http('http://backend.example'),
    }));
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 6);
  });
});

describe('grants', () => {
  test('grantManageConnections scopes execute-api:ManageConnections to this API\'s stage', () => {
    const { stack, api } = quickStart();
    const role = new iam.Role(stack, 'Backend', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    api.grantManageConnections(role);
    const template = Template.fromStack(stack);
    const apiId = logicalId(template, 'AWS::ApiGatewayV2::Api', 'ChatApi');
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalId(template, 'AWS::IAM::Role', 'Backend') }],
      PolicyDocument: {
        Statement: [{
          Action: 'execute-api:ManageConnections',
          Effect: 'Allow',
          Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:eu-west-1:111111111111:', { Ref: apiId }, '/dev/*/@connections/*']] },
        }],
      },
    });
  });

  test('grantReadConnections lets a principal read the registry and its index, not write it', () => {
    const { stack, api } = quickStart();
    const role = new iam.Role(stack, 'Backend', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    api.grantReadConnections(role);
    const template = Template.fromStack(stack);
    const tableId = logicalId(template, 'AWS::DynamoDB::Table', 'ChatConnections');
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalId(template, 'AWS::IAM::Role', 'Backend') }],
      PolicyDocument: {
        Statement: [{
          Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'],
          Effect: 'Allow',
          // The byUser index only: no `index/*` wildcard (cdk-nag AwsSolutions-IAM5).
          Resource: [{ 'Fn::GetAtt': [tableId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/byUser']] }],
        }],
      },
    });
  });
});

describe('invalid props throw at synth with what to change', () => {
  const secretIn = (stack: ReturnType<typeof newStack>) => new secretsmanager.Secret(stack, 'S');
  test.each<[string, (stack: ReturnType<typeof newStack>) => void, RegExp]>([
    ['a route key starting with $', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routes: { $orders: RouteTarget.http('https://x.example') } }), /route key '\$orders' starts with '\$'.*name custom routes without '\$' \(for example 'orders'\)/],
    ['$default as a custom route', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routes: { $default: RouteTarget.http('https://x.example') } }), /route key '\$default' starts with '\$'/],
    ['an empty route key', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routes: { '': RouteTarget.http('https://x.example') } }), /a route key is empty/],
    ['a route key over 128 characters', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routes: { ['r'.repeat(129)]: RouteTarget.http('https://x.example') } }), /is 129 characters; use at most 128/],
    ['more routes than API Gateway allows', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routes: Object.fromEntries(Array.from({ length: 298 }, (_, i) => [`r${i}`, RouteTarget.http('https://x.example')])) }), /298 routes given; API Gateway allows 297/],
    ['an empty stage name', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), stageName: '' }), /stageName '' is not valid; use 1 to 128 letters, digits, '-' or '_'/],
    ['a stage name with a slash', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), stageName: 'v1/dev' }), /stageName 'v1\/dev' is not valid/],
    ['a route selection expression not starting with $request.', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routeSelectionExpression: 'action' }), /routeSelectionExpression 'action' is not valid; use '\$request\.body\.<field>'/],
    ['a route selection expression on a header', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), routeSelectionExpression: '$request.header.x' }), /routeSelectionExpression '\$request\.header\.x' is not valid/],
    ['a negative rate limit', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), throttle: { rateLimit: -1 } }), /throttle\.rateLimit is -1; use a number of requests per second of 0 or more/],
    ['a fractional burst limit', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), throttle: { burstLimit: 1.5 } }), /throttle\.burstLimit is 1\.5; use a whole number/],
    ['a fan-out concurrency of 0', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s)), fanOut: FanOut.inline({ concurrency: 0 }) }), /FanOut\.inline: concurrency is 0; use a whole number from 1 to 1000/],
    ['an RSA algorithm for an HMAC secret', (s) => WebSocketAuth.hmacSecret(secretIn(s), { algorithms: ['RS256'] }), /'RS256' is not an HMAC algorithm; use HS256, HS384 or HS512/],
    ['no algorithm at all', (s) => WebSocketAuth.hmacSecret(secretIn(s), { algorithms: [] }), /`algorithms` is empty/],
    ['a context claim the context already uses', (s) => WebSocketAuth.hmacSecret(secretIn(s), { contextClaims: ['userId'] }), /context claim 'userId' collides/],
    ['an empty user id claim', (s) => WebSocketAuth.hmacSecret(secretIn(s), { userIdClaim: '' }), /`userIdClaim` is empty/],
    ['a clock tolerance over 5 minutes', (s) => new AuthenticatedWebSocketApi(s, 'A', { auth: WebSocketAuth.hmacSecret(secretIn(s), { clockTolerance: Duration.minutes(10) }) }), /`clockTolerance` is 600 seconds; use between 0 and 300/],
    ['a header name with a space', () => TokenLocation.header('X Token'), /TokenLocation\.header\('X Token'\): a header name/],
    ['a query parameter name with &', () => TokenLocation.queryString('a&b'), /TokenLocation\.queryString\('a&b'\)/],
    ['an HTTP target that is not a URL', () => RouteTarget.http('backend.example'), /RouteTarget\.http\('backend\.example'\): the URL must start with https:\/\/ or http:\/\//],
    ['an HTTP target with both proxy and template', () => RouteTarget.http('https://x.example', { proxy: true, template: '{}' }), /`template` has no effect with `proxy: true`/],
    ['an HTTP timeout over 29 s', () => RouteTarget.http('https://x.example', { timeout: Duration.seconds(30) }), /`timeout` is 30000 ms; API Gateway allows 50 ms to 29 seconds/],
  ])('%s', (_name, build, message) => {
    expect(() => build(newStack())).toThrow(message);
  });
});

describe('snapshots (asset hashes masked)', () => {
  test('the quick start', () => {
    expect(quickStart().template.toJSON()).toMatchSnapshot();
  });

  test('fully configured', () => {
    expect(fullyConfigured().template.toJSON()).toMatchSnapshot();
  });
});
