import { createSecretKey } from 'node:crypto';
import { HmacKeySource, hmacKeySource } from '../../src/runtime/hmac-key-source';
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

test('a secret that does not exist is an error, not an empty key', async () => {
  await expect(new HmacKeySource('arn:aws:secretsmanager:us-east-1:123456789012:secret:missing').key())
    .rejects.toMatchObject({ name: 'ResourceNotFoundException' });
});

test('an empty SecretString is refused rather than used as a key', async () => {
  await expect(new HmacKeySource(secrets.put('empty', '')).key()).rejects.toThrow(/NO_SECRET_STRING/);
});

test('the container shares one source per secret', () => {
  expect(hmacKeySource('arn:a')).toBe(hmacKeySource('arn:a'));
  expect(hmacKeySource('arn:a')).not.toBe(hmacKeySource('arn:b'));
});
