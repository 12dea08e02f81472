import { createHmac } from 'node:crypto';
import { JwksServer } from './jwks-server';
import { newKeyPair, signWithKey, TestKeyPair } from './key-pairs';
import { signToken, TEST_SECRET, unsignedToken, withPayload, withTamperedSignature } from './tokens';
import { Env } from '../../src/runtime/environment';

/**
 * The bad-token matrix: each case is a `$connect` request carrying a bad (or misplaced) token, and
 * the status API Gateway must answer it with. It runs against the authorizer handler
 * (test/handlers/authorizer-matrix.test.ts) and end to end through the local gateway.
 */

export const MATRIX_ISSUER_HMAC = 'https://issuer.example';
export const MATRIX_AUDIENCE = 'chat';
export const MATRIX_SCOPE = 'chat:connect';
export const MATRIX_CLIENT_ID = 'client-web';
export const MATRIX_SUBPROTOCOL = 'authws';

/**
 * The deployments the cases run against, one verifier configuration each:
 * - hmac: HS256 secret, `Authorization` header, issuer and audience checked;
 * - query / subprotocol: the same secret, token in `?token=` / offered as a subprotocol;
 * - jwks: RS256 and ES256 from a key set, issuer and audience checked, scope `chat:connect` required;
 * - jwksDown / jwksSlow: a key set endpoint that answers 503 / never answers (timeout 300 ms);
 * - cognito: access tokens of app client `client-web`, as `WebSocketAuth.cognito` configures.
 */
export type Deployment = 'hmac' | 'query' | 'subprotocol' | 'jwks' | 'jwksDown' | 'jwksSlow' | 'cognito';

/** Where and how a case presents its token. */
export interface MatrixRequest {
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string>;
  /** Subprotocols offered (sent as one `Sec-WebSocket-Protocol` header). */
  readonly protocols?: string[];
}

export interface MatrixCase {
  readonly name: string;
  readonly deployment: Deployment;
  readonly request: (fixture: MatrixFixture) => Promise<MatrixRequest>;
  /** 401: the token proves nothing; 403: valid but lacks a required claim; 500: the key set is unavailable. */
  readonly status: 401 | 403 | 500;
  /** The reason code the authorizer logs (undefined: not pinned). */
  readonly reason?: string;
}

/** The identity providers behind the matrix. */
export interface MatrixFixture {
  readonly secret: string;
  readonly rsa: TestKeyPair;
  readonly ec: TestKeyPair;
  /** A key of an attacker: not in the key set. */
  readonly attacker: TestKeyPair;
  readonly jwks: JwksServer;
  readonly downJwks: JwksServer;
  readonly slowJwks: JwksServer;
  stop(): Promise<void>;
}

export async function startMatrixFixture(): Promise<MatrixFixture> {
  const [rsa, ec, attacker] = await Promise.all([newKeyPair('rsa-1'), newKeyPair('ec-1', 'ES256'), newKeyPair('attacker-1')]);
  const jwks = await JwksServer.start([rsa.jwk, ec.jwk]);
  const downJwks = await JwksServer.start([rsa.jwk]);
  downJwks.mode = 'down';
  const slowJwks = await JwksServer.start([rsa.jwk]);
  slowJwks.mode = 'hang';
  return {
    secret: TEST_SECRET,
    rsa,
    ec,
    attacker,
    jwks,
    downJwks,
    slowJwks,
    stop: async () => { await Promise.all([jwks.stop(), downJwks.stop(), slowJwks.stop()]); },
  };
}

/** The authorizer's environment for `deployment` (what the construct sets), given the secret's ARN. */
export function matrixEnvironment(deployment: Deployment, fixture: MatrixFixture, secretArn: string): Record<string, string> {
  const hmac = {
    [Env.AUTH_SECRET_ARN]: secretArn,
    [Env.AUTH_ALGORITHMS]: 'HS256',
    [Env.AUTH_ISSUER]: MATRIX_ISSUER_HMAC,
    [Env.AUTH_AUDIENCE]: MATRIX_AUDIENCE,
  };
  const jwks = (url: string) => ({
    [Env.AUTH_JWKS_URL]: url,
    [Env.AUTH_ALGORITHMS]: 'RS256,ES256',
    [Env.AUTH_ISSUER]: fixture.jwks.issuer,
    [Env.AUTH_AUDIENCE]: MATRIX_AUDIENCE,
    [Env.AUTH_JWKS_TIMEOUT_MS]: '300',
    [Env.AUTH_REQUIRED_CLAIMS]: JSON.stringify({ scope: MATRIX_SCOPE }),
  });
  switch (deployment) {
    case 'hmac': return { ...hmac, [Env.AUTH_TOKEN_LOCATION]: 'header:Authorization' };
    case 'query': return { ...hmac, [Env.AUTH_TOKEN_LOCATION]: 'query:token' };
    case 'subprotocol': return { ...hmac, [Env.AUTH_TOKEN_LOCATION]: `subprotocol:${MATRIX_SUBPROTOCOL}` };
    case 'jwks': return jwks(fixture.jwks.jwksUrl);
    case 'jwksDown': return jwks(fixture.downJwks.jwksUrl);
    case 'jwksSlow': return jwks(fixture.slowJwks.jwksUrl);
    case 'cognito': return {
      [Env.AUTH_JWKS_URL]: fixture.jwks.jwksUrl,
      [Env.AUTH_ALGORITHMS]: 'RS256',
      [Env.AUTH_ISSUER]: fixture.jwks.issuer,
      [Env.AUTH_TOKEN_USE]: 'access',
      [Env.AUTH_CLIENT_IDS]: `${MATRIX_CLIENT_ID},client-admin`,
    };
  }
}

/** Claims that satisfy every check of `deployment`. */
export function goodClaims(deployment: Deployment, fixture: MatrixFixture): Record<string, unknown> {
  switch (deployment) {
    case 'hmac': case 'query': case 'subprotocol':
      return { sub: 'user-a', iss: MATRIX_ISSUER_HMAC, aud: MATRIX_AUDIENCE };
    case 'cognito':
      return { sub: 'user-a', iss: fixture.jwks.issuer, token_use: 'access', client_id: MATRIX_CLIENT_ID, scope: 'openid' };
    default:
      return { sub: 'user-a', iss: fixture.jwks.issuer, aud: MATRIX_AUDIENCE, scope: `openid ${MATRIX_SCOPE}` };
  }
}

/** A token every check of `deployment` accepts: the matrix's positive control. */
export async function goodToken(deployment: Deployment, fixture: MatrixFixture): Promise<string> {
  if (deployment === 'hmac' || deployment === 'query' || deployment === 'subprotocol') {
    return signToken(goodClaims(deployment, fixture), { expiresIn: 600 });
  }
  return signWithKey(fixture.rsa, goodClaims(deployment, fixture));
}

/** Where `deployment` expects its token. */
export function placed(deployment: Deployment, token: string): MatrixRequest {
  switch (deployment) {
    case 'query': return { query: { token } };
    case 'subprotocol': return { protocols: [MATRIX_SUBPROTOCOL, token] };
    default: return { headers: { Authorization: `Bearer ${token}` } };
  }
}

const b64 = (value: string | object) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An HS256 token over `claims` whose secret is `secret`, built by hand so nothing refuses to sign it. */
function hs256With(secret: string | Buffer, claims: object, header: object = { alg: 'HS256', typ: 'JWT' }): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const inHeader = (token: string): MatrixRequest => ({ headers: { Authorization: `Bearer ${token}` } });
const hmacClaims = { sub: 'user-a', iss: MATRIX_ISSUER_HMAC, aud: MATRIX_AUDIENCE };
const now = () => Math.floor(Date.now() / 1000);

function bad(name: string, deployment: Deployment, status: MatrixCase['status'], reason: string | undefined, request: MatrixCase['request']): MatrixCase {
  return { name, deployment, status, reason, request };
}

export const MATRIX: readonly MatrixCase[] = [
  // Time
  bad('expired (HS256)', 'hmac', 401, 'ERR_JWT_EXPIRED',
    async () => inHeader(await signToken(hmacClaims, { expiresIn: -60 }))),
  bad('expired (RS256)', 'jwks', 401, 'ERR_JWT_EXPIRED',
    async (f) => inHeader(await signWithKey(f.rsa, goodClaims('jwks', f), { expiresIn: -60 }))),
  bad('not yet valid (nbf in 10 minutes)', 'hmac', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => inHeader(await signToken(hmacClaims, { expiresIn: 1200, notBeforeIn: 600 }))),
  bad('not yet valid (ES256)', 'jwks', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async (f) => inHeader(await signWithKey(f.ec, goodClaims('jwks', f), { notBeforeIn: 600, expiresIn: 1200 }))),
  // Issuer and audience
  bad('wrong issuer', 'hmac', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => inHeader(await signToken({ ...hmacClaims, iss: 'https://evil.example' }, { expiresIn: 600 }))),
  bad('no issuer', 'hmac', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => inHeader(await signToken({ sub: 'user-a', aud: MATRIX_AUDIENCE }, { expiresIn: 600 }))),
  bad('wrong issuer (key set)', 'jwks', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('jwks', f), iss: 'https://other-tenant.example' }))),
  bad('wrong audience', 'hmac', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async () => inHeader(await signToken({ ...hmacClaims, aud: 'billing' }, { expiresIn: 600 }))),
  bad('no audience (key set)', 'jwks', 401, 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('jwks', f), aud: undefined }))),
  // Algorithms
  bad('alg none (HMAC)', 'hmac', 401, undefined,
    async () => inHeader(unsignedToken({ ...hmacClaims, exp: now() + 600 }))),
  bad('alg none (key set)', 'jwks', 401, undefined,
    async (f) => inHeader(unsignedToken({ ...goodClaims('jwks', f), exp: now() + 600 }))),
  bad('HMAC/RSA confusion: HS256 signed with the RSA public key (PEM) as its secret', 'jwks', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async (f) => inHeader(hs256With(f.rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      { ...goodClaims('jwks', f), exp: now() + 600 }, { alg: 'HS256', typ: 'JWT', kid: f.rsa.kid }))),
  bad('HMAC/RSA confusion: HS256 signed with the public JWK as its secret', 'jwks', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async (f) => inHeader(hs256With(JSON.stringify(f.rsa.jwk), { ...goodClaims('jwks', f), exp: now() + 600 }))),
  bad('HS384 when only HS256 is allowed', 'hmac', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async () => inHeader(await signToken(hmacClaims, { alg: 'HS384', expiresIn: 600 }))),
  bad('RS512 when only RS256 and ES256 are allowed', 'jwks', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async (f) => inHeader(await signWithKey(f.rsa, goodClaims('jwks', f), { alg: 'RS512' }))),
  bad('PS256 when only RS256 and ES256 are allowed', 'jwks', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async (f) => inHeader(await signWithKey(f.rsa, goodClaims('jwks', f), { alg: 'PS256' }))),
  bad('RS256 against an HMAC secret', 'hmac', 401, 'ERR_JOSE_ALG_NOT_ALLOWED',
    async (f) => inHeader(await signWithKey(f.rsa, hmacClaims))),
  // Signatures
  bad('tampered payload (HS256)', 'hmac', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => inHeader(withPayload(await signToken(hmacClaims, { expiresIn: 600 }), { ...hmacClaims, sub: 'admin', exp: now() + 600 }))),
  bad('tampered payload (RS256)', 'jwks', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async (f) => inHeader(withPayload(await signWithKey(f.rsa, goodClaims('jwks', f)), { ...goodClaims('jwks', f), sub: 'admin', exp: now() + 600 }))),
  bad('tampered signature (HS256)', 'hmac', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => inHeader(withTamperedSignature(await signToken(hmacClaims, { expiresIn: 600 })))),
  bad('tampered signature (ES256)', 'jwks', 401, undefined,
    async (f) => inHeader(withTamperedSignature(await signWithKey(f.ec, goodClaims('jwks', f))))),
  bad('signed with another secret', 'hmac', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async () => inHeader(await signToken(hmacClaims, { secret: 'a-different-secret-of-sufficient-length-0123456789', expiresIn: 600 }))),
  bad('an attacker\'s key under a known kid', 'jwks', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async (f) => inHeader(await signWithKey(f.attacker, goodClaims('jwks', f), { header: { kid: f.rsa.kid } }))),
  bad('an attacker\'s key embedded in the header (jwk)', 'jwks', 401, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    async (f) => inHeader(await signWithKey(f.attacker, goodClaims('jwks', f), { header: { kid: f.rsa.kid, jwk: f.attacker.jwk } }))),
  // Keys
  bad('unknown kid', 'jwks', 401, 'ERR_JWKS_NO_MATCHING_KEY',
    async (f) => inHeader(await signWithKey(f.attacker, goodClaims('jwks', f)))),
  bad('unknown kid with a jku pointing at the attacker\'s key set', 'jwks', 401, 'ERR_JWKS_NO_MATCHING_KEY',
    async (f) => inHeader(await signWithKey(f.attacker, goodClaims('jwks', f), { header: { jku: 'https://attacker.example/jwks.json' } }))),
  bad('JWKS endpoint down (503)', 'jwksDown', 500, 'KEY_UNAVAILABLE',
    async (f) => inHeader(await signWithKey(f.rsa, goodClaims('jwks', f)))),
  bad('JWKS endpoint slow (no answer within the timeout)', 'jwksSlow', 500, 'KEY_UNAVAILABLE',
    async (f) => inHeader(await signWithKey(f.rsa, goodClaims('jwks', f)))),
  // Shape
  bad('malformed: two segments', 'hmac', 401, 'ERR_JWS_INVALID',
    async () => inHeader('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0')),
  bad('malformed: four segments', 'hmac', 401, undefined,
    async () => inHeader(`${await signToken(hmacClaims, { expiresIn: 600 })}.extra`)),
  bad('malformed: a payload that is not base64url JSON', 'hmac', 401, undefined,
    async () => inHeader(hs256With(TEST_SECRET, {}).replace(/^([^.]+)\.[^.]+/, '$1.%%%not-base64%%%'))),
  bad('non-JSON header', 'hmac', 401, 'ERR_JWS_INVALID',
    async () => inHeader(`${b64('this is not json')}.${b64(hmacClaims)}.c2ln`)),
  bad('a JSON object instead of a token', 'hmac', 401, undefined,
    async () => inHeader('{"sub":"admin","alg":"none"}')),
  bad('10 KB token', 'hmac', 401, 'TOKEN_TOO_LARGE',
    async () => inHeader(await signToken({ ...hmacClaims, padding: 'x'.repeat(10_240) }, { expiresIn: 600 }))),
  bad('empty value', 'hmac', 401, 'TOKEN_MISSING',
    async () => ({ headers: { Authorization: '' } })),
  bad('"Bearer" with nothing after it', 'hmac', 401, 'TOKEN_MISSING',
    async () => ({ headers: { Authorization: 'Bearer ' } })),
  // Claims
  bad('missing user id claim', 'hmac', 401, 'USER_ID_MISSING',
    async () => inHeader(await signToken({ iss: MATRIX_ISSUER_HMAC, aud: MATRIX_AUDIENCE }, { expiresIn: 600 }))),
  bad('user id claim that is not a string', 'jwks', 401, 'USER_ID_MISSING',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('jwks', f), sub: 42 }))),
  bad('missing required claim (no scope)', 'jwks', 403, 'REQUIRED_CLAIM_MISSING',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('jwks', f), scope: undefined }))),
  bad('required claim without the required value (scope "openid profile chat:connect:extra")', 'jwks', 403, 'REQUIRED_CLAIM_MISSING',
    async (f) => inHeader(await signWithKey(f.ec, { ...goodClaims('jwks', f), scope: 'openid profile chat:connect:extra' }))),
  bad('Cognito: an ID token where access tokens are expected', 'cognito', 401, 'TOKEN_USE_MISMATCH',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('cognito', f), token_use: 'id', aud: MATRIX_CLIENT_ID }))),
  bad('Cognito: an access token of another app client', 'cognito', 401, 'CLIENT_ID_MISMATCH',
    async (f) => inHeader(await signWithKey(f.rsa, { ...goodClaims('cognito', f), client_id: 'client-other' }))),
  // Place
  bad('in the query string where the header is expected', 'hmac', 401, 'TOKEN_MISSING',
    async (f) => ({ query: { token: await goodToken('hmac', f) } })),
  bad('in another header', 'hmac', 401, 'TOKEN_MISSING',
    async (f) => ({ headers: { 'X-Token': await goodToken('hmac', f) } })),
  bad('in the header where the query string is expected', 'query', 401, 'TOKEN_MISSING',
    async (f) => inHeader(await goodToken('query', f))),
  bad('in the header where a subprotocol is expected', 'subprotocol', 401, 'TOKEN_MISSING',
    async (f) => inHeader(await goodToken('subprotocol', f))),
  bad('offered as the only subprotocol, without the protocol name', 'subprotocol', 401, 'TOKEN_MISSING',
    async (f) => ({ protocols: [await goodToken('subprotocol', f)] })),
  bad('the protocol name offered without a token', 'subprotocol', 401, 'TOKEN_MISSING',
    async () => ({ protocols: [MATRIX_SUBPROTOCOL] })),
];
