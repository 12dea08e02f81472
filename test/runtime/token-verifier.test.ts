import { createSecretKey } from 'node:crypto';
import { ConfigurationError } from '../../src/runtime/configuration';
import { KeyUnavailableError } from '../../src/runtime/key-source';
import { parseTokenLocation, TokenCarrier, TokenRefusedError, TokenVerifier, TokenVerifierOptions } from '../../src/runtime/token-verifier';
import { signToken, TEST_SECRET } from '../support/tokens';

const key = createSecretKey(Buffer.from(TEST_SECRET, 'utf8'));

function verifier(options: Partial<TokenVerifierOptions> = {}): TokenVerifier {
  return new TokenVerifier({
    location: { source: 'header', name: 'Authorization' },
    key: async () => key,
    algorithms: ['HS256'],
    clockToleranceSeconds: 5,
    userIdClaim: 'sub',
    contextClaims: [],
    ...options,
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TokenRefusedError) return err.reason;
    throw err;
  }
  throw new Error('the token was accepted');
}

describe('finding the token', () => {
  const header = (headers: Record<string, string>): TokenCarrier => ({ headers });

  test('reads the header whatever its case, with or without a Bearer prefix of any case', () => {
    const v = verifier();
    expect(v.tokenOf(header({ authorization: 'abc.def.ghi' }))).toBe('abc.def.ghi');
    expect(v.tokenOf(header({ AUTHORIZATION: 'Bearer abc.def.ghi' }))).toBe('abc.def.ghi');
    expect(v.tokenOf(header({ Authorization: 'bearer   abc.def.ghi  ' }))).toBe('abc.def.ghi');
    expect(v.tokenOf(header({ Authorization: 'BEARER abc.def.ghi' }))).toBe('abc.def.ghi');
  });

  test.each([
    ['no headers at all', { headers: null }],
    ['another header only', { headers: { 'X-Other': 'abc' } }],
    ['an empty header', { headers: { Authorization: '' } }],
    ['blanks', { headers: { Authorization: '   ' } }],
    ['Bearer with nothing after it', { headers: { Authorization: 'Bearer' } }],
    ['Bearer and blanks', { headers: { Authorization: 'Bearer   ' } }],
  ])('refuses %s as TOKEN_MISSING', async (_case, request) => {
    expect(await refusal(verifier().verify(request as TokenCarrier))).toBe('TOKEN_MISSING');
  });

  test('reads a query parameter, whose name is case-sensitive', () => {
    const v = verifier({ location: { source: 'query', name: 'token' } });
    expect(v.tokenOf({ queryStringParameters: { token: 'abc.def.ghi' } })).toBe('abc.def.ghi');
    expect(() => v.tokenOf({ queryStringParameters: { Token: 'abc.def.ghi' } })).toThrow(TokenRefusedError);
    expect(() => v.tokenOf({ queryStringParameters: null })).toThrow(TokenRefusedError);
    // The header is not a fallback for a query location.
    expect(() => v.tokenOf({ headers: { token: 'abc.def.ghi' } })).toThrow(TokenRefusedError);
  });

  test('a missing token never costs a key fetch', async () => {
    const fetchKey = jest.fn(async () => key);
    await refusal(verifier({ key: fetchKey }).verify({ headers: {} }));
    expect(fetchKey).not.toHaveBeenCalled();
  });
});

describe('parseTokenLocation', () => {
  test('reads header and query locations', () => {
    expect(parseTokenLocation('header:Authorization')).toEqual({ source: 'header', name: 'Authorization' });
    expect(parseTokenLocation('query:access_token')).toEqual({ source: 'query', name: 'access_token' });
  });

  test.each(['Authorization', 'cookie:session', 'header:', ''])('refuses %p', (value) => {
    expect(() => parseTokenLocation(value)).toThrow(ConfigurationError);
  });
});

describe('verifying the token', () => {
  test('a valid token yields the user id, expiry and configured claims as strings', async () => {
    const token = await signToken({ sub: 'user-1', role: 'admin', groups: ['a', 'b'], org: { id: 7 }, level: 3, beta: true }, { expiresIn: 600 });
    const verified = await verifier({ contextClaims: ['role', 'groups', 'org', 'level', 'beta', 'absent'] })
      .verify({ headers: { Authorization: `Bearer ${token}` } });
    expect(verified.userId).toBe('user-1');
    expect(verified.expiresAt).toBe(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp);
    expect(verified.claims).toEqual({ role: 'admin', groups: '["a","b"]', org: '{"id":7}', level: '3', beta: 'true' });
  });

  test('a token without exp is refused by default (NO_EXPIRY): its connection would never expire', async () => {
    const token = await signToken({ sub: 'u' }, { expiresIn: null });
    expect(await refusal(verifier().verify({ headers: { Authorization: token } }))).toBe('NO_EXPIRY');
    expect(await refusal(verifier({ requireExpiration: true }).verifyToken(token))).toBe('NO_EXPIRY');
  });

  test('with requireExpiration false, a token without exp is accepted and has no expiry', async () => {
    const token = await signToken({ sub: 'u' }, { expiresIn: null });
    const verified = await verifier({ requireExpiration: false }).verify({ headers: { Authorization: token } });
    expect(verified).toMatchObject({ userId: 'u', expiresAt: undefined });
  });

  test('the user id comes from the configured claim', async () => {
    const token = await signToken({ sub: 'subject', email: 'ada@example.com' });
    expect((await verifier({ userIdClaim: 'email' }).verify({ headers: { Authorization: token } })).userId).toBe('ada@example.com');
  });

  test.each([
    ['missing', {}],
    ['empty', { sub: '' }],
    ['a number', { sub: 42 }],
    ['an object', { sub: { id: 'u' } }],
  ])('refuses a user id that is %s', async (_case, claims) => {
    expect(await refusal(verifier().verify({ headers: { Authorization: await signToken(claims) } }))).toBe('USER_ID_MISSING');
  });

  test('a claim can never overwrite the reserved context keys', async () => {
    const token = await signToken({ sub: 'real-user', userId: 'someone-else', principalId: 'x', expiresAt: 1, role: 'r' });
    const verified = await verifier({ contextClaims: ['userId', 'principalId', 'expiresAt', 'integrationLatency', 'role'] })
      .verify({ headers: { Authorization: token } });
    expect(verified.userId).toBe('real-user');
    expect(verified.claims).toEqual({ role: 'r' });
  });

  test('tolerates clock skew on nbf within the configured seconds only', async () => {
    const almostValid = await signToken({ sub: 'u' }, { notBeforeIn: 2 });
    await expect(verifier({ clockToleranceSeconds: 5 }).verify({ headers: { Authorization: almostValid } })).resolves.toBeDefined();
    expect(await refusal(verifier({ clockToleranceSeconds: 0 }).verify({ headers: { Authorization: almostValid } }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  test('a token expired within the clock tolerance is refused: it would open an already-expired connection', async () => {
    const justExpired = await signToken({ sub: 'u' }, { expiresIn: -2 });
    expect(await refusal(verifier({ clockToleranceSeconds: 5 }).verify({ headers: { Authorization: justExpired } }))).toBe('ERR_JWT_EXPIRED');
    expect(await refusal(verifier({ clockToleranceSeconds: 5 }).verifyToken(justExpired))).toBe('ERR_JWT_EXPIRED');
    const expiringNow = await signToken({ sub: 'u' }, { expiresIn: 0 });
    expect(await refusal(verifier({ clockToleranceSeconds: 5 }).verifyToken(expiringNow))).toBe('ERR_JWT_EXPIRED');
  });

  test.each([
    ['1e300', 1e300],
    ['past the year 9999', 253_402_300_800],
  ])('an exp that is %s is refused (EXP_OUT_OF_RANGE), not stored', async (_case, exp) => {
    const token = await signToken({ sub: 'u', exp }, { expiresIn: null });
    expect(await refusal(verifier().verifyToken(token))).toBe('EXP_OUT_OF_RANGE');
    expect(await refusal(verifier({ requireExpiration: false }).verifyToken(token))).toBe('EXP_OUT_OF_RANGE');
  });

  test('a fractional exp is rounded down to whole seconds', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600.75;
    const verified = await verifier().verifyToken(await signToken({ sub: 'u', exp }, { expiresIn: null }));
    expect(verified.expiresAt).toBe(Math.floor(exp));
  });

  test('a user id up to 256 characters is accepted; a longer one is refused (USER_ID_TOO_LONG)', async () => {
    await expect(verifier().verifyToken(await signToken({ sub: 'u'.repeat(256) }))).resolves.toMatchObject({ userId: 'u'.repeat(256) });
    expect(await refusal(verifier().verifyToken(await signToken({ sub: 'u'.repeat(257) })))).toBe('USER_ID_TOO_LONG');
    expect(await refusal(verifier().verifyToken(await signToken({ sub: 'u'.repeat(4000) })))).toBe('USER_ID_TOO_LONG');
  });

  test.each([['a line break', 'alice\r\nx-admin: true'], ['a NUL', 'alice\u0000'], ['DEL', 'alice\u007f']])(
    'a user id with %s is refused (USER_ID_INVALID)', async (_case, sub) => {
      expect(await refusal(verifier().verifyToken(await signToken({ sub })))).toBe('USER_ID_INVALID');
    });

  test('context claims too large for an authorizer result (8 KB) are refused (CLAIMS_TOO_LARGE)', async () => {
    // Under the 8 KB token limit, but its quotes double when the array is copied as JSON text.
    const token = await signToken({ sub: 'u', groups: Array.from({ length: 1400 }, () => 'a') });
    expect(token.length).toBeLessThan(8192);
    expect(await refusal(verifier({ contextClaims: ['groups'] }).verifyToken(token))).toBe('CLAIMS_TOO_LARGE');
    // Not copied, not counted.
    await expect(verifier().verifyToken(token)).resolves.toMatchObject({ userId: 'u' });
  });

  test('accepts any of the configured audiences and the configured issuer', async () => {
    const token = await signToken({ sub: 'u', iss: 'https://issuer.example', aud: 'chat' });
    const v = verifier({ issuer: 'https://issuer.example', audience: ['admin', 'chat'] });
    await expect(v.verify({ headers: { Authorization: token } })).resolves.toMatchObject({ userId: 'u' });
  });

  test('a key that cannot be fetched refuses with KEY_UNAVAILABLE', async () => {
    const v = verifier({ key: async () => { throw new KeyUnavailableError('AccessDeniedException'); } });
    expect(await refusal(v.verify({ headers: { Authorization: await signToken({ sub: 'u' }) } }))).toBe('KEY_UNAVAILABLE');
  });
});

describe('a subprotocol location', () => {
  const v = verifier({ location: { source: 'subprotocol', name: 'authws' } });
  const offered = (value: string): TokenCarrier => ({ headers: { 'sec-websocket-protocol': value } });

  test('takes the token from the two offered subprotocols, in either order', () => {
    expect(v.tokenOf(offered('authws, abc.def.ghi'))).toBe('abc.def.ghi');
    expect(v.tokenOf(offered('abc.def.ghi,authws'))).toBe('abc.def.ghi');
  });

  test.each([
    ['nothing offered', ''],
    ['the token alone', 'abc.def.ghi'],
    ['the protocol name alone', 'authws'],
    ['another protocol name', 'graphql-ws, abc.def.ghi'],
    ['two candidate tokens', 'authws, abc.def.ghi, jkl.mno.pqr'],
  ])('refuses %s as TOKEN_MISSING', (_case, value) => {
    expect(() => v.tokenOf(offered(value))).toThrow(expect.objectContaining({ reason: 'TOKEN_MISSING' }));
  });

  test('parseTokenLocation reads it', () => {
    expect(parseTokenLocation('subprotocol:authws')).toEqual({ source: 'subprotocol', name: 'authws' });
  });
});

describe('required claims', () => {
  test.each([
    ['a space-separated scope listing it', { scope: 'openid chat:write' }, { scope: 'chat:write' }],
    ['an array listing it', { groups: ['a', 'chat'] }, { groups: 'chat' }],
    ['an equal string', { tier: 'gold' }, { tier: 'gold' }],
    ['a boolean as text', { email_verified: true }, { email_verified: 'true' }],
    ['any value for *', { tenant: 't1' }, { tenant: '*' }],
  ])('accept %s', async (_case, claims, required) => {
    const token = await signToken({ sub: 'u', ...claims });
    await expect(verifier({ requiredClaims: required }).verify({ headers: { Authorization: token } })).resolves.toMatchObject({ userId: 'u' });
  });

  test.each([
    ['an absent claim', {}, { scope: 'chat:write' }],
    ['a scope without it', { scope: 'openid chat:write:all' }, { scope: 'chat:write' }],
    ['an array without it', { groups: ['a'] }, { groups: 'chat' }],
    ['null for *', { tenant: null }, { tenant: '*' }],
    ['an object', { tier: { gold: true } }, { tier: 'gold' }],
  ])('refuse %s as REQUIRED_CLAIM_MISSING (403)', async (_case, claims, required) => {
    const token = await signToken({ sub: 'u', ...claims });
    const err = await verifier({ requiredClaims: required }).verify({ headers: { Authorization: token } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'REQUIRED_CLAIM_MISSING', kind: 'forbidden' });
  });
});

describe('bare tokens (reauth)', () => {
  test('verifyToken checks a token that came in a message', async () => {
    await expect(verifier().verifyToken(await signToken({ sub: 'u' }))).resolves.toMatchObject({ userId: 'u' });
    expect(await refusal(verifier().verifyToken(''))).toBe('TOKEN_MISSING');
    expect(await refusal(verifier().verifyToken('x'.repeat(9000)))).toBe('TOKEN_TOO_LARGE');
  });
});

describe('fromEnvironment', () => {
  const base = { AUTH_TOKEN_LOCATION: 'header:Authorization' };

  test.each([
    ['neither a secret nor a key set', {}],
    ['both a secret and a key set', { AUTH_SECRET_ARN: 'arn:s', AUTH_JWKS_URL: 'https://i.example/jwks' }],
    ['an HMAC algorithm with a key set', { AUTH_JWKS_URL: 'https://i.example/jwks', AUTH_ALGORITHMS: 'RS256,HS256' }],
    ['a public-key algorithm with a secret', { AUTH_SECRET_ARN: 'arn:s', AUTH_ALGORITHMS: 'RS256' }],
    ['none', { AUTH_SECRET_ARN: 'arn:s', AUTH_ALGORITHMS: 'none' }],
    ['a token use Cognito does not have', { AUTH_JWKS_URL: 'https://i.example/jwks', AUTH_TOKEN_USE: 'refresh' }],
    ['required claims that are not a JSON object of strings', { AUTH_SECRET_ARN: 'arn:s', AUTH_REQUIRED_CLAIMS: '["scope"]' }],
    ['required claims that are not JSON', { AUTH_SECRET_ARN: 'arn:s', AUTH_REQUIRED_CLAIMS: 'scope=chat' }],
  ])('refuses %s', (_case, env) => {
    expect(() => TokenVerifier.fromEnvironment({ ...base, ...env })).toThrow(ConfigurationError);
  });

  test('AUTH_REQUIRE_EXPIRATION: unset requires exp, "false" does not, anything else is refused', () => {
    const options = (env: Record<string, string>) =>
      (TokenVerifier.fromEnvironment({ ...base, AUTH_SECRET_ARN: 'arn:s', ...env }) as unknown as { options: TokenVerifierOptions }).options;
    expect(options({}).requireExpiration).toBe(true);
    expect(options({ AUTH_REQUIRE_EXPIRATION: 'false' }).requireExpiration).toBe(false);
    expect(() => options({ AUTH_REQUIRE_EXPIRATION: 'no' })).toThrow(ConfigurationError);
  });

  test('a Cognito ID token is checked against the app clients in aud', () => {
    const v = TokenVerifier.fromEnvironment({ AUTH_JWKS_URL: 'https://i.example/jwks', AUTH_TOKEN_USE: 'id', AUTH_CLIENT_IDS: 'c1,c2' });
    expect((v as unknown as { options: TokenVerifierOptions }).options).toMatchObject({ audience: ['c1', 'c2'], tokenUse: 'id', algorithms: ['RS256'] });
  });
});
