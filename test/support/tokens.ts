import { createSecretKey } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

export const TEST_SECRET = 'a-test-hmac-secret-that-is-long-enough-for-hs512-0123456789abcdef';

export interface SignOptions {
  readonly secret?: string;
  readonly alg?: 'HS256' | 'HS384' | 'HS512';
  /** Seconds from now; negative for a token that has already expired; `null`: no `exp`. @default 3600 */
  readonly expiresIn?: number | null;
  /** Seconds from now before which the token is not valid. */
  readonly notBeforeIn?: number;
}

/** Any claims, well-typed or not: tests sign malformed ones (`sub: 42`) on purpose. */
export type Claims = Record<string, unknown>;

/** Signs a JWT the way an identity provider sharing our HMAC secret would. */
export async function signToken(claims: Claims, options: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' }).setIssuedAt(now);
  const expiresIn = options.expiresIn === undefined ? 3600 : options.expiresIn;
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn);
  if (options.notBeforeIn !== undefined) jwt.setNotBefore(now + options.notBeforeIn);
  return jwt.sign(createSecretKey(Buffer.from(options.secret ?? TEST_SECRET, 'utf8')));
}

/** An unsigned token (`alg: none`), as an attacker would send it. */
export function unsignedToken(claims: Claims): string {
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
}

/** `token` with its payload replaced but its original signature kept. */
export function withPayload(token: string, claims: Claims): string {
  const [header, , signature] = token.split('.');
  return `${header}.${base64url(claims)}.${signature}`;
}

/** `token` with one character of its signature changed. */
export function withTamperedSignature(token: string): string {
  const [header, payload, signature] = token.split('.');
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
  return `${header}.${payload}.${flipped}`;
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}
