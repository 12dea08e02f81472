import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AuthenticatedWebSocketApi, FanOut, WebSocketAuth } from '../src';
import { allStatementsOf, logicalId, newStack, quickStart } from './support/stacks';
import { HandlerMetrics, ObservabilityEnv } from '../src/runtime/environment';

const BUNDLED = ['ChatAuthorizer', 'ChatConnectionHandler', 'ChatMessageHandler', 'ChatExpirySweeper', 'ChatPublisher'];

describe('access logs', () => {
  test('are on by default: one JSON line per request into a log group kept a month', () => {
    const { template } = quickStart();
    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as any;
    const settings = stage.Properties.AccessLogSettings;
    expect(settings.DestinationArn).toEqual({ 'Fn::GetAtt': [logicalId(template, 'AWS::Logs::LogGroup', 'ChatAccessLogs'), 'Arn'] });
    expect(JSON.parse(settings.Format)).toEqual({
      requestId: '$context.requestId',
      requestTime: '$context.requestTime',
      requestTimeEpoch: '$context.requestTimeEpoch',
      connectionId: '$context.connectionId',
      routeKey: '$context.routeKey',
      eventType: '$context.eventType',
      status: '$context.status',
      integrationStatus: '$context.integrationStatus',
      integrationLatency: '$context.integrationLatency',
      errorMessage: '$context.error.message',
      integrationError: '$context.integration.error',
      authorizerError: '$context.authorizer.error',
      userId: '$context.authorizer.principalId',
      sourceIp: '$context.identity.sourceIp',
    });
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Retain',
    });
  });

  test('accessLogs: false leaves them out', () => {
    const { template, api } = quickStart({ accessLogs: false });
    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as any;
    expect(stage.Properties.AccessLogSettings).toBeUndefined();
    expect(api.accessLogGroup).toBeUndefined();
  });

  test('no account-level role by default: it is one per account and region', () => {
    const { template } = quickStart();
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('cloudWatchRole: true creates the account setting and its role, retained, before the stage', () => {
    const { template } = quickStart({ cloudWatchRole: true });
    const roleId = logicalId(template, 'AWS::IAM::Role', 'ChatCloudWatchRole');
    const accountId = logicalId(template, 'AWS::ApiGateway::Account', 'ChatAccount');
    template.hasResourceProperties('AWS::ApiGateway::Account', { CloudWatchRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } });
    template.hasResource('AWS::IAM::Role', {
      Properties: {
        AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] },
        ManagedPolicyArns: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs']] }],
      },
      DeletionPolicy: 'Retain',
    });
    const stage = template.findResources('AWS::ApiGatewayV2::Stage')[logicalId(template, 'AWS::ApiGatewayV2::Stage', 'ChatStage')];
    expect(stage.DependsOn).toContain(accountId);
  });
});

describe('function logs', () => {
  const { template } = quickStart({ logRetention: logs.RetentionDays.ONE_WEEK });

  test.each(BUNDLED)('%s logs to a log group of its own, kept as logRetention says', (prefix) => {
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
    const logGroupId = fn.Properties.LoggingConfig.LogGroup.Ref;
    expect(logGroupId).toMatch(new RegExp(`^${prefix}Logs`));
    expect(template.findResources('AWS::Logs::LogGroup')[logGroupId].Properties.RetentionInDays).toBe(7);
  });

  test.each(BUNDLED)('%s has a role of its own with no managed policy, writing its own log group only', (prefix) => {
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
    const role = template.findResources('AWS::IAM::Role')[fn.Properties.Role['Fn::GetAtt'][0]];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const logWrites = allStatementsOf(template, prefix).filter((s) => JSON.stringify(s.Action).includes('logs:'));
    expect(logWrites).toEqual([{
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Effect: 'Allow',
      Resource: { 'Fn::GetAtt': [fn.Properties.LoggingConfig.LogGroup.Ref, 'Arn'] },
    }]);
  });

  test('the access logs follow logRetention too', () => {
    const accessLogs = template.findResources('AWS::Logs::LogGroup')[logicalId(template, 'AWS::Logs::LogGroup', 'ChatAccessLogs')];
    expect(accessLogs.Properties.RetentionInDays).toBe(7);
  });
});

describe('metrics', () => {
  const { stack, api, template } = quickStart({ fanOut: FanOut.queue() });
  const apiRef = () => ({ Ref: logicalId(template, 'AWS::ApiGatewayV2::Api', 'ChatApi') });

  test('every bundled function knows the API id, the dimension of the handler metrics', () => {
    for (const prefix of [...BUNDLED, 'ChatFanOutWorker']) {
      const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
      expect(fn.Properties.Environment.Variables[ObservabilityEnv.API_ID]).toEqual(apiRef());
    }
  });

  test.each([
    ['metricConnectCount', 'ConnectCount', 'Sum'],
    ['metricMessageCount', 'MessageCount', 'Sum'],
    ['metricClientError', 'ClientError', 'Sum'],
    ['metricExecutionError', 'ExecutionError', 'Sum'],
    ['metricIntegrationError', 'IntegrationError', 'Sum'],
    ['metricIntegrationLatency', 'IntegrationLatency', 'Average'],
  ] as const)('%s reads AWS/ApiGateway %s of this API and stage', (method, metricName, statistic) => {
    const metric = api[method]();
    expect(metric.namespace).toBe('AWS/ApiGateway');
    expect(metric.metricName).toBe(metricName);
    expect(metric.statistic).toBe(statistic);
    expect(metric.period.toMinutes()).toBe(5);
    expect(stack.resolve(metric.dimensions)).toEqual({ ApiId: apiRef(), Stage: 'dev' });
  });

  test.each([
    ['metricDelivered', HandlerMetrics.DELIVERED],
    ['metricGone', HandlerMetrics.GONE],
    ['metricFailed', HandlerMetrics.FAILED],
    ['metricThrottled', HandlerMetrics.THROTTLED],
    ['metricRetried', HandlerMetrics.RETRIED],
    ['metricAuthDenied', HandlerMetrics.AUTH_DENIED],
  ] as const)('%s reads the handlers\' %s of this API', (method, metricName) => {
    const metric = api[method]();
    expect(metric.namespace).toBe(HandlerMetrics.NAMESPACE);
    expect(metric.metricName).toBe(metricName);
    expect(metric.statistic).toBe('Sum');
    expect(stack.resolve(metric.dimensions)).toEqual({ [HandlerMetrics.API_DIMENSION]: apiRef() });
  });

  test('metric options override the defaults', () => {
    const metric = api.metricIntegrationLatency({ statistic: 'p99', period: Duration.minutes(1) });
    expect(metric.statistic).toBe('p99');
    expect(metric.period.toMinutes()).toBe(1);
  });
});

describe('alarms', () => {
  test('none by default', () => {
    const { template, api } = quickStart();
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    expect(api.alarms).toEqual([]);
  });

  test('alarms: {} raises on execution errors, integration errors, failed deliveries and refused connects, quiet without data', () => {
    const { template, api } = quickStart({ alarms: {} });
    expect(api.alarms).toHaveLength(4);
    for (const [metricName, namespace, threshold] of [
      ['ExecutionError', 'AWS/ApiGateway', 1],
      ['IntegrationError', 'AWS/ApiGateway', 5],
      ['Failed', HandlerMetrics.NAMESPACE, 10],
      ['AuthDenied', HandlerMetrics.NAMESPACE, 100],
    ] as const) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName,
        Namespace: namespace,
        Statistic: 'Sum',
        Period: 300,
        Threshold: threshold,
        EvaluationPeriods: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: Match.absent(),
      });
    }
  });

  test('thresholds, period and a topic for alarm and OK actions', () => {
    const stack = newStack();
    const topic = new sns.Topic(stack, 'Alerts');
    new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret')),
      alarms: {
        topic,
        period: Duration.minutes(1),
        executionErrorThreshold: 2,
        integrationErrorThreshold: 10,
        failedDeliveryThreshold: 50,
        authDeniedThreshold: 500,
      },
    });
    const template = Template.fromStack(stack);
    const topicRef = { Ref: logicalId(template, 'AWS::SNS::Topic', 'Alerts') };
    for (const [metricName, threshold] of [['ExecutionError', 2], ['IntegrationError', 10], ['Failed', 50], ['AuthDenied', 500]] as const) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName, Threshold: threshold, Period: 60, AlarmActions: [topicRef], OKActions: [topicRef],
      });
    }
  });
});

describe('dashboard', () => {
  test('none by default', () => {
    quickStart().template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });

  test('dashboard: true charts connections, messages, errors, latency, fan-out and refusals', () => {
    const { template, api } = quickStart({ dashboard: true });
    expect(api.dashboard).toBeDefined();
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]);
    for (const title of ['Connections and messages', 'Errors', 'Integration latency (ms)', 'Fan-out', 'Refused connections']) {
      expect(body).toContain(title);
    }
    for (const metricName of ['ConnectCount', 'MessageCount', 'ClientError', 'ExecutionError', 'IntegrationError', 'IntegrationLatency',
      'Delivered', 'Gone', 'Failed', 'Throttled', 'Retried', 'AuthDenied']) {
      expect(body).toContain(`\\"${metricName}\\"`);
    }
    expect(body).toContain('p99');
  });
});

describe('tracing', () => {
  test('off by default', () => {
    const { template } = quickStart();
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function')) as any[]) {
      expect(fn.Properties.TracingConfig).toBeUndefined();
    }
  });

  test('tracing: true turns on active tracing of every bundled function, with the X-Ray grant', () => {
    const { template } = quickStart({ tracing: true });
    for (const prefix of BUNDLED) {
      const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(allStatementsOf(template, prefix)).toContainEqual({
        Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Effect: 'Allow', Resource: '*',
      });
    }
  });
});

describe('invalid observability options throw with what to change', () => {
  test.each<[string, Parameters<typeof quickStart>[0], RegExp]>([
    ['cloudWatchRole without access logs', { cloudWatchRole: true, accessLogs: false }, /cloudWatchRole is true but accessLogs is false; the role only serves the access logs/],
    ['a threshold of 0', { alarms: { executionErrorThreshold: 0 } }, /alarms\.executionErrorThreshold is 0; use a whole number of 1 or more/],
    ['a fractional threshold', { alarms: { authDeniedThreshold: 2.5 } }, /alarms\.authDeniedThreshold is 2\.5/],
    ['an alarm period in seconds', { alarms: { period: Duration.seconds(90) } }, /alarms\.period is 90 seconds; use whole minutes/],
  ])('%s', (_name, props, message) => {
    expect(() => quickStart(props)).toThrow(message);
  });
});
