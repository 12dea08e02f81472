import { Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { AuthenticatedWebSocketApi } from '../src';
import { fullyConfigured, quickStart } from './support/stacks';

/**
 * cdk-nag's AwsSolutions pack on the construct's default and fully configured forms. The
 * construct fixes what it can; what it acknowledges is listed below, rule by rule and resource by
 * resource, so a new acknowledgement fails this test until someone reviews it here.
 */

/** The unacknowledged findings of the stack's app, synthesized first: `severity rule path`. */
function findings(stack: Stack): string[] {
  Template.fromStack(stack);
  const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack.node.root);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} ${r.constructPath}`));
}

/** The acknowledged rules under `api`, by path relative to it, each with its reason. */
function acknowledgements(api: AuthenticatedWebSocketApi): Record<string, Record<string, string>> {
  const found: Record<string, Record<string, string>> = {};
  for (const node of api.node.findAll() as IConstruct[]) {
    for (const entry of node.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      const path = node.node.path.slice(api.node.path.length + 1) || '.';
      found[path] = { ...found[path], ...ruleIds(entry.data as Record<string, string>) };
    }
  }
  return found;
}

/** The acknowledged rule ids by path, with logical ids masked (`<Id>`). */
function acknowledgedRules(api: AuthenticatedWebSocketApi): Record<string, string[]> {
  return Object.fromEntries(Object.entries(acknowledgements(api))
    .map(([path, rules]) => [path, Object.keys(rules).map(maskIds).sort()])
    .sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Logical ids in a finding (`<ChatApi1234ABCD>`, `<ChatPublisher1234.Arn>`) masked as `<Id>`. */
const maskIds = (id: string): string => id.replace(/<[A-Za-z0-9]+?([.>])/g, '<Id$1');

const IAM5_CONNECTIONS = (stage: string, method = '*') => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:eu-west-1:111111111111:<Id>/${stage}/${method}/@connections/*]`;
const XRAY = 'AwsSolutions-IAM5[Resource::*]';

describe('the default form', () => {
  const { stack, api, secret } = quickStart();
  // The test's own secret, not the construct's: rotating it is the app's business.
  Validations.of(secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: 'A test secret; the app that owns the secret decides its rotation.' });

  test('AwsSolutions reports no unacknowledged error or warning', () => {
    expect(findings(stack)).toEqual([]);
  });

  test('acknowledges exactly these findings, each on its own resource', () => {
    expect(acknowledgedRules(api)).toEqual({
      'Api/$default-Route': ['AwsSolutions-APIG4'],
      'Api/$disconnect-Route': ['AwsSolutions-APIG4'],
      'Channels/Table': ['AwsSolutions-DDB3'],
      'ConnectionHandlerRole/DefaultPolicy': [IAM5_CONNECTIONS('dev', 'POST')],
      'Connections': ['AwsSolutions-DDB3'],
      'ExpirySweeperRole/DefaultPolicy': [IAM5_CONNECTIONS('dev', 'DELETE'), IAM5_CONNECTIONS('dev', 'POST')],
      'MessageHandlerRole/DefaultPolicy': [IAM5_CONNECTIONS('dev', 'DELETE'), IAM5_CONNECTIONS('dev', 'POST')],
      'PublisherRole/DefaultPolicy': [IAM5_CONNECTIONS('dev', 'POST')],
    });
  });

  test('every acknowledgement carries its reason', () => {
    for (const rules of Object.values(acknowledgements(api))) {
      for (const reason of Object.values(rules)) expect(reason.length).toBeGreaterThan(40);
    }
    expect(acknowledgements(api)['Api/$default-Route']['AwsSolutions-APIG4']).toMatch(/authorizes a WebSocket API on \$connect only/);
    expect(acknowledgements(api).Connections['AwsSolutions-DDB3']).toMatch(/at most 2 hours.*pointInTimeRecovery: true/);
  });
});

describe('without access logs', () => {
  const { stack, api, secret } = quickStart({ accessLogs: false });
  Validations.of(secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: 'A test secret; the app that owns the secret decides its rotation.' });

  test('AwsSolutions reports no error: the stage acknowledges APIG1 with the reason', () => {
    expect(findings(stack)).toEqual([]);
    expect(acknowledgements(api).Stage['AwsSolutions-APIG1']).toMatch(/turned off on purpose \(accessLogs: false\)/);
  });
});

describe('the fully configured form', () => {
  const { stack, api, extras } = fullyConfigured();
  // The app's own resources beside the construct: their findings are the app's to settle.
  Validations.of(extras.secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: 'A test secret; the app that owns the secret decides its rotation.' });
  for (const fn of [extras.orders, extras.backend]) {
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'A test function of the app, not of the construct.',
    });
  }
  Validations.of(extras.topic).acknowledge({ id: 'AwsSolutions-SNS2', reason: 'A test topic of the app, not of the construct.' });

  test('AwsSolutions reports no unacknowledged error or warning', () => {
    expect(findings(stack)).toEqual([]);
  });

  test('acknowledges exactly these findings, each on its own resource', () => {
    expect(acknowledgedRules(api)).toEqual({
      // APIG4: routes other than $connect cannot have an authorizer.
      'Api/$default-Route': ['AwsSolutions-APIG4'],
      'Api/$disconnect-Route': ['AwsSolutions-APIG4'],
      'Api/legacy-Route': ['AwsSolutions-APIG4'],
      'Api/orders-Route': ['AwsSolutions-APIG4'],
      'Api/proxied-Route': ['AwsSolutions-APIG4'],
      // The account-level logging role uses AWS's managed policy.
      'CloudWatchRole': ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]'],
      // X-Ray (tracing: true) has no resource-level permissions; @connections ids are known only at run time.
      'AuthorizerRole/DefaultPolicy': [XRAY],
      'ConnectionHandlerRole/DefaultPolicy': [XRAY, IAM5_CONNECTIONS('prod', 'POST')],
      'ExpirySweeperRole/DefaultPolicy': [XRAY, IAM5_CONNECTIONS('prod', 'DELETE'), IAM5_CONNECTIONS('prod', 'POST')],
      'FanOutWorkerRole/DefaultPolicy': [XRAY, IAM5_CONNECTIONS('prod', 'POST')],
      'MessageHandlerRole/DefaultPolicy': [XRAY, IAM5_CONNECTIONS('prod', 'DELETE'), IAM5_CONNECTIONS('prod', 'POST')],
      'PublisherRole/DefaultPolicy': [XRAY, IAM5_CONNECTIONS('prod', 'POST')],
    });
  });

  test('grants to the app\'s principals acknowledge only the wildcard the grant itself needs', () => {
    const onOrders = Object.keys(metadataOf(extras.orders.role!.node.findChild('DefaultPolicy')));
    expect(onOrders.map(maskIds)).toEqual([IAM5_CONNECTIONS('prod', 'POST')]);
    const onBackend = Object.keys(metadataOf(extras.backend.role!.node.findChild('DefaultPolicy')));
    expect(onBackend.map(maskIds)).toEqual(['AwsSolutions-IAM5[Resource::<Id.Arn>:*]']);
  });
});

function metadataOf(node: IConstruct): Record<string, string> {
  return Object.assign({}, ...node.node.metadata
    .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .map((entry) => ruleIds(entry.data as Record<string, string>)));
}

/** CDK records an acknowledged id with an `Annotation::` prefix; cdk-nag strips it, and so do we. */
function ruleIds(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([id, reason]) => [id.replace(/^annotation::/i, ''), reason]));
}
