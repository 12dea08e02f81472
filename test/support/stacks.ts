import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  AuthenticatedWebSocketApi, AuthenticatedWebSocketApiProps, FanOut, HmacSecretAuthOptions, RouteTarget, TokenLocation, WebSocketAuth,
} from '../../src';

/** A stack in a fixed account and region, so ARNs in assertions are literal. */
export function newStack(): Stack {
  return new Stack(new App(), 'TestStack', { env: { account: '111111111111', region: 'eu-west-1' } });
}

/** The quick start: an API authenticated by an HMAC secret, with the given extra props. */
export function quickStart(
  props: Partial<AuthenticatedWebSocketApiProps> = {},
  authOptions: HmacSecretAuthOptions = {},
): { stack: Stack; api: AuthenticatedWebSocketApi; secret: secretsmanager.Secret; template: Template } {
  const stack = newStack();
  const secret = new secretsmanager.Secret(stack, 'JwtSecret');
  const api = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(secret, authOptions), ...props });
  let template: Template | undefined;
  // Synthesized on first use, so a test may still add to the stack before it reads the template.
  return { stack, api, secret, get template() { return template ??= Template.fromStack(stack); } };
}

/**
 * The construct with every option set: custom routes, queue fan-out, throttling per route, access
 * logs with the account role, retention, tracing, alarms to a topic, a dashboard, a custom domain
 * with DNS records, a retained registry with backups and a customer-managed key, x86 functions
 * sized and reserved one by one. `extras` holds what the stack holds besides the API.
 */
export function fullyConfigured(): {
  stack: Stack;
  api: AuthenticatedWebSocketApi;
  template: Template;
  extras: { secret: secretsmanager.Secret; orders: lambda.Function; backend: lambda.Function; topic: sns.Topic; key: kms.Key };
} {
  const stack = newStack();
  const secret = new secretsmanager.Secret(stack, 'JwtSecret');
  const orders = new lambda.Function(stack, 'Orders', {
    runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
  });
  const backend = new lambda.Function(stack, 'Backend', {
    runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})'),
  });
  const topic = new sns.Topic(stack, 'Alerts', { enforceSSL: true });
  const key = new kms.Key(stack, 'RegistryKey', { enableKeyRotation: true });
  const api = new AuthenticatedWebSocketApi(stack, 'Chat', {
    auth: WebSocketAuth.hmacSecret(secret, { issuer: 'https://issuer.example', audience: ['chat'], contextClaims: ['email'], tokenLocation: TokenLocation.queryString() }),
    apiName: 'chat',
    stageName: 'prod',
    routeSelectionExpression: '$request.body.type',
    throttle: { rateLimit: 100, burstLimit: 200 },
    routeThrottle: { $connect: { rateLimit: 20, burstLimit: 40 }, orders: { rateLimit: 10, burstLimit: 20 } },
    fanOut: FanOut.queue({ segments: 8, concurrency: 50, maxSendRate: 4_000 }),
    routes: {
      orders: RouteTarget.function(orders, { returnResponse: true }),
      legacy: RouteTarget.http('https://backend.example/ws'),
      proxied: RouteTarget.http('https://backend.example/proxy', { proxy: true }),
    },
    accessLogs: true,
    cloudWatchRole: true,
    logRetention: logs.RetentionDays.THREE_MONTHS,
    tracing: true,
    alarms: {
      topic,
      period: Duration.minutes(1),
      executionErrorThreshold: 2,
      integrationErrorThreshold: 10,
      failedDeliveryThreshold: 50,
      authDeniedThreshold: 500,
    },
    dashboard: true,
    domain: {
      domainName: 'chat.example.com',
      certificate: acm.Certificate.fromCertificateArn(stack, 'Certificate', 'arn:aws:acm:eu-west-1:111111111111:certificate/11111111-2222-3333-4444-555555555555'),
      hostedZone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z0000000000000000000', zoneName: 'example.com' }),
      basePath: 'v1',
    },
    removalPolicy: RemovalPolicy.RETAIN,
    pointInTimeRecovery: true,
    encryptionKey: key,
    architecture: lambda.Architecture.X86_64,
    handlers: {
      authorizer: { memorySize: 512, reservedConcurrency: 50 },
      message: { memorySize: 1024 },
      fanOutWorker: { reservedConcurrency: 8 },
    },
  });
  api.grantSend(backend);
  let template: Template | undefined;
  return { stack, api, extras: { secret, orders, backend, topic, key }, get template() { return template ??= Template.fromStack(stack); } };
}

/** The logical id of the one resource of `type` whose logical id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/**
 * Every IAM statement attached to the role of the function whose logical id starts with `prefix`,
 * except the ones every bundled function has (writing its own log group; X-Ray with tracing):
 * what is left is what the function may do to the API's data. `allStatementsOf` keeps them.
 */
export function statementsOf(template: Template, functionPrefix: string): Array<Record<string, any>> {
  return allStatementsOf(template, functionPrefix).filter((s) => !isLogWrite(s) && !isXRay(s));
}

/** Every IAM statement attached to the role of the function whose logical id starts with `prefix`. */
export function allStatementsOf(template: Template, functionPrefix: string): Array<Record<string, any>> {
  const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', functionPrefix)];
  const role = fn.Properties.Role['Fn::GetAtt'][0];
  const policies = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === role));
  return policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

const isLogWrite = (s: Record<string, any>): boolean =>
  JSON.stringify(s.Action) === JSON.stringify(['logs:CreateLogStream', 'logs:PutLogEvents']);
const isXRay = (s: Record<string, any>): boolean =>
  JSON.stringify(s.Action) === JSON.stringify(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
