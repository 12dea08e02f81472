/**
 * Integration snapshot: an API with every option set. Custom routes to a Lambda function (with a
 * response), an HTTP backend through the default mapping template and an HTTP proxy; a named
 * stage, stage throttling and a named API; tokens offered as a WebSocket subprotocol, with issuer,
 * audience, required and context claims; queue fan-out; a slower expiry sweep; a backend allowed
 * to push through the publisher.
 *
 * `npx projen integ` compares its templates with test/integ.full.js.snapshot/ and never deploys.
 */
import { IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, FanOut, RouteTarget, TokenLocation, WebSocketAuth } from '../src';

// No stack traces in the snapshot's metadata: they would name this machine's paths.
const app = new App({ stackTraces: false, context: { 'aws:cdk:disable-creation-stack-traces': true } });
const stack = new Stack(app, 'AuthwsIntegFull');

const secret = new secretsmanager.Secret(stack, 'JwtSecret');
const ordersFn = new lambda.Function(stack, 'Orders', {
  runtime: lambda.Runtime.NODEJS_22_X,
  handler: 'index.handler',
  code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "ok" });'),
});
const backendFn = new lambda.Function(stack, 'Backend', {
  runtime: lambda.Runtime.NODEJS_22_X,
  handler: 'index.handler',
  code: lambda.Code.fromInline('exports.handler = async () => ({});'),
});

const chat = new AuthenticatedWebSocketApi(stack, 'Chat', {
  apiName: 'authws-integ-full',
  stageName: 'prod',
  throttle: { rateLimit: 500, burstLimit: 1000 },
  auth: WebSocketAuth.hmacSecret(secret, {
    tokenLocation: TokenLocation.subprotocol('authws'),
    issuer: 'https://issuer.example',
    audience: ['chat'],
    algorithms: ['HS256', 'HS512'],
    clockTolerance: Duration.seconds(10),
    contextClaims: ['email', 'roles'],
    requiredClaims: { scope: 'chat:connect' },
  }),
  routes: {
    orders: RouteTarget.function(ordersFn, { returnResponse: true }),
    legacy: RouteTarget.http('https://backend.example/ws', { timeout: Duration.seconds(10) }),
    proxied: RouteTarget.http('https://backend.example/ws', { proxy: true, method: 'PUT' }),
  },
  fanOut: FanOut.queue({ segments: 8, concurrency: 50, maxSendRate: 2_000 }),
  expirySweepInterval: Duration.minutes(5),
});
chat.grantSend(backendFn);
new CfnOutput(stack, 'Url', { value: chat.url });
new CfnOutput(stack, 'CallbackUrl', { value: chat.callbackUrl });
new CfnOutput(stack, 'Publisher', { value: chat.publisherFunction.functionName });

new IntegTest(app, 'Full', {
  testCases: [stack],
  diffAssets: false,
  stackUpdateWorkflow: false,
});
