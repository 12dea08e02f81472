import { Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';

/**
 * A custom domain for the API: `wss://{domainName}/{basePath}`.
 */
export interface WebSocketDomainOptions {
  /** The domain clients connect to, e.g. `chat.example.com`. */
  readonly domainName: string;

  /**
   * An ACM certificate for `domainName`, in the stack's region (a regional endpoint; not
   * necessarily us-east-1).
   */
  readonly certificate: acm.ICertificate;

  /**
   * The Route 53 zone of `domainName`: when given, A and AAAA alias records point the domain at
   * the API's regional endpoint.
   * @default - no DNS records; point the domain at `domainName.regionalDomainName` yourself
   */
  readonly hostedZone?: route53.IHostedZone;

  /**
   * The API mapping key: clients connect to `wss://{domainName}/{basePath}`. Letters, digits and
   * `$-_.+!*'()`, levels separated by `/`.
   * @default - the domain's root: `wss://{domainName}`
   */
  readonly basePath?: string;
}

const DOMAIN_NAME = /^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}\.)+[a-z0-9-]{1,63}$/;
const BASE_PATH = /^[A-Za-z0-9$\-_.+!*'()]+(\/[A-Za-z0-9$\-_.+!*'()]+)*$/;

/** Throws when the domain options cannot work. */
export function validateDomainOptions(options: WebSocketDomainOptions): void {
  const name = options.domainName;
  if (!Token.isUnresolved(name) && !DOMAIN_NAME.test(name)) {
    throw new Error(`AuthenticatedWebSocketApi: domain.domainName '${name}' is not a domain name; use lower-case labels separated by dots, e.g. 'chat.example.com'.`);
  }
  const zone = options.hostedZone;
  if (zone && !Token.isUnresolved(name) && !Token.isUnresolved(zone.zoneName)) {
    const zoneName = zone.zoneName.replace(/\.$/, '');
    if (name !== zoneName && !name.endsWith(`.${zoneName}`)) {
      throw new Error(`AuthenticatedWebSocketApi: domain.domainName '${name}' is not in domain.hostedZone '${zoneName}'; use the zone that holds the domain, or leave hostedZone out and create the DNS record yourself.`);
    }
  }
  const basePath = options.basePath;
  if (basePath !== undefined && !Token.isUnresolved(basePath) && (!BASE_PATH.test(basePath) || basePath.length > 300)) {
    throw new Error(`AuthenticatedWebSocketApi: domain.basePath '${basePath}' is not a valid API mapping key; use up to 300 letters, digits and $-_.+!*'() with levels separated by '/', without a leading or trailing '/' (e.g. 'chat' or 'v1/chat').`);
  }
}

/**
 * Creates the domain name (regional, TLS 1.2, IPv4 and IPv6), the API mapping to `stage`, and with
 * a zone the A and AAAA alias records.
 */
export function createCustomDomain(
  scope: Construct, api: apigwv2.WebSocketApi, stage: apigwv2.WebSocketStage, options: WebSocketDomainOptions,
): apigwv2.DomainName {
  const domainName = new apigwv2.DomainName(scope, 'DomainName', {
    domainName: options.domainName,
    certificate: options.certificate,
    endpointType: apigwv2.EndpointType.REGIONAL,
    securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
    ipAddressType: apigwv2.IpAddressType.DUAL_STACK,
  });
  // WebSocketApi has no domain mapping of its own (aws-cdk#23805): an ApiMapping to the stage does it.
  new apigwv2.ApiMapping(scope, 'ApiMapping', {
    api,
    domainName,
    stage,
    apiMappingKey: options.basePath,
  });
  if (options.hostedZone) {
    const target = route53.RecordTarget.fromAlias(
      new route53Targets.ApiGatewayv2DomainProperties(domainName.regionalDomainName, domainName.regionalHostedZoneId),
    );
    new route53.ARecord(scope, 'AliasRecord', { zone: options.hostedZone, recordName: options.domainName, target });
    new route53.AaaaRecord(scope, 'AliasRecordIpv6', { zone: options.hostedZone, recordName: options.domainName, target });
  }
  return domainName;
}

/** `wss://{domainName}/{basePath}`, or `wss://{domainName}` without a base path. */
export function customDomainUrl(options: WebSocketDomainOptions): string {
  return options.basePath ? `wss://${options.domainName}/${options.basePath}` : `wss://${options.domainName}`;
}
