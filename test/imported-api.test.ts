import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, IAuthenticatedWebSocketApi, WebSocketAuth } from '../src';
import { newStack, statementsOf } from './support/stacks';

/**
 * `AuthenticatedWebSocketApi.fromAttributes`: a backend of another stack or app grants itself what
 * it needs of an API it did not define, reads its URLs, and alarms on its metrics.
 */
const PUBLISHER_ARN = 'arn:aws:lambda:eu-west-1:111111111111:function:chat-publisher';
const importIn = (stack: Stack, publisherFunctionArn: string | undefined = PUBLISHER_ARN) =>
  AuthenticatedWebSocketApi.fromAttributes(stack, 'Chat', { webSocketApiId: 'abc123', stageName: 'prod', publisherFunctionArn });
const backendFunction = (stack: Stack) => new lambda.Function(stack, 'Backend', {
  runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})'),
});

test('url and callbackUrl are built from the API id, the stage and the stack\'s region', () => {
  const stack = newStack();
  const chat = importIn(stack);
  expect(stack.resolve(chat.url)).toEqual({ 'Fn::Join': ['', ['wss://abc123.execute-api.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/prod']] });
  expect(stack.resolve(chat.callbackUrl)).toEqual({ 'Fn::Join': ['', ['https://abc123.execute-api.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/prod']] });
});

test('grantSend lets a function invoke the publisher, and tells the publish helper its name', () => {
  const stack = newStack();
  const backend = backendFunction(stack);
  importIn(stack).grantSend(backend);
  const template = Template.fromStack(stack);
  expect(statementsOf(template, 'Backend')).toEqual([{
    Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [PUBLISHER_ARN, `${PUBLISHER_ARN}:*`],
  }]);
  template.hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: { CONNECTIONS_PUBLISHER_FUNCTION_NAME: 'chat-publisher' } },
  });
});

test('grantPostToConnections and grantManageConnections are scoped to the imported API\'s stage', () => {
  const stack = newStack();
  const chat = importIn(stack);
  const poster = new iam.Role(stack, 'Poster', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  const manager = new iam.Role(stack, 'Manager', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  chat.grantPostToConnections(poster);
  chat.grantManageConnections(manager);
  const resources = (role: string) => Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref.startsWith(role)))
    .flatMap((p: any) => p.Properties.PolicyDocument.Statement.map((s: any) => stack.resolve(s.Resource)));
  const arn = (method: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:execute-api:eu-west-1:111111111111:abc123/prod/${method}/@connections/*`]] });
  expect(resources('Poster')).toEqual([arn('POST')]);
  expect(resources('Manager')).toEqual([arn('*')]);
});

test('its metrics name the imported API and stage, so an alarm can watch them', () => {
  const stack = newStack();
  const chat = importIn(stack);
  new cloudwatch.Alarm(stack, 'Failures', { metric: chat.metricFailed(), threshold: 1, evaluationPeriods: 1 });
  new cloudwatch.Alarm(stack, 'Errors', { metric: chat.metricExecutionError(), threshold: 1, evaluationPeriods: 1 });
  const template = Template.fromStack(stack);
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: 'AuthenticatedWebSocketApi', MetricName: 'Failed', Dimensions: [{ Name: 'ApiId', Value: 'abc123' }],
  });
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    Namespace: 'AWS/ApiGateway',
    MetricName: 'ExecutionError',
    Dimensions: [{ Name: 'ApiId', Value: 'abc123' }, { Name: 'Stage', Value: 'prod' }],
  });
});

test('grantSend without publisherFunctionArn throws with what to pass', () => {
  const stack = newStack();
  const chat = AuthenticatedWebSocketApi.fromAttributes(stack, 'Chat', { webSocketApiId: 'abc123', stageName: 'prod' });
  expect(() => chat.grantSend(backendFunction(stack)))
    .toThrow(/imported without publisherFunctionArn, so grantSend has no function to grant; pass the API's publisherFunction\.functionArn/);
});

test('empty attributes throw with what to pass', () => {
  const stack = newStack();
  expect(() => AuthenticatedWebSocketApi.fromAttributes(stack, 'A', { webSocketApiId: '', stageName: 'dev' })).toThrow(/webSocketApiId is empty/);
  expect(() => AuthenticatedWebSocketApi.fromAttributes(stack, 'B', { webSocketApiId: 'abc', stageName: '' })).toThrow(/stageName is empty/);
});

test('a backend stack works the same with the API itself or its import: both are IAuthenticatedWebSocketApi', () => {
  const app = new App();
  const env = { account: '111111111111', region: 'eu-west-1' };
  const apiStack = new Stack(app, 'ApiStack', { env });
  const api = new AuthenticatedWebSocketApi(apiStack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(apiStack, 'S')) });
  class BackendStack extends Stack {
    constructor(scope: App, id: string, chat: IAuthenticatedWebSocketApi) {
      super(scope, id, { env });
      chat.grantSend(backendFunction(this));
    }
  }
  const direct = new BackendStack(app, 'Direct', api);
  const viaImport = new BackendStack(app, 'ViaImport', AuthenticatedWebSocketApi.fromAttributes(apiStack, 'Imported', {
    webSocketApiId: api.webSocketApiId, stageName: api.stageName, publisherFunctionArn: api.publisherFunction.functionArn,
  }));
  app.synth();
  expect(direct.dependencies).toEqual([apiStack]);
  expect(viaImport.dependencies).toEqual([apiStack]);
  for (const stack of [direct, viaImport]) {
    expect(statementsOf(Template.fromStack(stack), 'Backend').map((s) => s.Action)).toEqual(['lambda:InvokeFunction']);
  }
});
