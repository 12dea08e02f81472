import { createSecretKey, KeyObject } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * The HMAC key behind the authorizer, read from Secrets Manager.
 *
 * WebSocket authorizers have no result cache, so the authorizer runs on every connect: the secret
 * is fetched once per container and the pending promise is shared, so concurrent first calls make a
 * single request. A failed fetch is forgotten, so the next connect tries again instead of refusing
 * everyone until the container is recycled.
 */
export class HmacKeySource {
  private client: SecretsManagerClient | undefined;
  private pending: Promise<KeyObject> | undefined;

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

  private async fetch(): Promise<KeyObject> {
    // Created on first use, so the endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER locally) is read then.
    this.client ??= new SecretsManagerClient({});
    const { SecretString } = await this.client.send(new GetSecretValueCommand({ SecretId: this.secretId }));
    if (!SecretString) throw new Error('The HMAC secret has no SecretString');
    return createSecretKey(Buffer.from(SecretString, 'utf8'));
  }
}

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
