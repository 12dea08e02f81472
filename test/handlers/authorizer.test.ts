import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { Env } from '../../src/runtime/environment';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { SecretsServer } from '../support/secrets-server';
import { signToken, TEST_SECRET, unsignedToken, withPayload, withTamperedSignature } from '../support/tokens';
import { API_ID, authorizerEvent } from '../support/websocket-events';

type Authorizer = (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

let secrets: SecretsServer;
let secretArn: string;
let output: CapturedConsole;

const AUTH_SETTINGS = [
  Env.AUTH_SECRET_ARN, Env.AUTH_ALGORITHMS, Env.AUTH_ISSUER, Env.AUTH_AUDIENCE, Env.AUTH_CLOCK_TOLERANCE_SECONDS,
  Env.AUTH_USER_ID_CLAIM, Env.AUTH_CONTEXT_CLAIMS, Env.AUTH_TOKEN_LOCATION, Env.AUTH_REQUIRE_EXPIRATION,
];

/**
 * A freshly loaded authorizer, as in a new Lambda container: its module-scope caches (verifier,
 * secret) start empty, and it reads `settings` on its first invocation.
 */
function coldStart(settings: Record<string, string> = {}): Authorizer {
  for (const name of AUTH_SETTINGS) delete process.env[name];
  Object.assign(process.env, { [Env.AUTH_SECRET_ARN]: secretArn, ...settings });
  let handler: Authorizer | undefined;
  jest.isolateModules(() => {
    handler = jest.requireActual('../../src/handlers/authorizer.lambda').handler;
  });
  return handler!;
}

function withHeader(value: string): APIGatewayRequestAuthorizerEvent {
  return authorizerEvent({ headers: { Authorization: value } });
}

beforeAll(async () => {
  useDummyAwsEnvironment();
  secrets = await SecretsServer.start();
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
  secretArn = secrets.put('chat-hmac', TEST_SECRET);
});

afterAll(async () => {
  await secrets.stop();
});

beforeEach(() => {
  output = captureConsole();
});

afterEach(() => {
  output.restore();
});

describe('a valid token', () => {
  test.each([
    ['without a prefix', (token: string) => token],
    ['with "Bearer "', (token: string) => `Bearer ${token}`],
  ])('in Authorization %s is allowed, with the user in the context', async (_case, present) => {
    const token = await signToken({ sub: 'user-a', role: 'admin', groups: ['eng', 'ops'] }, { expiresIn: 900 });
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;
    const event = withHeader(present(token));
    const result = await coldStart({ [Env.AUTH_CONTEXT_CLAIMS]: 'role,groups' })(event);
    expect(result).toEqual({
      principalId: 'user-a',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
      },
      context: { userId: 'user-a', expiresAt: exp, role: 'admin', groups: '["eng","ops"]' },
    });
  });

  test('context values are only strings, numbers and booleans, as API Gateway requires', async () => {
    const token = await signToken({ sub: 'u', obj: { a: [1] }, n: 1, b: false, s: 'x' }, { expiresIn: 60 });
    const result = await coldStart({ [Env.AUTH_CONTEXT_CLAIMS]: 'obj,n,b,s' })(withHeader(token));
    for (const value of Object.values(result.context ?? {})) expect(['string', 'number', 'boolean']).toContain(typeof value);
  });

  test('with AUTH_REQUIRE_EXPIRATION=false, a token without exp gives a context without expiresAt', async () => {
    const result = await coldStart({ [Env.AUTH_REQUIRE_EXPIRATION]: 'false' })(withHeader(await signToken({ sub: 'u' }, { expiresIn: null })));
    expect(result.context).toEqual({ userId: 'u' });
  });

  test('read from the configured query parameter', async () => {
    const token = await signToken({ sub: 'user-q' });
    const authorize = coldStart({ [Env.AUTH_TOKEN_LOCATION]: 'query:token' });
    expect((await authorize(authorizerEvent({ query: { token } }))).principalId).toBe('user-q');
    await expect(authorize(withHeader(token))).rejects.toThrow('Unauthorized');
  });

  test('with the configured issuer and one of the configured audiences', async () => {
    const token = await signToken({ sub: 'u', iss: 'https://issuer.example', aud: ['chat'] });
    const authorize = coldStart({ [Env.AUTH_ISSUER]: 'https://issuer.example', [Env.AUTH_AUDIENCE]: 'admin,chat' });
    expect((await authorize(withHeader(token))).principalId).toBe('u');
  });

  test('signed with HS512 when HS512 is allowed', async () => {
    const token = await signToken({ sub: 'u' }, { alg: 'HS512' });
    expect((await coldStart({ [Env.AUTH_ALGORITHMS]: 'HS256,HS512' })(withHeader(token))).principalId).toBe('u');
  });
});

describe('refusals: each rejects with Error("Unauthorized") (401) unless the key is unavailable (500)', () => {
  const valid = () => signToken({ sub: 'user-a' }, { expiresIn: 600 });
  const cases: [string, () => Promise<APIGatewayRequestAuthorizerEvent>, Record<string, string>?, string?][] = [
    ['an expired token', async () => withHeader(await signToken({ sub: 'u' }, { expiresIn: -60 })), {}, 'ERR_JWT_EXPIRED'],
    ['a token not valid yet (nbf)', async () => withHeader(await signToken({ sub: 'u' }, { notBeforeIn: 600 })), {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['a token signed with another secret', async () => withHeader(await signToken({ sub: 'u' }, { secret: 'another-secret' })), {}, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['a tampered payload', async () => withHeader(withPayload(await valid(), { sub: 'admin' })), {}, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['a tampered signature', async () => withHeader(withTamperedSignature(await valid())), {}, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['alg none', async () => withHeader(unsignedToken({ sub: 'u' })), {}, undefined],
    ['HS512 when only HS256 is allowed', async () => withHeader(await signToken({ sub: 'u' }, { alg: 'HS512' })), {}, 'ERR_JOSE_ALG_NOT_ALLOWED'],
    ['the wrong issuer', async () => withHeader(await signToken({ sub: 'u', iss: 'https://evil.example' })),
      { [Env.AUTH_ISSUER]: 'https://issuer.example' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['no issuer when one is configured', async () => withHeader(await signToken({ sub: 'u' })),
      { [Env.AUTH_ISSUER]: 'https://issuer.example' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['the wrong audience', async () => withHeader(await signToken({ sub: 'u', aud: 'billing' })),
      { [Env.AUTH_AUDIENCE]: 'chat' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['a token without sub', async () => withHeader(await signToken({ name: 'no subject' })), {}, 'USER_ID_MISSING'],
    ['a token without exp (required by default)', async () => withHeader(await signToken({ sub: 'u' }, { expiresIn: null })), {}, 'NO_EXPIRY'],
    ['a token expired within the clock tolerance', async () => withHeader(await signToken({ sub: 'u' }, { expiresIn: -2 })),
      { [Env.AUTH_CLOCK_TOLERANCE_SECONDS]: '30' }, 'ERR_JWT_EXPIRED'],
    ['a 4,000-character sub', async () => withHeader(await signToken({ sub: 'x'.repeat(4000) })), {}, 'USER_ID_TOO_LONG'],
    ['a sub with a line break', async () => withHeader(await signToken({ sub: 'alice\r\nx-admin: 1' })), {}, 'USER_ID_INVALID'],
    ['exp: 1e300', async () => withHeader(await signToken({ sub: 'u', exp: 1e300 }, { expiresIn: null })), {}, 'EXP_OUT_OF_RANGE'],
    ['an empty header', async () => withHeader(''), {}, 'TOKEN_MISSING'],
    ['"Bearer" alone', async () => withHeader('Bearer'), {}, 'TOKEN_MISSING'],
    ['"Bearer " and blanks', async () => withHeader('Bearer    '), {}, 'TOKEN_MISSING'],
    ['malformed segments', async () => withHeader('only.two'), {}, 'ERR_JWS_INVALID'],
    ['four segments', async () => withHeader(`${await valid()}.extra`), {}, undefined],
    ['no Authorization header', async () => authorizerEvent({ headers: { 'X-Other': 'x' } }), {}, 'TOKEN_MISSING'],
    ['garbage', async () => withHeader('%%%garbage!!!'), {}, undefined],
    ['a JSON object instead of a token', async () => withHeader('{"sub":"admin"}'), {}, undefined],
  ];

  test.each(cases)('%s', async (_case, makeEvent, settings = {}, reason) => {
    const event = await makeEvent();
    const outcome = await coldStart(settings)(event).then(() => 'allowed', (err: unknown) => err);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toBe('Unauthorized');
    expect(output.logs()).toHaveLength(1);
    expect(output.logs()[0]).toMatchObject({ level: 'warn', event: 'connect_refused', eventType: 'CONNECT', routeKey: '$connect' });
    if (reason) expect(output.logs()[0].reason).toBe(reason);
    expect(output.metrics()).toEqual([expect.objectContaining({ ApiId: API_ID, AuthDenied: 1 })]);
  });

  test('a secret that cannot be fetched refuses with 500 (the token may be fine), and is logged', async () => {
    const authorize = coldStart({ [Env.AUTH_SECRET_ARN]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:absent' });
    await expect(authorize(withHeader(await valid()))).rejects.toThrow(new Error('AuthorizerUnavailable'));
    expect(output.logs()).toEqual([expect.objectContaining({ level: 'error', reason: 'KEY_UNAVAILABLE', detail: 'ResourceNotFoundException' })]);
    // A 500 is not a denial: the token may be fine.
    expect(output.metrics()).toEqual([expect.objectContaining({ AuthDenied: 0 })]);
  });

  test('a misconfigured token location refuses with 500, and says why in the log', async () => {
    await expect(coldStart({ [Env.AUTH_TOKEN_LOCATION]: 'cookie:session' })(withHeader(await valid()))).rejects.toThrow('AuthorizerUnavailable');
    expect(output.logs()).toEqual([expect.objectContaining({ level: 'error', reason: 'MISCONFIGURED' })]);
  });
});

describe('the secret', () => {
  test('is fetched once per container, however many connects', async () => {
    const authorize = coldStart();
    const before = secrets.calls;
    const token = await signToken({ sub: 'u' });
    await Promise.all(Array.from({ length: 10 }, () => authorize(withHeader(token))));
    for (let i = 0; i < 10; i++) await authorize(withHeader(token));
    expect(secrets.calls - before).toBe(1);
  });

  test('a failed fetch is retried on the next connect', async () => {
    const authorize = coldStart();
    const token = await signToken({ sub: 'u' });
    secrets.setOutage(true);
    await expect(authorize(withHeader(token))).rejects.toThrow('AuthorizerUnavailable');
    secrets.setOutage(false);
    const before = secrets.calls;
    expect((await authorize(withHeader(token))).principalId).toBe('u');
    expect(secrets.calls).toBe(before + 1);
  });

  describe('rotation, in a warm container', () => {
    const OLD = 'the-old-secret-that-leaked-0123456789abcdef';
    const NEW = 'the-new-secret-after-rotation-0123456789abcdef';
    let clock: number;
    let arn: string;
    let authorize: Authorizer;
    const advance = (ms: number) => { clock += ms; };
    const allowed = async (secret: string) => authorize(withHeader(await signToken({ sub: 'u' }, { secret }))).then(() => true, () => false);

    beforeEach(async () => {
      clock = Date.now();
      jest.spyOn(Date, 'now').mockImplementation(() => clock);
      arn = secrets.put(`rotating-${Math.random().toString(36).slice(2)}`, OLD);
      authorize = coldStart({ [Env.AUTH_SECRET_ARN]: arn });
      expect(await allowed(OLD)).toBe(true); // the container has read the old secret
      secrets.put(arn.replace(/^.*:secret:(.*)-AbCdEf$/, '$1'), NEW); // rotated
    });

    afterEach(() => jest.restoreAllMocks());

    test('without new tokens, the old secret stops working once the cached one is 5 minutes old', async () => {
      advance(4 * 60_000);
      expect(await allowed(OLD)).toBe(true); // still within the window
      advance(60_000 + 1);
      expect(await allowed(OLD)).toBe(false);
      expect(await allowed(NEW)).toBe(true);
    });

    test('a token signed with the new secret makes it read the secret again (once per 30 s), after which the old one is refused', async () => {
      // Within the cooldown of the first read: the new token is refused and no read is made.
      const before = secrets.calls;
      expect(await allowed(NEW)).toBe(false);
      expect(secrets.calls).toBe(before);
      advance(30_000);
      expect(await allowed(NEW)).toBe(true);
      expect(secrets.calls).toBe(before + 1);
      expect(await allowed(OLD)).toBe(false);
      // A flood of bad signatures costs no more reads within the cooldown.
      for (let i = 0; i < 5; i++) expect(await allowed('an-attackers-guess-0123456789abcdef')).toBe(false);
      expect(secrets.calls).toBe(before + 1);
    });
  });

  test('a refused connect without a token does not fetch it', async () => {
    const authorize = coldStart();
    const before = secrets.calls;
    await expect(authorize(withHeader(''))).rejects.toThrow('Unauthorized');
    expect(secrets.calls).toBe(before);
  });
});

test('neither the token nor the secret ever reaches the log', async () => {
  const authorize = coldStart({ [Env.AUTH_CONTEXT_CLAIMS]: 'role' });
  const tokens = [
    await signToken({ sub: 'u', role: 'r' }),
    await signToken({ sub: 'u' }, { expiresIn: -60 }),
    await signToken({ sub: 'u' }, { secret: 'wrong' }),
    withPayload(await signToken({ sub: 'u' }), { sub: 'admin' }),
    unsignedToken({ sub: 'u' }),
  ];
  for (const token of tokens) await authorize(withHeader(`Bearer ${token}`)).catch(() => undefined);
  secrets.setOutage(true);
  await coldStart()(withHeader(tokens[0])).catch(() => undefined);
  secrets.setOutage(false);

  expect(output.lines.length).toBeGreaterThanOrEqual(tokens.length);
  const logged = output.lines.join('\n');
  expect(logged).not.toContain(TEST_SECRET);
  for (const token of tokens) {
    for (const segment of token.split('.').filter((s) => s.length > 0)) expect(logged).not.toContain(segment);
  }
});

describe('logs and metrics', () => {
  const context = { awsRequestId: 'req-authorizer-1', functionName: 'Chat-Authorizer' };
  type WithContext = (event: APIGatewayRequestAuthorizerEvent, ctx: typeof context) => Promise<APIGatewayAuthorizerResult>;
  const valid = () => signToken({ sub: 'user-a' }, { expiresIn: 600 });

  test('a refusal logs the request id, function name, connection id and route, and writes AuthDenied=1 in EMF', async () => {
    const event = authorizerEvent({ headers: { Authorization: `Bearer ${await signToken({ sub: 'u' }, { secret: 'wrong' })}` }, connectionId: 'conn-1=' });
    await expect((coldStart() as WithContext)(event, context)).rejects.toThrow('Unauthorized');
    expect(output.logs()).toEqual([expect.objectContaining({
      level: 'warn',
      event: 'connect_refused',
      requestId: 'req-authorizer-1',
      functionName: 'Chat-Authorizer',
      connectionId: 'conn-1=',
      routeKey: '$connect',
      eventType: 'CONNECT',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    })]);
    const [emf] = output.metrics();
    expect(emf).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [{ Namespace: 'AuthenticatedWebSocketApi', Dimensions: [['ApiId']], Metrics: [{ Name: 'AuthDenied', Unit: 'Count' }] }],
      },
      ApiId: API_ID,
      AuthDenied: 1,
      requestId: 'req-authorizer-1',
      functionName: 'Chat-Authorizer',
    });
  });

  test('an allowed connect writes AuthDenied=0 and no log line; WEBSOCKET_API_ID wins over the event', async () => {
    process.env.WEBSOCKET_API_ID = 'from-env';
    try {
      await (coldStart() as WithContext)(withHeader(await valid()), context);
    } finally {
      delete process.env.WEBSOCKET_API_ID;
    }
    expect(output.logs()).toEqual([]);
    expect(output.metrics()).toEqual([expect.objectContaining({ ApiId: 'from-env', AuthDenied: 0 })]);
  });

  test('a 403 (valid token, required claim missing) counts as denied', async () => {
    let result: APIGatewayAuthorizerResult;
    try {
      result = await coldStart({ [Env.AUTH_REQUIRED_CLAIMS]: '{"scope":"chat"}' })(withHeader(await valid()));
    } finally {
      delete process.env[Env.AUTH_REQUIRED_CLAIMS];
    }
    expect(result.policyDocument.Statement[0].Effect).toBe('Deny');
    expect(output.metrics()).toEqual([expect.objectContaining({ AuthDenied: 1 })]);
  });
});
