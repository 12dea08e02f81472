import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
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

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/**
 * The public keys of an OIDC issuer, from its JWKS URL.
 *
 * WebSocket authorizers run on every connect, so the key set lives in the module scope: fetched
 * once per container (concurrent first connects share one request), each fetch bounded by a timeout.
 * A token whose `kid` is not in the set triggers a refetch (the issuer may have rotated its keys),
 * at most once per cooldown, so a flood of made-up `kid`s costs the issuer one request per cooldown.
 * A failed fetch keeps the keys already held; with none held, the next connect tries again.
 * Keys are imported once each (jose's local key set caches them).
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
    this.resolver = createLocalJWKSet(body);
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
  const get = url.startsWith('https:') ? httpsGet : httpGet;
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
  return Array.isArray(keys) && keys.every((key) => typeof key === 'object' && key !== null);
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
