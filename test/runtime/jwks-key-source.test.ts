import { errors, jwtVerify } from 'jose';
import { JwksKeySource, jwksKeySource } from '../../src/runtime/jwks-key-source';
import { KeyUnavailableError } from '../../src/runtime/key-source';
import { JwksServer } from '../support/jwks-server';
import { newKeyPair, signWithKey, TestKeyPair } from '../support/key-pairs';

let rsa: TestKeyPair;
let rotated: TestKeyPair;
let server: JwksServer;

beforeAll(async () => {
  [rsa, rotated] = await Promise.all([newKeyPair('rsa-1'), newKeyPair('rsa-2')]);
});

beforeEach(async () => {
  server = await JwksServer.start([rsa.jwk]);
});

afterEach(async () => {
  await server.stop();
});

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

async function verifyWith(source: JwksKeySource, token: string) {
  return jwtVerify(token, source.getKey, { algorithms: ['RS256'] });
}

test('fetches the key set once, however many concurrent and later verifications', async () => {
  const source = new JwksKeySource(server.jwksUrl);
  const token = await signWithKey(rsa, { sub: 'u' });
  await Promise.all(Array.from({ length: 20 }, () => verifyWith(source, token)));
  for (let i = 0; i < 20; i++) await verifyWith(source, token);
  expect(server.requests).toBe(1);
  expect(source.fetches).toBe(1);
});

test('an unknown kid refetches once, then not again within the cooldown', async () => {
  const time = clock();
  const source = new JwksKeySource(server.jwksUrl, { cooldownMs: 30_000, now: time.now });
  await verifyWith(source, await signWithKey(rsa, { sub: 'u' }));
  time.advance(31_000);

  const stranger = await signWithKey(rotated, { sub: 'u' }); // not published
  await expect(verifyWith(source, stranger)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
  expect(server.requests).toBe(2);
  for (let i = 0; i < 10; i++) await expect(verifyWith(source, stranger)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
  expect(server.requests).toBe(2);

  time.advance(30_000);
  await expect(verifyWith(source, stranger)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
  expect(server.requests).toBe(3);
});

test('a rotated key is picked up on its first token once the cooldown has passed', async () => {
  const time = clock();
  const source = new JwksKeySource(server.jwksUrl, { cooldownMs: 30_000, now: time.now });
  await verifyWith(source, await signWithKey(rsa, { sub: 'u' }));
  server.keys = [rsa.jwk, rotated.jwk];
  time.advance(30_001);
  const { payload } = await verifyWith(source, await signWithKey(rotated, { sub: 'rotated' }));
  expect(payload.sub).toBe('rotated');
  expect(server.requests).toBe(2);
});

test('a fetch that takes longer than the timeout is abandoned as KeyUnavailable TIMEOUT', async () => {
  server.mode = 'hang';
  const source = new JwksKeySource(server.jwksUrl, { timeoutMs: 150 });
  const started = Date.now();
  const err = await verifyWith(source, await signWithKey(rsa, { sub: 'u' })).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(KeyUnavailableError);
  expect((err as KeyUnavailableError).reason).toBe('TIMEOUT');
  expect(Date.now() - started).toBeLessThan(2_000);
});

test.each([
  ['down', 'HTTP_503'],
  ['html', 'NOT_JSON'],
] as const)('an endpoint that is %s gives KeyUnavailable %s, and the next call tries again', async (mode, reason) => {
  server.mode = mode;
  const source = new JwksKeySource(server.jwksUrl);
  const token = await signWithKey(rsa, { sub: 'u' });
  await expect(verifyWith(source, token)).rejects.toMatchObject({ name: 'KeyUnavailableError', reason });
  server.mode = 'ok';
  await expect(verifyWith(source, token)).resolves.toBeDefined();
  expect(server.requests).toBe(2);
});

test('a closed port gives KeyUnavailable FETCH_FAILED', async () => {
  const url = server.jwksUrl;
  await server.stop();
  server = await JwksServer.start();
  await expect(verifyWith(new JwksKeySource(url), await signWithKey(rsa, { sub: 'u' }))).rejects.toMatchObject({ reason: 'FETCH_FAILED' });
});

test('a JSON answer that is not a key set is refused', async () => {
  server.keys = 'nope' as never;
  await expect(verifyWith(new JwksKeySource(server.jwksUrl), await signWithKey(rsa, { sub: 'u' }))).rejects.toMatchObject({ reason: 'NOT_A_KEY_SET' });
});

test('keys older than the max age are refetched; if that fails, the old keys keep working', async () => {
  const time = clock();
  const source = new JwksKeySource(server.jwksUrl, { maxAgeMs: 60_000, cooldownMs: 1_000, now: time.now });
  const token = await signWithKey(rsa, { sub: 'u' });
  await verifyWith(source, token);
  time.advance(61_000);
  server.mode = 'down';
  await expect(verifyWith(source, token)).resolves.toBeDefined();
  expect(server.requests).toBe(2);
  // Within the cooldown the failed refresh is not retried on every call.
  await verifyWith(source, token);
  expect(server.requests).toBe(2);
});

test('the container shares one source per URL', () => {
  expect(jwksKeySource('https://a.example/jwks')).toBe(jwksKeySource('https://a.example/jwks'));
  expect(jwksKeySource('https://a.example/jwks')).not.toBe(jwksKeySource('https://b.example/jwks'));
});
