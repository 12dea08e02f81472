import { readFileSync } from 'fs';
import { join } from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ChatStack } from '../../examples/chat/stack';
import { chatExampleContext } from '../local/fixtures/chat-example';

/** The example app is what the README's main command synthesizes and the local gateway serves. */
describe('examples/chat', () => {
  const stack = new ChatStack(new App({ context: chatExampleContext() }), 'AuthwsChat');
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

  test('imports the library by its package name, so its files work as they are in an app of their own', () => {
    const example = (file: string) => readFileSync(join(__dirname, '..', '..', 'examples', 'chat', file), 'utf8');
    for (const file of ['app.ts', 'stack.ts']) {
      expect(example(file)).not.toMatch(/from '\.\.\/\.\.\//);
    }
    expect(example('stack.ts')).toMatch(/from 'cdk-authenticated-websocket-api';/);
    const pkg = JSON.parse(example('package.json'));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['aws-cdk-lib', 'cdk-authenticated-websocket-api', 'constructs']);
    expect(JSON.parse(example('cdk.json')).app).toBe('npx ts-node --prefer-ts-exts app.ts');
  });

  test('configures every feature flag aws-cdk-lib recommends, so `cdk synth` has none to warn about', () => {
    const recommended = JSON.parse(readFileSync(require.resolve('aws-cdk-lib/recommended-feature-flags.json'), 'utf8'));
    expect(chatExampleContext()).toEqual(recommended);
  });
});
