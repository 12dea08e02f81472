import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';

/**
 * The cdk-nag (AwsSolutions) findings this construct acknowledges, each on the one resource it is
 * about, with the reason in code. cdk-nag 3 reads acknowledgements from CDK's own
 * `Validations.of(scope).acknowledge()`, so the library needs no dependency on cdk-nag.
 *
 * Everything else cdk-nag reported was fixed in the construct; see the README's production checklist.
 */
export const NagReasons = {
  /** AwsSolutions-APIG4 on `$disconnect`, `$default` and custom routes. */
  ROUTE_AUTHORIZED_AT_CONNECT: 'API Gateway authorizes a WebSocket API on $connect only (routes of other keys accept no authorizer); '
    + 'every message on this route arrives on a connection whose token the $connect authorizer verified.',
  /** AwsSolutions-IAM5 on `execute-api:ManageConnections`. */
  CONNECTIONS_WILDCARD: 'Connection ids exist only at run time, so @connections access is granted on this API\'s stage, '
    + 'for every connection id (arn:...:{apiId}/{stage}/*/@connections/*), never on other APIs or stages.',
  /** AwsSolutions-IAM5 on `lambda:InvokeFunction` of the publisher. */
  PUBLISHER_VERSIONS: 'Lambda grants invoke on the publisher function and its versions and aliases ({arn}:*); '
    + 'no other function is reachable.',
  /** AwsSolutions-IAM5 with `tracing: true`. */
  XRAY_WILDCARD: 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions (AWS requires Resource "*").',
  /** AwsSolutions-DDB3 when `pointInTimeRecovery` is off. */
  REGISTRY_EPHEMERAL: 'The registry holds one row per open connection, which lives at most 2 hours; restoring it would bring back '
    + 'connections that no longer exist. Set pointInTimeRecovery: true to keep backups anyway.',
  /** AwsSolutions-APIG1 with `accessLogs: false`. */
  ACCESS_LOGS_OFF: 'Access logs were turned off on purpose (accessLogs: false), typically where the account has no API Gateway '
    + 'CloudWatch Logs role; the functions still log every connect, message and error to their own log groups.',
  /** AwsSolutions-IAM4 on the account-level API Gateway CloudWatch role (`cloudWatchRole: true`). */
  ACCOUNT_LOGGING_ROLE: 'API Gateway\'s account-wide logging role serves every API of the account and region; '
    + 'AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy AWS documents for it.',
} as const;

/**
 * Acknowledges one cdk-nag rule on `scope` (its resources and below).
 * @param scope the resource the finding is about
 * @param ruleId the rule, e.g. `AwsSolutions-APIG4`, or one finding, e.g. `AwsSolutions-IAM5[Resource::*]`
 * @param reason why the finding stands
 */
export function acknowledgeNag(scope: IConstruct, ruleId: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: ruleId, reason });
}

/**
 * Acknowledges the IAM5 findings (wildcards) of `grant`, on the policy of `grantee`, and only for
 * the resources and actions that grant named.
 * @param grantee the principal the grant was given to
 * @param grant a grant whose resources necessarily end in a wildcard
 * @param reason why
 */
export function acknowledgeGrantWildcards(grantee: iam.IGrantable, grant: iam.Grant, reason: string): void {
  const principal = grantee.grantPrincipal;
  if (!isConstruct(principal) || grant.principalStatements.length === 0) return;
  // The statements land in the DefaultPolicy of the grantee's role or user.
  const holder = principal.node.tryFindChild('DefaultPolicy') ?? principal;
  const stack = Stack.of(principal);
  const findings = new Set<string>();
  for (const statement of grant.principalStatements) {
    for (const resource of statement.resources) {
      const flat = flattenReference(stack.resolve(resource));
      if (flat.includes('*')) findings.add(`AwsSolutions-IAM5[Resource::${flat}]`);
    }
    for (const action of statement.actions) {
      if (action.includes('*')) findings.add(`AwsSolutions-IAM5[Action::${action}]`);
    }
  }
  for (const finding of findings) acknowledgeNag(holder, finding, reason);
}

function isConstruct(value: unknown): value is IConstruct {
  return typeof value === 'object' && value !== null && 'node' in value;
}

/**
 * Turns a resolved CloudFormation value into the flat text cdk-nag names findings by: `Ref` as
 * `<Id>`, `Fn::GetAtt` as `<Id.Attr>`, `Fn::Join` joined, strings as they are.
 */
export function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = value as Record<string, any>;
  if (node['Fn::Join']) {
    const [delimiter, items] = node['Fn::Join'];
    return (items as unknown[]).map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub']) return flattenReference(node['Fn::Sub']);
  if (node['Fn::GetAtt']) {
    const [resource, attribute] = node['Fn::GetAtt'];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node['Fn::ImportValue']) return flattenReference(node['Fn::ImportValue']);
  if (node.Ref) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(value);
}
