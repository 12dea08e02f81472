import { createSecretKey, generateKeyPairSync, randomBytes, sign as signBytes, webcrypto } from 'node:crypto';
import { createLocalJWKSet, exportJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { localKeySet } from '../../src/runtime/jwks-key-source';
import { KeyResolver, verifyJwt, type JwtVerifyOptions } from '../../src/runtime/jwt-verify';

/**
 * verifyJwt must take the decisions jose's jwtVerify takes, with the same error codes: every token
 * below is verified both ways with the same key resolver (jose's local key set, as JwksKeySource uses
 * used it before, or an HMAC key imported as HmacKeySource imports it: WebCrypto keys) and again with
 * KeyObjects (JwksKeySource's localKeySet, or a secret KeyObject), and the outcomes compared.
 */

const ISSUER = 'https://issuer.test.example';
const AUDIENCE = 'app';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

type Family = 'HS' | 'RS' | 'PS' | 'ES' | 'EdDSA';
interface Case { readonly alg: string; readonly family: Family; readonly bits?: number }
const CASES: Case[] = [
  { alg: 'HS256', family: 'HS', bits: 256 }, { alg: 'HS384', family: 'HS', bits: 384 }, { alg: 'HS512', family: 'HS', bits: 512 },
  { alg: 'RS256', family: 'RS' }, { alg: 'RS384', family: 'RS' }, { alg: 'RS512', family: 'RS' },
  { alg: 'PS256', family: 'PS' }, { alg: 'PS384', family: 'PS' }, { alg: 'PS512', family: 'PS' },
  { alg: 'ES256', family: 'ES' }, { alg: 'ES384', family: 'ES' }, { alg: 'ES512', family: 'ES' },
  { alg: 'EdDSA', family: 'EdDSA' },
];
const CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

interface Keys { readonly sign: Parameters<SignJWT['sign']>[0]; readonly other: Parameters<SignJWT['sign']>[0]; readonly resolver: KeyResolver }
type KeyKind = 'CryptoKey' | 'KeyObject';

async function keysFor(c: Case, kind: KeyKind): Promise<Keys> {
  if (c.family === 'HS') {
    const secret = randomBytes(64);
    const imported = kind === 'KeyObject' ? createSecretKey(secret)
      : await webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: `SHA-${c.bits}` }, false, ['verify']);
    return { sign: secret, other: randomBytes(64), resolver: async () => imported };
  }
  const pair = () => c.family === 'ES' ? generateKeyPairSync('ec', { namedCurve: CURVES[c.alg] })
    : c.family === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const mine = pair();
  const other = pair();
  const jwks = { keys: [{ ...(await exportJWK(mine.publicKey)), kid: 'k1' } as JWK] };
  return { sign: mine.privateKey, other: other.privateKey, resolver: (kind === 'KeyObject' ? localKeySet(jwks) : createLocalJWKSet(jwks)) as KeyResolver };
}

function sign(alg: string, key: Parameters<SignJWT['sign']>[0], claims: JWTPayload = {}, header: Record<string, unknown> = {}) {
  const jwt = new SignJWT({ sub: 'user-1', iss: ISSUER, aud: AUDIENCE, ...claims }).setProtectedHeader({ alg, kid: 'k1', ...header } as never);
  if (!('exp' in claims)) jwt.setExpirationTime('1h');
  return jwt.sign(key);
}

/** What a verification came to: the payload, or the error's code (or class, for jose's TypeErrors). */
async function outcome(run: () => Promise<JWTPayload>): Promise<unknown> {
  try {
    return { accepted: await run() };
  } catch (err) {
    return { refused: (err as { code?: string }).code ?? (err as Error).name };
  }
}

async function compare(token: string, resolver: KeyResolver, options: JwtVerifyOptions) {
  const ours = await outcome(() => verifyJwt(token, resolver, options));
  const joseOptions = { ...options, algorithms: [...options.algorithms], audience: options.audience ? [...options.audience] : undefined };
  const jose = await outcome(async () => (await jwtVerify(token, resolver, joseOptions)).payload);
  expect(ours).toEqual(jose);
  return ours as { accepted?: JWTPayload; refused?: string };
}

function tamperPayload(token: string): string {
  const [h, , s] = token.split('.');
  return `${h}.${b64({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })}.${s}`;
}

function flipSignature(token: string): string {
  const [h, p, s] = token.split('.');
  const bytes = Buffer.from(s, 'base64url');
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = bytes[middle] === 0x41 ? 0x42 : 0x41;
  return `${h}.${p}.${bytes.toString('base64url')}`;
}

function withHeader(token: string, header: Record<string, unknown>): string {
  const [, p, s] = token.split('.');
  return `${b64(header)}.${p}.${s}`;
}

describe.each(CASES.flatMap((c) => (['CryptoKey', 'KeyObject'] as const).map((kind) => ({ ...c, kind }))))('$alg with a $kind: the same decisions as jose', (c) => {
  let keys: Keys;
  const options: JwtVerifyOptions = { algorithms: [c.alg], issuer: ISSUER, audience: [AUDIENCE], clockTolerance: 5 };
  beforeAll(async () => { keys = await keysFor(c, c.kind); });

  test('accepts a valid token with the same payload, without WebCrypto', async () => {
    const subtleVerify = jest.spyOn(globalThis.crypto.subtle, 'verify');
    try {
      const token = await sign(c.alg, keys.sign);
      const result = await compare(token, keys.resolver, options);
      expect(result.accepted?.sub).toBe('user-1');
      // jose verified once through WebCrypto (in compare); verifyJwt must not have.
      subtleVerify.mockClear();
      await verifyJwt(token, keys.resolver, options);
      expect(subtleVerify).not.toHaveBeenCalled();
    } finally {
      subtleVerify.mockRestore();
    }
  });

  test.each([
    ['a tampered payload', (t: string) => tamperPayload(t)],
    ['a flipped signature bit', (t: string) => flipSignature(t)],
    ['a truncated signature', (t: string) => `${t.slice(0, t.lastIndexOf('.') + 1)}${t.split('.')[2].slice(0, 20)}`],
    ['an empty signature', (t: string) => `${t.slice(0, t.lastIndexOf('.') + 1)}`],
    ['alg none', (t: string) => withHeader(t, { alg: 'none', kid: 'k1' })],
    ['a crit header', (t: string) => withHeader(t, { alg: c.alg, kid: 'k1', crit: ['exp'] })],
    ['two parts', (t: string) => t.split('.').slice(0, 2).join('.')],
    ['a header that is not JSON', (t: string) => `bm90IGpzb24.${t.split('.')[1]}.${t.split('.')[2]}`],
  ])('refuses %s with jose\'s error', async (_name, mangle) => {
    const result = await compare(mangle(await sign(c.alg, keys.sign)), keys.resolver, options);
    expect(result.refused).toBeDefined();
  });

  test('refuses a token signed by another key', async () => {
    const result = await compare(await sign(c.alg, keys.other), keys.resolver, options);
    expect(result.refused).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  test('refuses an algorithm that is not allowed, before resolving the key', async () => {
    const resolver = jest.fn(keys.resolver);
    const allowed = { ...options, algorithms: [c.alg === 'HS256' ? 'HS384' : 'HS256'] };
    const result = await compare(await sign(c.alg, keys.sign), resolver, allowed);
    expect(result.refused).toBe('ERR_JOSE_ALG_NOT_ALLOWED');
    expect(resolver).not.toHaveBeenCalled();
  });

  test.each([
    ['expired', { exp: Math.floor(Date.now() / 1000) - 60 }, 'ERR_JWT_EXPIRED'],
    ['not yet valid', { nbf: Math.floor(Date.now() / 1000) + 600 }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['for another audience', { aud: 'other' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['from another issuer', { iss: 'https://evil.example' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
  ])('runs jose\'s claim checks: refuses a token %s', async (_name, claims, code) => {
    const token = await sign(c.alg, keys.sign, claims);
    const result = await compare(token, keys.resolver, options);
    expect(result.refused).toBe(code);
  });
});

describe('the key must fit the algorithm exactly as jose requires', () => {
  test('an RS256 header over a key imported for RS384 is refused', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs384 = await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' }, false, ['verify']);
    const token = await sign('RS256', privateKey);
    const result = await compare(token, async () => rs384, { algorithms: ['RS256'], issuer: ISSUER, audience: [AUDIENCE], clockTolerance: 0 });
    expect(result.refused).toBe('TypeError');
  });

  test('an RSA key under 2048 bits is refused even with a valid signature', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weak = await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
    const token = `${b64({ alg: 'RS256' })}.${b64({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 60 })}`;
    const signed = `${token}.${signBytes('sha256', Buffer.from(token), privateKey).toString('base64url')}`;
    const result = await compare(signed, async () => weak, { algorithms: ['RS256'], clockTolerance: 0 });
    expect(result.refused).toBe('TypeError');
  });

  test('an ES256 header over a P-384 key is refused', async () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const wrongCurve = await webcrypto.subtle.importKey('spki', p384.publicKey.export({ type: 'spki', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
    const result = await compare(await sign('ES256', p256.privateKey), async () => wrongCurve, { algorithms: ['ES256'], clockTolerance: 0 });
    expect(result.refused).toBe('TypeError');
  });

  test('an ES256 signature in DER (not r || s) is refused', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = await webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const input = `${b64({ alg: 'ES256' })}.${b64({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 60 })}`;
    const der = `${input}.${signBytes('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    const p1363 = `${input}.${signBytes('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    expect((await compare(der, async () => key, { algorithms: ['ES256'], clockTolerance: 0 })).refused).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect((await compare(p1363, async () => key, { algorithms: ['ES256'], clockTolerance: 0 })).accepted?.sub).toBe('u');
  });

  test('an HMAC key given as bytes still verifies (through jose)', async () => {
    const secret = randomBytes(32);
    const token = await sign('HS256', secret);
    expect((await compare(token, async () => secret, { algorithms: ['HS256'], issuer: ISSUER, audience: [AUDIENCE], clockTolerance: 0 })).accepted?.sub).toBe('user-1');
    expect((await compare(flipSignature(token), async () => secret, { algorithms: ['HS256'], clockTolerance: 0 })).refused).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });
});

describe('localKeySet picks the key jose\'s createLocalJWKSet picks', () => {
  let rsa: JWK; let rsa2: JWK; let p256: JWK; let p384: JWK; let ed: JWK; let privateRsa: JWK;
  beforeAll(async () => {
    const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    rsa = await exportJWK(rsaPair.publicKey);
    privateRsa = await exportJWK(rsaPair.privateKey);
    rsa2 = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
    p256 = await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    p384 = await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey);
    ed = await exportJWK(generateKeyPairSync('ed25519').publicKey);
  });

  /** The error code, or which member was chosen (by its exported public JWK). */
  async function choice(resolver: KeyResolver, header: Record<string, unknown>): Promise<string> {
    try {
      const key = await resolver(header as never, { protected: '', payload: '', signature: '' });
      const jwk = key instanceof Uint8Array ? {} : 'export' in key ? key.export({ format: 'jwk' }) : await webcrypto.subtle.exportKey('jwk', key);
      return `chose ${(jwk as { n?: string; x?: string }).n?.slice(0, 16) ?? (jwk as { x?: string }).x?.slice(0, 16)}`;
    } catch (err) {
      return (err as { code?: string }).code ?? (err as Error).name;
    }
  }

  test.each<[string, () => JWK[], Record<string, unknown>]>([
    ['the member with the kid', () => [{ ...rsa, kid: 'a' }, { ...rsa2, kid: 'b' }], { alg: 'RS256', kid: 'b' }],
    ['no kid in the token, two RSA members', () => [{ ...rsa, kid: 'a' }, { ...rsa2, kid: 'b' }], { alg: 'RS256' }],
    ['no kid in the token, one RSA member among others', () => [{ ...rsa, kid: 'a' }, { ...p256, kid: 'b' }], { alg: 'RS256' }],
    ['an unknown kid', () => [{ ...rsa, kid: 'a' }], { alg: 'RS256', kid: 'zzz' }],
    ['a member pinned to another alg', () => [{ ...rsa, kid: 'a', alg: 'RS512' }], { alg: 'RS256', kid: 'a' }],
    ['a member for encryption', () => [{ ...rsa, kid: 'a', use: 'enc' }], { alg: 'RS256', kid: 'a' }],
    ['key_ops without verify', () => [{ ...rsa, kid: 'a', key_ops: ['encrypt'] }], { alg: 'RS256', kid: 'a' }],
    ['key_ops with verify', () => [{ ...rsa, kid: 'a', key_ops: ['verify'] }], { alg: 'PS256', kid: 'a' }],
    ['ES256 with a P-384 member', () => [{ ...p384, kid: 'a' }], { alg: 'ES256', kid: 'a' }],
    ['ES384 with a P-384 member', () => [{ ...p384, kid: 'a' }, { ...p256, kid: 'a' }], { alg: 'ES384', kid: 'a' }],
    ['EdDSA', () => [{ ...ed, kid: 'a' }, { ...rsa, kid: 'a' }], { alg: 'EdDSA', kid: 'a' }],
    ['an HMAC alg', () => [{ kty: 'oct', k: 'c2VjcmV0', kid: 'a' }], { alg: 'HS256', kid: 'a' }],
    ['no alg', () => [{ ...rsa, kid: 'a' }], { kid: 'a' }],
    ['a private member', () => [{ ...privateRsa, kid: 'a' }], { alg: 'RS256', kid: 'a' }],
  ])('%s', async (_name, members, header) => {
    const jwks = { keys: members() };
    expect(await choice(localKeySet(jwks), header)).toEqual(await choice(createLocalJWKSet(jwks) as KeyResolver, header));
  });
});
