import { Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, WebSocketAuth, WebSocketDomainOptions } from '../src';
import { logicalId, newStack } from './support/stacks';

const CERTIFICATE_ARN = 'arn:aws:acm:eu-west-1:111111111111:certificate/11111111-2222-3333-4444-555555555555';

function withDomain(domain: (stack: ReturnType<typeof newStack>) => WebSocketDomainOptions) {
  const stack = newStack();
  const api = new AuthenticatedWebSocketApi(stack, 'Chat', {
    auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret')),
    domain: domain(stack),
  });
  return { stack, api, template: Template.fromStack(stack) };
}
const certificate = (stack: ReturnType<typeof newStack>) => acm.Certificate.fromCertificateArn(stack, 'Certificate', CERTIFICATE_ARN);
const zone = (stack: ReturnType<typeof newStack>, zoneName = 'example.com') =>
  route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z0000000000000000000', zoneName });

describe('domain', () => {
  const { stack, api, template } = withDomain((s) => ({ domainName: 'chat.example.com', certificate: certificate(s), hostedZone: zone(s), basePath: 'v1' }));
  const domainId = () => logicalId(template, 'AWS::ApiGatewayV2::DomainName', 'ChatDomainName');

  test('creates a regional domain name with TLS 1.2, reachable over IPv4 and IPv6', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'chat.example.com',
      DomainNameConfigurations: [{
        CertificateArn: CERTIFICATE_ARN,
        EndpointType: 'REGIONAL',
        SecurityPolicy: 'TLS_1_2',
        IpAddressType: 'dualstack',
      }],
    });
  });

  test('maps the stage under the base path, once the stage exists', () => {
    template.hasResource('AWS::ApiGatewayV2::ApiMapping', {
      Properties: {
        ApiId: { Ref: logicalId(template, 'AWS::ApiGatewayV2::Api', 'ChatApi') },
        DomainName: { Ref: domainId() },
        Stage: 'dev',
        ApiMappingKey: 'v1',
      },
      DependsOn: [logicalId(template, 'AWS::ApiGatewayV2::Stage', 'ChatStage')],
    });
  });

  test.each(['A', 'AAAA'])('points an %s alias record at the regional domain', (type) => {
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'chat.example.com.',
      Type: type,
      HostedZoneId: 'Z0000000000000000000',
      AliasTarget: {
        DNSName: { 'Fn::GetAtt': [domainId(), 'RegionalDomainName'] },
        HostedZoneId: { 'Fn::GetAtt': [domainId(), 'RegionalHostedZoneId'] },
      },
    });
  });

  test('customDomainUrl is wss://domain/basePath; url and callbackUrl stay on execute-api, where @connections is served', () => {
    expect(api.customDomainUrl).toBe('wss://chat.example.com/v1');
    expect(JSON.stringify(stack.resolve(api.callbackUrl))).toContain('.execute-api.eu-west-1.');
    expect(JSON.stringify(stack.resolve(api.url))).toContain('.execute-api.eu-west-1.');
    expect(api.domainName).toBeDefined();
  });
});

test('without a zone or base path: the domain root, and no DNS records', () => {
  const { api, template } = withDomain((s) => ({ domainName: 'ws.example.org', certificate: certificate(s) }));
  template.resourceCountIs('AWS::Route53::RecordSet', 0);
  const mapping = Object.values(template.findResources('AWS::ApiGatewayV2::ApiMapping'))[0] as any;
  expect(mapping.Properties.ApiMappingKey).toBeUndefined();
  expect(api.customDomainUrl).toBe('wss://ws.example.org');
});

test('no domain by default', () => {
  const stack = newStack();
  const api = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')) });
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::ApiGatewayV2::DomainName', 0);
  template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 0);
  expect(api.customDomainUrl).toBeUndefined();
  expect(api.domainName).toBeUndefined();
});

describe('invalid domains throw with what to change', () => {
  test.each<[string, (stack: ReturnType<typeof newStack>) => WebSocketDomainOptions, RegExp]>([
    ['an upper-case domain with a scheme', (s) => ({ domainName: 'wss://Chat.example.com', certificate: certificate(s) }),
      /domain\.domainName 'wss:\/\/Chat\.example\.com' is not a domain name; use lower-case labels/],
    ['a domain outside the zone', (s) => ({ domainName: 'chat.example.org', certificate: certificate(s), hostedZone: zone(s) }),
      /domain\.domainName 'chat\.example\.org' is not in domain\.hostedZone 'example\.com'/],
    ['a base path with a leading slash', (s) => ({ domainName: 'chat.example.com', certificate: certificate(s), basePath: '/v1' }),
      /domain\.basePath '\/v1' is not a valid API mapping key.*without a leading or trailing '\/'/],
    ['a base path with a space', (s) => ({ domainName: 'chat.example.com', certificate: certificate(s), basePath: 'v 1' }),
      /domain\.basePath 'v 1' is not a valid API mapping key/],
  ])('%s', (_name, domain, message) => {
    expect(() => withDomain(domain)).toThrow(message);
  });

  test('a multi-level base path and a zone apex are fine', () => {
    expect(() => withDomain((s) => ({ domainName: 'example.com', certificate: certificate(s), hostedZone: zone(s), basePath: 'v1/chat' }))).not.toThrow();
  });
});
