import { createSecretKey } from 'node:crypto';
import { ConfigurationError } from '../../src/runtime/configuration';
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

  test('a token without exp has no expiry', async () => {
    const verified = await verifier().verify({ headers: { Authorization: await signToken({ sub: 'u' }) } });
    expect(verified.expiresAt).toBeUndefined();
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

  test('tolerates clock skew within the configured seconds only', async () => {
    const justExpired = await signToken({ sub: 'u' }, { expiresIn: -2 });
    await expect(verifier({ clockToleranceSeconds: 5 }).verify({ headers: { Authorization: justExpired } })).resolves.toBeDefined();
    expect(await refusal(verifier({ clockToleranceSeconds: 0 }).verify({ headers: { Authorization: justExpired } }))).toBe('ERR_JWT_EXPIRED');
  });

  test('accepts any of the configured audiences and the configured issuer', async () => {
    const token = await signToken({ sub: 'u', iss: 'https://issuer.example', aud: 'chat' });
    const v = verifier({ issuer: 'https://issuer.example', audience: ['admin', 'chat'] });
    await expect(v.verify({ headers: { Authorization: token } })).resolves.toMatchObject({ userId: 'u' });
  });

  test('a key that cannot be fetched refuses with KEY_UNAVAILABLE', async () => {
    const v = verifier({ key: async () => { throw new Error('AccessDenied'); } });
    expect(await refusal(v.verify({ headers: { Authorization: await signToken({ sub: 'u' }) } }))).toBe('KEY_UNAVAILABLE');
  });
});
