import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, AuthenticatedWebSocketApiProps, HmacSecretAuthOptions, WebSocketAuth } from '../../src';

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

/** The logical id of the one resource of `type` whose logical id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/** Every IAM statement attached to the role of the function whose logical id starts with `prefix`. */
export function statementsOf(template: Template, functionPrefix: string): Array<Record<string, any>> {
  const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', functionPrefix)];
  const role = fn.Properties.Role['Fn::GetAtt'][0];
  const policies = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === role));
  return policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}
