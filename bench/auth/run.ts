/**
 * Token verification benchmark (`npx projen bench:auth`; not part of the tests).
 *
 * 1. Verifications per second on one core (the task pins the process with `taskset -c 0`), warm key
 *    cache, for HS256, RS256 and ES256: this library's TokenVerifier (jose 6 underneath) side by side
 *    with aws-jwt-verify on the same tokens (aws-jwt-verify has no HMAC), plus jose with the HMAC key
 *    passed as bytes on each call, the way most samples call it.
 * 2. The authorizer bundle's size, and its cold start: a fresh Node.js process loads the bundled
 *    module and verifies its first token, the key set served from loopback; the time spent inside
 *    fetch (the network) is measured and reported apart.
 * It prints a Markdown report for bench/RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { createSecretKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { JwksKeySource } from '../../src/runtime/jwks-key-source';
import { TokenVerifier } from '../../src/runtime/token-verifier';

const ISSUER = 'https://issuer.bench.example';
const AUDIENCE = 'bench';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = 8;
const TOKENS = 64;
const BUNDLE = join(__dirname, '..', '..', '..', 'assets', 'handlers', 'authorizer.lambda', 'index.js');

async function main(): Promise<void> {
  const secret = 'bench-hmac-secret-0123456789abcdef0123456789abcdef';
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec', alg: 'ES256', use: 'sig' }] as JWK[] };
  const server = await serveJwks(jwks);
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;

  const sign = async (alg: string, key: Parameters<SignJWT['sign']>[0], kid?: string) => Promise.all(Array.from({ length: TOKENS }, (_, i) =>
    new SignJWT({ sub: `user-${i}`, scope: 'chat' }).setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })
      .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h').sign(key)));
  const tokens = {
    HS256: await sign('HS256', createSecretKey(Buffer.from(secret))),
    RS256: await sign('RS256', rsa.privateKey, 'rsa'),
    ES256: await sign('ES256', ec.privateKey, 'ec'),
  };

  // This library, as the authorizer builds it: the HMAC key imported once per algorithm (what
  // HmacKeySource.verificationKey does after its one Secrets Manager read), the key set fetched once.
  const hmacKey = await webcrypto.subtle.importKey('raw', Buffer.from(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const common = { location: { source: 'header' as const, name: 'Authorization' }, issuer: ISSUER, audience: [AUDIENCE], clockToleranceSeconds: 5, userIdClaim: 'sub', contextClaims: [] };
  const ours = {
    HS256: new TokenVerifier({ ...common, key: async () => hmacKey, algorithms: ['HS256'] }),
    keySet: new JwksKeySource(jwksUrl),
  };
  const oursPublic = new TokenVerifier({ ...common, key: ours.keySet.getKey as never, algorithms: ['RS256', 'ES256'] });
  const awsVerifier = JwtRsaVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwksUrl });
  awsVerifier.cacheJwks(jwks as never);
  const secretBytes = new TextEncoder().encode(secret);

  // jose alone, key imported once, no key resolver: the most this library could reach on jose.
  const imported = {
    HS256: hmacKey,
    RS256: await webcrypto.subtle.importKey('spki', rsa.publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']),
    ES256: await webcrypto.subtle.importKey('spki', ec.publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']),
  };
  const claims = { issuer: ISSUER, audience: AUDIENCE };
  const joseAlone = (alg: 'HS256' | 'RS256' | 'ES256') => (t: string) => jwtVerify(t, imported[alg], { algorithms: [alg], ...claims });

  const hs = await compare(tokens.HS256, {
    ours: (t) => ours.HS256.verifyToken(t),
    bytes: (t) => jwtVerify(t, secretBytes, { algorithms: ['HS256'], ...claims }),
    jose: joseAlone('HS256'),
  });
  const rows: string[][] = [['HS256', fmt(hs.ours), `n/a (no HMAC); jose, key as bytes on each call: ${fmt(hs.bytes)}`, '', fmt(hs.jose)]];
  for (const alg of ['RS256', 'ES256'] as const) {
    const r = await compare(tokens[alg], {
      ours: (t) => oursPublic.verifyToken(t),
      aws: (t) => awsVerifier.verify(t),
      jose: joseAlone(alg),
    });
    rows.push([alg, fmt(r.ours), fmt(r.aws), (r.ours / r.aws).toFixed(2), fmt(r.jose)]);
  }
  const fetches = ours.keySet.fetches;
  server.close();

  const cold = coldStarts(tokens.RS256[0]);
  const bundle = readFileSync(BUNDLE);

  const machine = `${cpus()[0].model.trim()}, ${cpus().length} cores, Node.js ${process.version}, jose ${pkgVersion('jose')}, aws-jwt-verify ${pkgVersion('aws-jwt-verify')}`;
  console.log(`\n### Token verification (${new Date().toISOString().slice(0, 10)})\n`);
  console.log(`Machine: ${machine}. One core (\`taskset -c 0\`), ${SECONDS} s per variant in ${ROUNDS} interleaved rounds (median round) after a warm-up, ${TOKENS} distinct tokens cycled, issuer and audience checked.\n`);
  console.log('| algorithm | this library (verifications/s) | aws-jwt-verify (verifications/s) | ratio (ours / theirs) | jose alone, key imported once |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(`\nKey set fetches during the whole run: ${fetches} (the key set is fetched once per container; the HMAC key is imported once per algorithm).\n`);
  console.log(`Authorizer bundle: ${(bundle.length / 1024).toFixed(1)} KB minified, ${(gzipSync(bundle).length / 1024).toFixed(1)} KB gzipped.\n`);
  console.log(`Cold start (fresh process, ${cold.runs} runs, median): load the bundle ${cold.load.toFixed(1)} ms; first verification (RS256, key set from loopback) ${cold.first.toFixed(1)} ms, of which ${cold.fetch.toFixed(1)} ms on the network (request to end of response); **${(cold.load + cold.first - cold.fetch).toFixed(1)} ms excluding the network**.`);
}

/**
 * Verifications per second of each variant, one verification in flight at a time. The variants run
 * in turns (ROUNDS rounds of SECONDS / ROUNDS each) and each reports its median round, so load from
 * other processes on the machine hits them alike instead of whichever ran at the wrong moment.
 */
async function compare<K extends string>(tokens: string[], variants: Record<K, (token: string) => Promise<unknown>>): Promise<Record<K, number>> {
  const names = Object.keys(variants) as K[];
  const rounds: Record<string, number[]> = {};
  for (const name of names) {
    await variants[name](tokens[0]); // must verify (throws otherwise); warms the key cache
    const warmUntil = performance.now() + 300;
    for (let i = 0; performance.now() < warmUntil; i++) await variants[name](tokens[i % tokens.length]);
    rounds[name] = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      let count = 0;
      const started = performance.now();
      const until = started + (SECONDS * 1000) / ROUNDS;
      while (performance.now() < until) {
        for (let i = 0; i < 50; i++) await variants[name](tokens[(count + i) % tokens.length]);
        count += 50;
      }
      rounds[name].push(count / ((performance.now() - started) / 1000));
    }
  }
  const result = {} as Record<K, number>;
  for (const name of names) {
    const sorted = [...rounds[name]].sort((a, b) => a - b);
    result[name] = sorted[Math.floor(sorted.length / 2)];
    process.stderr.write(`${name}: median ${fmt(result[name])}/s, rounds ${sorted.map(fmt).join(' ')}\n`);
  }
  return result;
}

/** Runs the bundled authorizer in fresh processes: load, then the first verification, with fetch timed apart. */
function coldStarts(token: string): { runs: number; load: number; first: number; fetch: number } {
  const child = `
    const { createServer } = require('node:http');
    const jwks = process.env.BENCH_JWKS;
    const server = createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(jwks); });
    server.listen(0, '127.0.0.1', async () => {
      process.env.AUTH_JWKS_URL = 'http://127.0.0.1:' + server.address().port + '/.well-known/jwks.json';
      // The network: from each key set request to the end of its response.
      let inFetch = 0;
      const http = require('node:http');
      const realGet = http.get;
      http.get = (...args) => {
        const t = performance.now();
        const request = realGet(...args);
        request.on('response', (response) => response.on('end', () => { inFetch += performance.now() - t; }));
        return request;
      };
      const t0 = performance.now();
      const { handler } = require(process.env.BENCH_BUNDLE);
      const t1 = performance.now();
      const result = await handler({ type: 'REQUEST', methodArn: 'arn:aws:execute-api:us-east-1:1:a/dev/$connect', headers: { Authorization: 'Bearer ' + process.env.BENCH_TOKEN }, requestContext: { connectionId: 'c' } });
      const t2 = performance.now();
      if (result.policyDocument.Statement[0].Effect !== 'Allow') throw new Error('not allowed');
      console.log(JSON.stringify({ load: t1 - t0, first: t2 - t1, fetch: inFetch }));
      server.close();
    });`;
  const samples: Array<{ load: number; first: number; fetch: number }> = [];
  for (let i = 0; i < 11; i++) {
    const out = spawnSync(process.execPath, ['-e', child], {
      env: {
        PATH: process.env.PATH,
        BENCH_BUNDLE: BUNDLE,
        BENCH_TOKEN: token,
        BENCH_JWKS: process.env.BENCH_JWKS_JSON!,
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
        AUTH_ALGORITHMS: 'RS256,ES256',
        AUTH_TOKEN_LOCATION: 'header:Authorization',
      },
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`cold start run failed: ${out.stderr}`);
    samples.push(JSON.parse(out.stdout.trim().split('\n').pop()!));
  }
  const median = (key: 'load' | 'first' | 'fetch') => samples.map((s) => s[key]).sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  return { runs: samples.length, load: median('load'), first: median('first'), fetch: median('fetch') };
}

function serveJwks(jwks: { keys: JWK[] }) {
  process.env.BENCH_JWKS_JSON = JSON.stringify(jwks);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(process.env.BENCH_JWKS_JSON);
  });
  return new Promise<ReturnType<typeof createServer>>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function pkgVersion(name: string): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
