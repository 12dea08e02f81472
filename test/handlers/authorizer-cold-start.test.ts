import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Env } from '../../src/runtime/environment';
import { JwksServer } from '../support/jwks-server';
import { newKeyPair, signWithKey } from '../support/key-pairs';
import { authorizerEvent } from '../support/websocket-events';

/**
 * What the bundled authorizer loads in a fresh process: TLS and WebCrypto cost a cold start
 * milliseconds, so neither may load with the module, and a JWKS verification (key set over http
 * here) must not load WebCrypto either (keys are imported with createPublicKey, signatures checked
 * with node:crypto). bench/auth measures the time; this pins the behaviour.
 */
const BUNDLE = path.join(__dirname, '../../assets/handlers/authorizer.lambda/index.js');

const PROBE = `
  const heavy = (m) => /^NativeModule (https|tls|_tls_wrap|internal\\/crypto\\/webcrypto)$/.test(m);
  const before = new Set(process.moduleLoadList);
  const { handler } = require(process.argv[1]);
  const atLoad = process.moduleLoadList.filter((m) => !before.has(m) && heavy(m));
  handler(JSON.parse(process.argv[2])).then((result) => {
    const afterFirst = process.moduleLoadList.filter((m) => !before.has(m) && heavy(m));
    console.log(JSON.stringify({ principalId: result.principalId, atLoad, afterFirst }));
  }, (err) => console.log(JSON.stringify({ error: err.message })));
`;

let server: JwksServer;

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npx projen bundle\` first`);
});

afterEach(async () => {
  await server?.stop();
});

test.each(['RS256', 'ES256'] as const)('a cold %s connect loads neither TLS nor WebCrypto (key set over http)', async (alg) => {
  const pair = await newKeyPair('k1', alg);
  server = await JwksServer.start([pair.jwk]);
  const event = authorizerEvent({ headers: { Authorization: `Bearer ${await signWithKey(pair, { sub: 'user-a', exp: Math.floor(Date.now() / 1000) + 600 })}` } });
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', PROBE, BUNDLE, JSON.stringify(event)], {
    env: {
      PATH: process.env.PATH,
      [Env.AUTH_JWKS_URL]: server.jwksUrl,
      [Env.AUTH_ALGORITHMS]: alg,
    },
  });
  expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ principalId: 'user-a', atLoad: [], afterFirst: [] });
});
