import { createSecretKey, KeyObject, webcrypto } from 'node:crypto';
import { Defaults } from './environment';
import { KeyUnavailableError } from './key-source';
import { readSecretString } from './secret-reader';

/** How long a fetched secret is used, and how often a bad signature may fetch it again. */
export interface HmacKeySourceOptions {
  /** Milliseconds a fetched secret is used before it is read again. @default Defaults.SECRET_MAX_AGE_MS */
  readonly maxAgeMs?: number;
  /**
   * Milliseconds after a fetch during which neither a bad signature nor a failed refresh fetches
   * again. @default Defaults.SECRET_REFRESH_COOLDOWN_MS
   */
  readonly refreshCooldownMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** One fetched value of the secret, with its WebCrypto imports. */
interface Generation {
  readonly key: KeyObject;
  readonly fetchedAt: number;
  readonly imported: Map<string, Promise<webcrypto.CryptoKey>>;
}

/**
 * The HMAC key behind the authorizer, read from Secrets Manager.
 *
 * WebSocket authorizers have no result cache, so the authorizer runs on every connect: the secret
 * is kept by the container and a pending fetch is shared, so concurrent calls make a single request.
 * A failed first fetch is forgotten, so the next connect tries again instead of refusing everyone
 * until the container is recycled.
 *
 * Rotation: a warm container must not trust a secret forever, or a rotated (say, leaked) secret
 * would keep working as long as the container lives. The secret is read again once it is older than
 * `maxAgeMs` (5 minutes), and at once when a token's signature does not verify (`refreshAfterFailure`),
 * at most once per `refreshCooldownMs` (30 seconds), so a flood of bad tokens costs one read per
 * cooldown. A failed refresh keeps the secret it has and tries again after the cooldown: an outage
 * of Secrets Manager does not refuse every connect.
 */
export class HmacKeySource {
  private current: Generation | undefined;
  private pending: Promise<Generation> | undefined;
  private lastFetch = Number.NEGATIVE_INFINITY;
  private readonly maxAgeMs: number;
  private readonly refreshCooldownMs: number;
  private readonly now: () => number;

  /** @param secretId ARN (or name) of a secret whose SecretString is the key. */
  constructor(private readonly secretId: string, options: HmacKeySourceOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? Defaults.SECRET_MAX_AGE_MS;
    this.refreshCooldownMs = options.refreshCooldownMs ?? Defaults.SECRET_REFRESH_COOLDOWN_MS;
    this.now = options.now ?? (() => Date.now());
  }

  async key(): Promise<KeyObject> {
    return (await this.generation()).key;
  }

  /**
   * The key as a WebCrypto key for `alg` (HS256, HS384 or HS512), imported once per algorithm and
   * secret value. `verifyJwt` turns it into a KeyObject once and checks signatures with node:crypto;
   * the tokens it hands to jose instead (unusual headers) are verified with this key as it is.
   */
  async verificationKey(alg: string): Promise<webcrypto.CryptoKey> {
    const hash = HMAC_HASHES[alg];
    if (!hash) throw new Error(`${alg} is not an HMAC algorithm`);
    let generation: Generation;
    try {
      generation = await this.generation();
    } catch (err) {
      throw err instanceof KeyUnavailableError ? err : new KeyUnavailableError(err instanceof Error ? err.name : typeof err);
    }
    let imported = generation.imported.get(alg);
    if (!imported) {
      imported = webcrypto.subtle.importKey('raw', generation.key.export(), { name: 'HMAC', hash }, false, ['verify']);
      generation.imported.set(alg, imported);
      imported.catch(() => { if (generation.imported.get(alg) === imported) generation.imported.delete(alg); });
    }
    return imported;
  }

  /**
   * A signature did not verify: perhaps the secret was rotated. Reads it again unless it was read
   * within the cooldown, and resolves to true when the value changed (the token is worth verifying
   * again), false otherwise.
   */
  async refreshAfterFailure(): Promise<boolean> {
    const before = this.current;
    if (!before || this.now() - this.lastFetch < this.refreshCooldownMs) return false;
    try {
      const after = await this.fetchShared();
      return !after.key.equals(before.key);
    } catch {
      return false;
    }
  }

  /** The secret to verify with now: fetched on first use, and again once older than the max age. */
  private async generation(): Promise<Generation> {
    const current = this.current;
    if (!current) return this.fetchShared();
    if (this.now() - current.fetchedAt < this.maxAgeMs) return current;
    // Stale: read it again (once, shared), unless a read failed within the cooldown.
    if (!this.pending && this.now() - this.lastFetch < this.refreshCooldownMs) return current;
    try {
      return await this.fetchShared();
    } catch {
      return current;
    }
  }

  private fetchShared(): Promise<Generation> {
    if (!this.pending) {
      this.lastFetch = this.now();
      const pending = this.fetch().then((generation) => {
        this.current = generation;
        return generation;
      });
      this.pending = pending;
      const forget = () => { if (this.pending === pending) this.pending = undefined; };
      pending.then(forget, forget);
    }
    return this.pending;
  }

  private async fetch(): Promise<Generation> {
    // The environment is read on each fetch, so the endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER locally) is read then.
    const secretString = await readSecretString(this.secretId, { env: process.env });
    return { key: createSecretKey(Buffer.from(secretString, 'utf8')), fetchedAt: this.now(), imported: new Map() };
  }
}

const HMAC_HASHES: Readonly<Record<string, string>> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

const sources = new Map<string, HmacKeySource>();

/** The container-wide key source for `secretId`, so every invocation shares one fetch. */
export function hmacKeySource(secretId: string): HmacKeySource {
  let source = sources.get(secretId);
  if (!source) {
    source = new HmacKeySource(secretId);
    sources.set(secretId, source);
  }
  return source;
}
