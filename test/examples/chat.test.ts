import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ChatStack } from '../../examples/chat/stack';

/** The example app is what the README's main command synthesizes and the local gateway serves. */
describe('examples/chat', () => {
  const stack = new ChatStack(new App(), 'AuthwsChat');
  const template = Template.fromStack(stack);

  test('has one authenticated WebSocket API, its registry and its channels table', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1);
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
  });

  test('outputs the URL clients connect to, the callback URL and the secret to sign tokens with', () => {
    expect(Object.keys(template.findOutputs('*')).sort()).toEqual(['CallbackUrl', 'JwtSecretArn', 'Url']);
    expect(JSON.stringify(template.findOutputs('Url'))).toContain('wss://');
  });
});
