import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { errors, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { Defaults } from './environment';
import { KeyUnavailableError } from './key-source';

export { KeyUnavailableError };

export interface JwksKeySourceOptions {
  /** Milliseconds one fetch may take. @default Defaults.JWKS_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Milliseconds after a fetch before an unknown `kid` may trigger another. @default Defaults.JWKS_COOLDOWN_MS */
  readonly cooldownMs?: number;
  /** Milliseconds after which a key set is refetched on next use. @default Defaults.JWKS_MAX_AGE_MS */
  readonly maxAgeMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

type KeyResolver = (header: JWSHeaderParameters, token?: FlattenedJWSInput) => Promise<KeyObject>;

/**
 * The public keys of an OIDC issuer, from its JWKS URL.
 *
 * WebSocket authorizers run on every connect, so the key set lives in the module scope: fetched
 * once per container (concurrent first connects share one request), each fetch bounded by a timeout.
 * A token whose `kid` is not in the set triggers a refetch (the issuer may have rotated its keys),
 * at most once per cooldown, so a flood of made-up `kid`s costs the issuer one request per cooldown.
 * A failed fetch keeps the keys already held; with none held, the next connect tries again.
 * Keys are imported once each per algorithm, as node:crypto KeyObjects (see `localKeySet`).
 */
export class JwksKeySource {
  /** Fetches attempted so far (for tests and the benchmark). */
  fetches = 0;

  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private resolver: KeyResolver | undefined;
  /** When the key set held was fetched. */
  private fetchedAt = Number.NEGATIVE_INFINITY;
  /** When the last fetch started, successful or not: the cooldown counts from it. */
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(readonly url: string, options: JwksKeySourceOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? Defaults.JWKS_TIMEOUT_MS;
    this.cooldownMs = options.cooldownMs ?? Defaults.JWKS_COOLDOWN_MS;
    this.maxAgeMs = options.maxAgeMs ?? Defaults.JWKS_MAX_AGE_MS;
    this.now = options.now ?? Date.now;
  }

  /** jose's key-resolving function: the key for a token's protected header. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (!this.resolver) {
      await this.refresh();
    } else if (this.now() - this.fetchedAt > this.maxAgeMs && !this.coolingDown()) {
      await this.refresh().catch(() => undefined); // stale keys beat no keys
    }
    try {
      return await this.resolver!(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || this.coolingDown()) throw err;
      await this.refresh().catch(() => undefined);
      return this.resolver!(header, token);
    }
  };

  /** Whether a fetch started less than a cooldown ago. */
  coolingDown(): boolean {
    return this.now() - this.attemptedAt < this.cooldownMs;
  }

  /** Fetches the key set now (one fetch however many callers); resolves once it is held. */
  refresh(): Promise<void> {
    if (!this.pending) {
      const pending = this.fetch().finally(() => {
        if (this.pending === pending) this.pending = undefined;
      });
      this.pending = pending;
    }
    return this.pending;
  }

  private async fetch(): Promise<void> {
    this.fetches += 1;
    const attemptedAt = this.now();
    this.attemptedAt = attemptedAt;
    let body: unknown;
    try {
      body = JSON.parse(await getText(this.url, this.timeoutMs));
    } catch (err) {
      if (err instanceof KeyUnavailableError) throw err;
      const name = (err as { name?: string } | undefined)?.name;
      throw new KeyUnavailableError(name === 'TimeoutError' || name === 'AbortError' ? 'TIMEOUT' : name === 'SyntaxError' ? 'NOT_JSON' : 'FETCH_FAILED');
    }
    if (!isKeySet(body)) throw new KeyUnavailableError('NOT_A_KEY_SET');
    this.resolver = localKeySet(body);
    this.fetchedAt = attemptedAt;
  }
}

/** Largest key set accepted: real ones hold a few keys (a few KB). */
const MAX_KEY_SET_BYTES = 512 * 1024;

/**
 * GETs `url` and resolves with its body when the answer is 200, within `timeoutMs` for the whole
 * exchange. node:http(s) rather than fetch: fetch loads undici on first use, tens of milliseconds of
 * every cold start. Redirects are not followed: the key set decides who may connect.
 */
function getText(url: string, timeoutMs: number): Promise<string> {
  const signal = AbortSignal.timeout(timeoutMs);
  // node:https (and TLS under it) loads on the first https fetch, not with the module: a few
  // milliseconds of every cold start otherwise, for tests and local runs on http too.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const get: typeof httpGet = url.startsWith('https:') ? require('node:https').get : httpGet;
  return new Promise<string>((resolve, reject) => {
    const request = get(url, { signal, headers: { accept: 'application/json, application/jwk-set+json' } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new KeyUnavailableError(`HTTP_${response.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_KEY_SET_BYTES) request.destroy(new KeyUnavailableError('TOO_LARGE'));
        else chunks.push(chunk);
      });
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      response.on('error', reject);
    });
    request.on('error', (err) => reject(signal.aborted ? signal.reason : err));
  });
}

function isKeySet(value: unknown): value is JSONWebKeySet {
  const keys = (value as { keys?: unknown } | null)?.keys;
  return Array.isArray(keys) && keys.every(isPlainObject);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

/** What a JWS algorithm needs of a key set member (jose's table: key type, and the curve for EC and OKP). */
const KEY_SET_ALGORITHMS: Readonly<Record<string, { readonly kty: string; readonly crv?: string }>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
};

/**
 * jose's `createLocalJWKSet`, same choice of key and same errors, with keys imported as node:crypto
 * KeyObjects (`createPublicKey`, synchronous) rather than through WebCrypto, whose first import costs
 * a cold start about 3 ms. A member is usable for a token when its `kty` (and `crv`) fits the token's
 * `alg`, its `kid` equals the token's when the token names one, its `alg` (if any) equals the token's,
 * its `use` (if any) is `sig` and its `key_ops` (if any) include `verify`. No usable member:
 * JWKSNoMatchingKey; more than one: JWKSMultipleMatchingKeys; a private member: JWKSInvalid.
 */
export function localKeySet(jwks: JSONWebKeySet): KeyResolver {
  const keys: JWK[] = structuredClone(jwks.keys);
  const imported = new Map<JWK, Map<string, KeyObject>>();
  return async (header) => {
    const { alg, kid } = header;
    const needs = typeof alg === 'string' ? KEY_SET_ALGORITHMS[alg] : undefined;
    if (!needs) throw new errors.JOSENotSupported('Unsupported "alg" value for a JSON Web Key Set');
    const candidates = keys.filter((jwk) => usable(jwk, needs, alg!, kid));
    if (candidates.length === 0) throw new errors.JWKSNoMatchingKey();
    if (candidates.length > 1) throw new errors.JWKSMultipleMatchingKeys();
    const jwk = candidates[0];
    let byAlg = imported.get(jwk);
    if (!byAlg) imported.set(jwk, byAlg = new Map());
    let key = byAlg.get(alg!);
    if (!key) {
      if (jwk.d !== undefined || (jwk as { priv?: unknown }).priv !== undefined) throw new errors.JWKSInvalid('JSON Web Key Set members must be public keys');
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      byAlg.set(alg!, key);
    }
    return key;
  };
}

function usable(jwk: JWK, needs: { kty: string; crv?: string }, alg: string, kid: string | undefined): boolean {
  const ops = jwk.key_ops;
  return (jwk.ext === undefined || typeof jwk.ext === 'boolean')
    && (ops === undefined || (Array.isArray(ops) && ops.every((op, i) => typeof op === 'string' && ops.indexOf(op) === i) && ops.includes('verify')))
    && jwk.kty === needs.kty
    && (kid === undefined || (typeof kid === 'string' && kid === jwk.kid))
    && (jwk.alg === undefined || jwk.alg === alg)
    && (jwk.use === undefined || jwk.use === 'sig')
    && (!needs.crv || jwk.crv === needs.crv);
}

const sources = new Map<string, JwksKeySource>();

/** The container-wide key source for `url`, so every invocation shares one key set. */
export function jwksKeySource(url: string, options: JwksKeySourceOptions = {}): JwksKeySource {
  let source = sources.get(url);
  if (!source) {
    source = new JwksKeySource(url, options);
    sources.set(url, source);
  }
  return source;
}
