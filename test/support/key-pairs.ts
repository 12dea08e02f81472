import { createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';

/** A signing key of an identity provider, with the public JWK its key set publishes. */
export interface TestKeyPair {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: JWK;
}

/** A fresh RSA (2048 bits) or P-256 key pair; `kid` names it in the key set. */
export async function newKeyPair(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<TestKeyPair> {
  const { privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = createPublicKey(privateKey);
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface AsymmetricSignOptions {
  /** Seconds from now; negative for a token that has already expired. @default 600 */
  readonly expiresIn?: number;
  /** Seconds from now before which the token is not valid. */
  readonly notBeforeIn?: number;
  /** Overrides the algorithm in the header (e.g. RS512 with an RSA key). */
  readonly alg?: string;
  /** Extra protected header parameters (`kid` overrides the pair's). */
  readonly header?: Record<string, unknown>;
}

/** Signs a JWT the way an OIDC issuer holding `pair` would. */
export async function signWithKey(pair: TestKeyPair, claims: Record<string, unknown>, options: AsymmetricSignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims as JWTPayload)
    .setProtectedHeader({ alg: options.alg ?? pair.alg, typ: 'JWT', kid: pair.kid, ...options.header })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 600));
  if (options.notBeforeIn !== undefined) jwt.setNotBefore(now + options.notBeforeIn);
  return jwt.sign(pair.privateKey);
}
