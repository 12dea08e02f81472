import { createSecretKey, KeyObject, webcrypto } from 'node:crypto';
import { KeyUnavailableError } from './key-source';
import { readSecretString } from './secret-reader';

/**
 * The HMAC key behind the authorizer, read from Secrets Manager.
 *
 * WebSocket authorizers have no result cache, so the authorizer runs on every connect: the secret
 * is fetched once per container and the pending promise is shared, so concurrent first calls make a
 * single request. A failed fetch is forgotten, so the next connect tries again instead of refusing
 * everyone until the container is recycled.
 */
export class HmacKeySource {
  private pending: Promise<KeyObject> | undefined;
  private readonly verificationKeys = new Map<string, Promise<webcrypto.CryptoKey>>();

  /** @param secretId ARN (or name) of a secret whose SecretString is the key. */
  constructor(private readonly secretId: string) {}

  key(): Promise<KeyObject> {
    if (!this.pending) {
      const pending = this.fetch();
      this.pending = pending;
      pending.catch(() => {
        if (this.pending === pending) this.pending = undefined;
      });
    }
    return this.pending;
  }

  /**
   * The key as a WebCrypto key for `alg` (HS256, HS384 or HS512), imported once per algorithm.
   * jose runs on WebCrypto: a key imported once verifies about 1.5 times as fast as raw bytes or a
   * KeyObject, which it would import again on every call.
   */
  verificationKey(alg: string): Promise<webcrypto.CryptoKey> {
    const hash = HMAC_HASHES[alg];
    if (!hash) return Promise.reject(new Error(`${alg} is not an HMAC algorithm`));
    let pending = this.verificationKeys.get(alg);
    if (!pending) {
      pending = this.key().catch((err: unknown) => {
        throw err instanceof KeyUnavailableError ? err : new KeyUnavailableError(err instanceof Error ? err.name : typeof err);
      }).then((key) => webcrypto.subtle.importKey('raw', key.export(), { name: 'HMAC', hash }, false, ['verify']));
      this.verificationKeys.set(alg, pending);
      pending.catch(() => { if (this.verificationKeys.get(alg) === pending) this.verificationKeys.delete(alg); });
    }
    return pending;
  }

  private async fetch(): Promise<KeyObject> {
    // The environment is read on first use, so the endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER locally) is read then.
    const secretString = await readSecretString(this.secretId, { env: process.env });
    return createSecretKey(Buffer.from(secretString, 'utf8'));
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
