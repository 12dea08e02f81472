import { createHash, createHmac, createSecretKey, Hash, Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { HmacKeySource, hmacKeySource } from '../../src/runtime/hmac-key-source';
import { signedHeaders } from '../../src/runtime/secret-reader';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { SecretsServer } from '../support/secrets-server';

let secrets: SecretsServer;

beforeAll(async () => {
  useDummyAwsEnvironment();
  secrets = await SecretsServer.start();
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
});

afterAll(async () => {
  await secrets.stop();
});

test('imports the SecretString as an HMAC key, asking for the secret by its ARN with a signed request', async () => {
  const arn = secrets.put('key-import', 'päss-wörd');
  const key = await new HmacKeySource(arn).key();
  expect(key.type).toBe('secret');
  expect(key.equals(createSecretKey(Buffer.from('päss-wörd', 'utf8')))).toBe(true);
  expect(secrets.requestedIds).toContain(arn);
  expect(secrets.authorizations.at(-1)).toMatch(/\/us-east-1\/secretsmanager\/aws4_request/);
});

test('fetches once however many callers, concurrent or not', async () => {
  const arn = secrets.put('fetch-once', 'k');
  const source = new HmacKeySource(arn);
  const before = secrets.calls;
  const keys = await Promise.all(Array.from({ length: 10 }, () => source.key()));
  for (let i = 0; i < 10; i++) keys.push(await source.key());
  expect(secrets.calls - before).toBe(1);
  expect(new Set(keys).size).toBe(1);
});

test('a failed fetch is not cached: the next call tries again', async () => {
  const arn = secrets.put('retry', 'k');
  const source = new HmacKeySource(arn);
  secrets.setOutage(true);
  await expect(source.key()).rejects.toThrow();
  const afterOutage = secrets.calls;
  secrets.setOutage(false);
  await expect(source.key()).resolves.toBeDefined();
  expect(secrets.calls).toBe(afterOutage + 1);
});

describe('re-reading the secret', () => {
  let clock = 1_000_000;
  const now = () => clock;

  test('after the max age only; a failed re-read keeps the old key and waits out the cooldown', async () => {
    const arn = secrets.put('max-age', 'v1');
    const source = new HmacKeySource(arn, { maxAgeMs: 300_000, refreshCooldownMs: 30_000, now });
    const first = await source.key();
    const before = secrets.calls;
    clock += 299_999;
    expect(await source.key()).toBe(first);
    expect(secrets.calls).toBe(before);

    secrets.put('max-age', 'v2');
    clock += 1;
    expect((await source.key()).equals(createSecretKey(Buffer.from('v2', 'utf8')))).toBe(true);
    expect(secrets.calls).toBe(before + 1);

    clock += 300_000;
    secrets.setOutage(true);
    try {
      const kept = await source.key();
      expect(kept.equals(createSecretKey(Buffer.from('v2', 'utf8')))).toBe(true);
      const afterFailure = secrets.calls;
      clock += 10_000;
      await source.key(); // within the cooldown: no new read
      expect(secrets.calls).toBe(afterFailure);
    } finally {
      secrets.setOutage(false);
    }
    clock += 20_000;
    await source.key();
    expect(secrets.calls).toBeGreaterThan(before + 1);
  });

  test('refreshAfterFailure reads again at most once per cooldown and says whether the key changed', async () => {
    const arn = secrets.put('on-failure', 'v1');
    const source = new HmacKeySource(arn, { maxAgeMs: 300_000, refreshCooldownMs: 30_000, now });
    expect(await source.refreshAfterFailure()).toBe(false); // nothing read yet: nothing to refresh
    const v1 = await source.verificationKey('HS256');
    const before = secrets.calls;
    expect(await source.refreshAfterFailure()).toBe(false); // within the cooldown
    expect(secrets.calls).toBe(before);
    clock += 30_000;
    expect(await source.refreshAfterFailure()).toBe(false); // read again, unchanged
    expect(secrets.calls).toBe(before + 1);
    secrets.put('on-failure', 'v2');
    clock += 30_000;
    expect(await source.refreshAfterFailure()).toBe(true);
    expect(await source.verificationKey('HS256')).not.toBe(v1); // imported again for the new value
  });
});

test('a secret that does not exist is an error, not an empty key', async () => {
  await expect(new HmacKeySource('arn:aws:secretsmanager:us-east-1:123456789012:secret:missing').key())
    .rejects.toMatchObject({ name: 'KeyUnavailableError', reason: 'ResourceNotFoundException' });
});

test('an empty SecretString is refused rather than used as a key', async () => {
  await expect(new HmacKeySource(secrets.put('empty', '')).key()).rejects.toThrow(/NO_SECRET_STRING/);
});

test('the container shares one source per secret', () => {
  expect(hmacKeySource('arn:a')).toBe(hmacKeySource('arn:a'));
  expect(hmacKeySource('arn:a')).not.toBe(hmacKeySource('arn:b'));
});

test('without credentials in the environment the key is unavailable, and nothing is sent', async () => {
  const arn = secrets.put('no-credentials', 'k');
  const saved = process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_ACCESS_KEY_ID;
  const before = secrets.calls;
  try {
    await expect(new HmacKeySource(arn).key()).rejects.toMatchObject({ reason: 'NO_CREDENTIALS' });
  } finally {
    process.env.AWS_ACCESS_KEY_ID = saved;
  }
  expect(secrets.calls).toBe(before);
});

test('sends the session token of temporary credentials, as Lambda roles have', async () => {
  const arn = secrets.put('session', 'k');
  process.env.AWS_SESSION_TOKEN = 'session-token-example';
  try {
    await new HmacKeySource(arn).key();
  } finally {
    delete process.env.AWS_SESSION_TOKEN;
  }
  expect(secrets.authorizations.at(-1)).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
});

/** The SHA-256 the SDK's signer takes, from node:crypto (the SDK itself plugs in the same in Node). */
class Sha256 {
  private hash: Hash | Hmac;
  private readonly secret?: string | Buffer;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined || typeof secret === 'string' ? secret
      : ArrayBuffer.isView(secret) ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength) : Buffer.from(secret);
    this.hash = this.fresh();
  }
  update(data: string | Uint8Array): void { this.hash.update(data); }
  async digest(): Promise<Uint8Array> { return this.hash.digest(); }
  reset(): void { this.hash = this.fresh(); }
  private fresh(): Hash | Hmac { return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret); }
}

describe('the SigV4 signature of GetSecretValue', () => {
  test.each([
    ['long-term credentials', undefined, 'secretsmanager.eu-west-1.amazonaws.com'],
    ['temporary credentials', 'FwoGZXIvYXdzEXAMPLEsessiontoken', 'secretsmanager.eu-west-1.amazonaws.com'],
    ['a local endpoint with a port', undefined, '127.0.0.1:4566'],
  ])('matches the SDK signer\'s with %s', async (_case, sessionToken, host) => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken };
    const now = new Date('2026-11-23T00:15:30.123Z');
    const body = '{"SecretId":"arn:aws:secretsmanager:eu-west-1:111111111111:secret:chat-AbCdEf"}';
    const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' };

    const ours = signedHeaders({ method: 'POST', host, path: '/', headers, body, service: 'secretsmanager', region: 'eu-west-1', credentials, now });

    const [hostname, port] = host.split(':');
    // applyChecksum off: the x-amz-content-sha256 header is optional for services other than S3, and not sent here.
    const sdk = await new SignatureV4({ service: 'secretsmanager', region: 'eu-west-1', credentials, sha256: Sha256, applyChecksum: false }).sign({
      method: 'POST', protocol: 'https:', hostname, port: port ? Number(port) : undefined, path: '/', query: {}, headers: { ...headers, host }, body,
    }, { signingDate: now });
    expect(ours.authorization).toBe(sdk.headers.authorization);
    expect(ours['x-amz-date']).toBe(sdk.headers['x-amz-date']);
    expect(ours['x-amz-security-token']).toBe(sdk.headers['x-amz-security-token']);
  });
});
