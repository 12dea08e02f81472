/**
 * Integration snapshot: the README's quick start, an API whose clients send a JWT signed with an
 * HMAC secret in the Authorization header.
 *
 * `npx projen integ` synthesizes this app and compares its templates with the committed snapshot
 * (test/integ.quick-start.js.snapshot/); it never deploys. `npx projen integ:update` rewrites it.
 */
import { IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, WebSocketAuth } from '../src';

// No stack traces in the snapshot's metadata: they would name this machine's paths.
const app = new App({ stackTraces: false, context: { 'aws:cdk:disable-creation-stack-traces': true } });
const stack = new Stack(app, 'AuthwsIntegQuickStart');
const secret = new secretsmanager.Secret(stack, 'JwtSecret');
const chat = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(secret) });
new CfnOutput(stack, 'Url', { value: chat.url });
new CfnOutput(stack, 'CallbackUrl', { value: chat.callbackUrl });

new IntegTest(app, 'QuickStart', {
  testCases: [stack],
  // Asset hashes are masked in the comparison (the default): a rebuilt handler bundle is not a
  // template change. Without the update workflow the snapshot keeps no asset folders either.
  diffAssets: false,
  stackUpdateWorkflow: false,
});
