import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthenticatedWebSocketApi, CognitoTokenUse, TokenLocation, WebSocketAuth } from '../src';
import { logicalId, newStack, statementsOf } from './support/stacks';

/** The environment of the function whose logical id starts with `prefix`. */
function environmentOf(template: Template, prefix: string): Record<string, unknown> {
  const fn = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', prefix)];
  return fn.Properties.Environment.Variables;
}

function synth(auth: (stack: ReturnType<typeof newStack>) => WebSocketAuth): Template {
  const stack = newStack();
  new AuthenticatedWebSocketApi(stack, 'Chat', { auth: auth(stack) });
  return Template.fromStack(stack);
}

describe('WebSocketAuth.hmacSecret', () => {
  test('passes required claims to the authorizer as JSON', () => {
    const template = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), {
      requiredClaims: { scope: 'chat:write', tenant: '*' },
    }));
    expect(environmentOf(template, 'ChatAuthorizer')).toMatchObject({
      AUTH_REQUIRED_CLAIMS: '{"scope":"chat:write","tenant":"*"}',
      AUTH_ALGORITHMS: 'HS256',
    });
  });

  test('requires exp by default; requireExpiration: false tells the authorizer and the message handler to accept tokens without it', () => {
    const byDefault = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')));
    expect(environmentOf(byDefault, 'ChatAuthorizer')).not.toHaveProperty('AUTH_REQUIRE_EXPIRATION');
    const optedOut = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), { requireExpiration: false }));
    expect(environmentOf(optedOut, 'ChatAuthorizer')).toMatchObject({ AUTH_REQUIRE_EXPIRATION: 'false' });
    expect(environmentOf(optedOut, 'ChatMessageHandler')).toMatchObject({ AUTH_REQUIRE_EXPIRATION: 'false' });
    const jwks = synth(() => WebSocketAuth.jwks({ jwksUrl: 'https://i.example/jwks', requireExpiration: false }));
    expect(environmentOf(jwks, 'ChatAuthorizer')).toMatchObject({ AUTH_REQUIRE_EXPIRATION: 'false' });
  });

  test.each([
    ['an empty value', { scope: '' }],
    ['an empty name', { '': 'x' }],
  ])('refuses a required claim with %s', (_case, requiredClaims) => {
    const stack = newStack();
    expect(() => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), { requiredClaims })).toThrow(/required claim/);
  });

  test('refuses a public-key algorithm', () => {
    const stack = newStack();
    expect(() => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), { algorithms: ['RS256'] })).toThrow(/not an HMAC algorithm/);
  });
});

describe('WebSocketAuth.jwks', () => {
  const jwksUrl = 'https://example.auth0.com/.well-known/jwks.json';

  test('configures the authorizer with the key set, RS256 by default, and grants it no secret', () => {
    const template = synth(() => WebSocketAuth.jwks({ jwksUrl, issuer: 'https://example.auth0.com/', audience: ['chat-api'] }));
    const env = environmentOf(template, 'ChatAuthorizer');
    expect(env).toMatchObject({
      AUTH_JWKS_URL: jwksUrl,
      AUTH_JWKS_TIMEOUT_MS: '3000',
      AUTH_JWKS_COOLDOWN_MS: '30000',
      AUTH_ALGORITHMS: 'RS256',
      AUTH_ISSUER: 'https://example.auth0.com/',
      AUTH_AUDIENCE: 'chat-api',
      AUTH_USER_ID_CLAIM: 'sub',
      AUTH_TOKEN_LOCATION: 'header:Authorization',
    });
    expect(env).not.toHaveProperty('AUTH_SECRET_ARN');
    expect(statementsOf(template, 'ChatAuthorizer').filter((s) => JSON.stringify(s.Action).includes('secretsmanager'))).toEqual([]);
  });

  test('takes the timeout, cooldown and algorithms given', () => {
    const template = synth(() => WebSocketAuth.jwks({
      jwksUrl, algorithms: ['ES256', 'RS256'], jwksTimeout: Duration.millis(1500), jwksCooldown: Duration.minutes(2),
    }));
    expect(environmentOf(template, 'ChatAuthorizer')).toMatchObject({ AUTH_ALGORITHMS: 'ES256,RS256', AUTH_JWKS_TIMEOUT_MS: '1500', AUTH_JWKS_COOLDOWN_MS: '120000' });
  });

  test('accepts http:// on localhost only', () => {
    expect(() => WebSocketAuth.jwks({ jwksUrl: 'http://127.0.0.1:8080/jwks' })).not.toThrow();
    expect(() => WebSocketAuth.jwks({ jwksUrl: 'http://localhost/jwks' })).not.toThrow();
    expect(() => WebSocketAuth.jwks({ jwksUrl: 'http://issuer.example/jwks' })).toThrow(/not an https:\/\/ URL/);
    expect(() => WebSocketAuth.jwks({ jwksUrl: 'issuer.example/jwks' })).toThrow(/not an https:\/\/ URL/);
  });

  test.each([
    [['HS256'], /not a public-key algorithm/],
    [['none'], /not a public-key algorithm/],
    [[], /`algorithms` is empty/],
  ])('refuses algorithms %p', (algorithms, message) => {
    expect(() => WebSocketAuth.jwks({ jwksUrl, algorithms })).toThrow(message);
  });

  test.each([
    ['jwksTimeout', { jwksTimeout: Duration.seconds(30) }],
    ['jwksTimeout', { jwksTimeout: Duration.millis(10) }],
    ['jwksCooldown', { jwksCooldown: Duration.hours(2) }],
  ])('refuses a %s out of range', (name, options) => {
    expect(() => WebSocketAuth.jwks({ jwksUrl, ...options })).toThrow(new RegExp(`\`${name}\``));
  });
});

describe('WebSocketAuth.cognito', () => {
  function pool(stack: ReturnType<typeof newStack>) {
    const userPool = new cognito.UserPool(stack, 'Users');
    return { userPool, web: userPool.addClient('Web'), admin: userPool.addClient('Admin') };
  }

  test('derives the issuer and key set from the pool, and checks access tokens against the clients', () => {
    const template = synth((stack) => {
      const { userPool, web, admin } = pool(stack);
      return WebSocketAuth.cognito(userPool, { userPoolClients: [web, admin] });
    });
    const env = environmentOf(template, 'ChatAuthorizer');
    const poolRef = { Ref: logicalId(template, 'AWS::Cognito::UserPool', 'Users') };
    expect(env).toMatchObject({
      AUTH_ISSUER: { 'Fn::Join': ['', ['https://cognito-idp.eu-west-1.amazonaws.com/', poolRef]] },
      AUTH_JWKS_URL: { 'Fn::Join': ['', ['https://cognito-idp.eu-west-1.amazonaws.com/', poolRef, '/.well-known/jwks.json']] },
      AUTH_TOKEN_USE: 'access',
      AUTH_ALGORITHMS: 'RS256',
      AUTH_CLIENT_IDS: {
        'Fn::Join': ['', [
          { Ref: logicalId(template, 'AWS::Cognito::UserPoolClient', 'UsersWeb') }, ',',
          { Ref: logicalId(template, 'AWS::Cognito::UserPoolClient', 'UsersAdmin') },
        ]],
      },
    });
    expect(env).not.toHaveProperty('AUTH_AUDIENCE');
  });

  test('ID tokens', () => {
    const template = synth((stack) => {
      const { userPool, web } = pool(stack);
      return WebSocketAuth.cognito(userPool, { userPoolClients: [web], tokenUse: CognitoTokenUse.ID, tokenLocation: TokenLocation.subprotocol() });
    });
    expect(environmentOf(template, 'ChatAuthorizer')).toMatchObject({ AUTH_TOKEN_USE: 'id', AUTH_TOKEN_LOCATION: 'subprotocol:authws' });
  });

  test('an imported pool takes its region from its ARN', () => {
    const template = synth((stack) => {
      const userPool = cognito.UserPool.fromUserPoolArn(stack, 'Imported', 'arn:aws:cognito-idp:us-west-2:111111111111:userpool/us-west-2_AbCdEf');
      return WebSocketAuth.cognito(userPool, { userPoolClients: [cognito.UserPoolClient.fromUserPoolClientId(stack, 'C', 'client123')] });
    });
    expect(environmentOf(template, 'ChatAuthorizer')).toMatchObject({
      AUTH_ISSUER: 'https://cognito-idp.us-west-2.amazonaws.com/us-west-2_AbCdEf',
      AUTH_JWKS_URL: 'https://cognito-idp.us-west-2.amazonaws.com/us-west-2_AbCdEf/.well-known/jwks.json',
      AUTH_CLIENT_IDS: 'client123',
    });
  });

  test('its options offer no issuer or audience: the type refuses them, and a JavaScript caller is told why', () => {
    const stack = newStack();
    const { userPool, web } = pool(stack);
    // @ts-expect-error `issuer` is no Cognito option (the typecheck task fails should it become one again)
    expect(() => WebSocketAuth.cognito(userPool, { userPoolClients: [web], issuer: 'https://x.example' })).toThrow(/leave out `issuer` and `audience`/);
  });

  test.each([
    ['an issuer', { issuer: 'https://x.example' }, /leave out `issuer` and `audience`/],
    ['an audience', { audience: ['x'] }, /leave out `issuer` and `audience`/],
    ['no clients', { userPoolClients: [] }, /`userPoolClients` is empty/],
    ['an HMAC algorithm', { algorithms: ['HS256'] }, /not a public-key algorithm/],
  ])('refuses %s', (_case, options, message) => {
    const stack = newStack();
    const { userPool, web } = pool(stack);
    expect(() => WebSocketAuth.cognito(userPool, { userPoolClients: [web], ...options })).toThrow(message);
  });
});

describe('TokenLocation.subprotocol', () => {
  test('makes Sec-WebSocket-Protocol the identity source, so a handshake without it gets 401 from API Gateway', () => {
    const template = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), { tokenLocation: TokenLocation.subprotocol('chat-v1') }));
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { IdentitySource: ['route.request.header.Sec-WebSocket-Protocol'] });
    expect(environmentOf(template, 'ChatAuthorizer')).toMatchObject({ AUTH_TOKEN_LOCATION: 'subprotocol:chat-v1' });
  });

  test('tells the $connect handler which protocol to echo; other locations tell it nothing', () => {
    const subprotocol = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S'), { tokenLocation: TokenLocation.subprotocol() }));
    expect(environmentOf(subprotocol, 'ChatConnectionHandler')).toMatchObject({ AUTH_TOKEN_LOCATION: 'subprotocol:authws' });
    const header = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')));
    expect(environmentOf(header, 'ChatConnectionHandler')).not.toHaveProperty('AUTH_TOKEN_LOCATION');
  });

  test('defaults to authws', () => {
    expect(TokenLocation.subprotocol().identitySource).toBe('route.request.header.Sec-WebSocket-Protocol');
  });

  test.each(['', 'a b', 'chat.v1', 'a,b'])('refuses the protocol name %p', (name) => {
    expect(() => TokenLocation.subprotocol(name)).toThrow(/subprotocol name/);
  });
});

test('every factory keeps the same TokenLocation defaults', () => {
  const stack = newStack();
  const auths = [
    WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')),
    WebSocketAuth.jwks({ jwksUrl: 'https://i.example/jwks' }),
  ];
  for (const auth of auths) expect(auth.tokenLocation.identitySource).toBe('route.request.header.Authorization');
});

describe('expiry', () => {
  test('the sweeper runs every minute by default, may scan and delete rows and close connections, and reads no secret', () => {
    const template = synth((stack) => WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'S')));
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [{ Arn: { 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'ChatExpirySweeper'), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
    const actions = statementsOf(template, 'ChatExpirySweeper').flatMap((s) => s.Action).sort();
    expect(actions).toEqual(['dynamodb:DeleteItem', 'dynamodb:Scan', 'execute-api:ManageConnections']);
    expect(environmentOf(template, 'ChatExpirySweeper')).toHaveProperty('CALLBACK_URL');
  });

  test('the message handler verifies reauth tokens with the authorizer\'s settings', () => {
    const template = synth(() => WebSocketAuth.jwks({ jwksUrl: 'https://i.example/jwks', issuer: 'https://i.example/', contextClaims: ['role'] }));
    const authorizer = environmentOf(template, 'ChatAuthorizer');
    const message = environmentOf(template, 'ChatMessageHandler');
    for (const [name, value] of Object.entries(authorizer).filter(([key]) => key.startsWith('AUTH_'))) expect(message[name]).toEqual(value);
  });

  test('takes the sweep interval given', () => {
    const stack = newStack();
    new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.jwks({ jwksUrl: 'https://i.example/jwks' }), expirySweepInterval: Duration.minutes(10) });
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
  });

  test.each([Duration.seconds(30), Duration.seconds(90)])('refuses a sweep interval of %s', (interval) => {
    const stack = newStack();
    expect(() => new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.jwks({ jwksUrl: 'https://i.example/jwks' }), expirySweepInterval: interval }))
      .toThrow(/expirySweepInterval .* whole minutes/);
  });
});

describe('WebSocketAuth.lambdaAuthorizer', () => {
  const ownAuthorizer = (stack: ReturnType<typeof newStack>) => new lambda.Function(stack, 'MyAuthorizer', {
    runtime: lambda.Runtime.NODEJS_24_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})'),
  });

  test('your function authorizes $connect; no bundled authorizer is created, and yours is not changed', () => {
    const stack = newStack();
    const mine = ownAuthorizer(stack);
    const api = new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.lambdaAuthorizer(mine, { tokenLocation: TokenLocation.queryString('ticket'), contextClaims: ['tenant'] }),
    });
    const template = Template.fromStack(stack);
    expect(api.authorizerFunction).toBe(mine);
    expect(Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => id.startsWith('ChatAuthorizer'))).toEqual([]);
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: ['route.request.querystring.ticket'],
      AuthorizerUri: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'MyAuthorizer'), 'Arn'] }])]) }),
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [logicalId(template, 'AWS::Lambda::Function', 'MyAuthorizer'), 'Arn'] },
      Principal: 'apigateway.amazonaws.com',
    });
    const myFunction = template.findResources('AWS::Lambda::Function')[logicalId(template, 'AWS::Lambda::Function', 'MyAuthorizer')];
    expect(myFunction.Properties.Environment).toBeUndefined();
    // The registry keeps the context keys you name; the message handler verifies nothing itself.
    expect(environmentOf(template, 'ChatConnectionHandler')).toMatchObject({ AUTH_CONTEXT_CLAIMS: 'tenant' });
    expect(Object.keys(environmentOf(template, 'ChatMessageHandler')).filter((name) => name.startsWith('AUTH_'))).toEqual([]);
  });

  test('handlers.authorizer with your own authorizer throws with what to change', () => {
    const stack = newStack();
    expect(() => new AuthenticatedWebSocketApi(stack, 'Chat', {
      auth: WebSocketAuth.lambdaAuthorizer(ownAuthorizer(stack)),
      handlers: { authorizer: { memorySize: 1024 } },
    })).toThrow(/handlers\.authorizer sizes the bundled authorizer, but auth is WebSocketAuth\.lambdaAuthorizer\(fn\); size your own function where you define it/);
  });

  test('context claims are checked as the bundled authorizer\'s are', () => {
    const stack = newStack();
    expect(() => WebSocketAuth.lambdaAuthorizer(ownAuthorizer(stack), { contextClaims: ['userId'] })).toThrow(/collides with a key the authorizer context already uses/);
  });
});
