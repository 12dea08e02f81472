/**
 * Token verification benchmark (`npx projen bench:auth`; not part of the tests).
 *
 * 1. Verifications per second on one core (the task pins the process with `taskset -c 0`), warm key
 *    cache, for HS256, RS256 and ES256: this library's TokenVerifier side by side with aws-jwt-verify
 *    on the same tokens (aws-jwt-verify has no HMAC), plus jose alone (WebCrypto, key imported once).
 *    The variants of one algorithm take turns in ABBA order (A B C, C B A, ...) for ROUNDS rounds,
 *    so drift in the machine's load hits them alike; each reports its median round and the spread
 *    (min to max), and the ratio to aws-jwt-verify is the median of the per-round ratios.
 * 2. The authorizer bundle's size, and its cold start: a fresh Node.js process loads the bundled
 *    module and verifies its first token, the key set served from loopback; the time spent inside
 *    the key set request (the network) is measured and reported apart. Alternated run by run with a
 *    floor: a fresh process that fetches the same key set the same way and verifies the same token
 *    with node:crypto alone.
 *
 * It prints the `## Token verification` section and writes it into bench/RESULTS.md, replacing only
 * that section (the other benchmarks' sections are left as they are). BENCH_WRITE=0 only prints;
 * BENCH_SECONDS (default 6) sets the seconds per variant and algorithm.
 */
import { spawnSync } from 'node:child_process';
import { createSecretKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { JwksKeySource } from '../../src/runtime/jwks-key-source';
import { TokenVerifier } from '../../src/runtime/token-verifier';

const ISSUER = 'https://issuer.bench.example';
const AUDIENCE = 'bench';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = 10;
const COLD_RUNS = 15;
const WRITE = process.env.BENCH_WRITE !== '0';
const RESULTS = join(__dirname, '..', '..', 'RESULTS.md');
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

  const loadBefore = loadavg()[0];
  const started = new Date();
  const hs = await compare(tokens.HS256, {
    ours: (t) => ours.HS256.verifyToken(t),
    bytes: (t) => jwtVerify(t, secretBytes, { algorithms: ['HS256'], ...claims }),
    jose: joseAlone('HS256'),
  }, 'jose');
  const rows: string[][] = [['HS256', spread(hs.ours), `n/a (no HMAC); jose, key as bytes on each call: ${spread(hs.bytes)}`, `${ratio(hs.ratio)} (of jose alone)`, spread(hs.jose)]];
  for (const alg of ['RS256', 'ES256'] as const) {
    const r = await compare(tokens[alg], {
      ours: (t) => oursPublic.verifyToken(t),
      aws: (t) => awsVerifier.verify(t),
      jose: joseAlone(alg),
    }, 'aws');
    rows.push([alg, spread(r.ours), spread(r.aws), `**${ratio(r.ratio)}**`, spread(r.jose)]);
  }
  const fetches = ours.keySet.fetches;
  server.close();

  const cold = coldStarts(tokens.RS256[0]);
  const loadAfter = loadavg()[0];
  const bundle = readFileSync(BUNDLE);

  const machine = `${cpus()[0].model.trim()}, \`nproc\` ${cpus().length}, Node.js ${process.version}, jose ${pkgVersion('jose')}, aws-jwt-verify ${pkgVersion('aws-jwt-verify')}`;
  const t: string[] = [];
  t.push('## Token verification', '');
  t.push('Script: bench/auth/run.ts (it writes this section only). Never part of the tests.', '');
  t.push('- Command: `JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 npx projen bench:auth` (bundles the authorizer, then `taskset -c 0 node bench/auth/.build/run.js`)');
  t.push(`- Date: ${started.toISOString()}`);
  t.push(`- Machine: ${machine}`);
  t.push(`- Load: 1-minute load average ${loadBefore.toFixed(2)} at the start, ${loadAfter.toFixed(2)} at the end; other processes share the cores, so read the ratios (measured in the same rounds), not the absolutes`);
  t.push(`- Method: one core, one verification in flight, ${SECONDS} s per variant and algorithm in ${ROUNDS} rounds taken in ABBA order (A B C, C B A, ...) after a 300 ms warm-up each,`);
  t.push(`  ${TOKENS} distinct tokens cycled, issuer and audience checked, warm key cache. Each cell: median round (min to max over the rounds), verifications/s.`);
  t.push('  Ratio: the median over the rounds of (this library / the other) within the same round (min to max).');
  t.push('  "This library" is `TokenVerifier` as the authorizer builds it: the HMAC key imported once as a WebCrypto key (as `HmacKeySource` does),');
  t.push('  RS256/ES256 keys from a `JwksKeySource` that fetched the key set once; signatures checked by node:crypto (`verifyJwt`), claims by jose.');
  t.push('  aws-jwt-verify verifies the same tokens with the same key set (`cacheJwks`, `verify`).', '');
  t.push('| algorithm | this library | aws-jwt-verify | ratio (ours / aws-jwt-verify) | jose alone, key imported once |');
  t.push('|---|---|---|---|---|');
  for (const row of rows) t.push(`| ${row.join(' | ')} |`);
  t.push('');
  t.push(`Key set fetches during the whole run: ${fetches} (fetched once per container; refetched only for an unknown \`kid\`, at most once per cooldown).`, '');
  t.push(`Authorizer bundle: ${(bundle.length / 1024).toFixed(1)} KB minified, ${(gzipSync(bundle).length / 1024).toFixed(1)} KB gzipped.`, '');
  t.push(`Cold start: a fresh Node.js process per run, ${COLD_RUNS} runs each, the bundle and the floor alternating; RS256, the key set served from loopback by the same process.`);
  t.push('"Network": from each key set request to the end of its response. Floor: a process that fetches the same key set the same way and verifies');
  t.push('the same token with `createPublicKey` and `crypto.verify` alone (no claim checks, no handler). Median (min to max), ms.', '');
  t.push('| | authorizer bundle | floor |');
  t.push('|---|---:|---:|');
  t.push(`| load the module | ${ms(cold.bundle.load)} | ${ms(cold.floor.load)} |`);
  t.push(`| first verification, total | ${ms(cold.bundle.first)} | ${ms(cold.floor.first)} |`);
  t.push(`| of which on the network | ${ms(cold.bundle.fetch)} | ${ms(cold.floor.fetch)} |`);
  t.push(`| **cold start excluding the network** | **${ms(cold.bundle.excluding)}** | ${ms(cold.floor.excluding)} |`);
  t.push('');
  const section = t.join('\n');
  console.log(`\n${section}`);
  if (WRITE) {
    writeSection(section);
    console.error(`wrote the "## Token verification" section of ${RESULTS}`);
  }
}

interface Spread { readonly median: number; readonly min: number; readonly max: number }

/**
 * Verifications per second of each variant, one verification in flight at a time. The variants take
 * turns in ABBA order (ROUNDS rounds of SECONDS / ROUNDS each): round 0 runs A B C, round 1 C B A, and
 * so on, so a variant is not always the one right after another's garbage or before a load spike.
 * `ratio`: per round, ours / `against`; their median and spread.
 */
type Variants<K extends string> = Record<K, (token: string) => Promise<unknown>>;
async function compare<K extends string>(tokens: string[], variants: Variants<K>, against: string): Promise<Record<K, Spread> & { ratio: Spread }> {
  const names = Object.keys(variants) as K[];
  const rounds: Record<string, number[]> = {};
  for (const name of names) {
    await variants[name](tokens[0]); // must verify (throws otherwise); warms the key cache
    const warmUntil = performance.now() + 300;
    for (let i = 0; performance.now() < warmUntil; i++) await variants[name](tokens[i % tokens.length]);
    rounds[name] = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
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
  const spreads = {} as Record<K, Spread>;
  for (const name of names) {
    spreads[name] = summary(rounds[name]);
    process.stderr.write(`${name}: rounds ${rounds[name].map(fmt).join(' ')}\n`);
  }
  const versus = summary(rounds.ours.map((value, i) => value / rounds[against][i]));
  process.stderr.write(`ours / ${against}: ${ratio(versus)}\n`);
  return Object.assign(spreads, { ratio: versus });
}

function summary(values: number[]): Spread {
  const sorted = [...values].sort((x, y) => x - y);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1] };
}

interface ColdStart { readonly load: Spread; readonly first: Spread; readonly fetch: Spread; readonly excluding: Spread }

/** Runs the bundled authorizer and the floor in fresh processes, alternately: load, then the first verification, with fetch timed apart. */
function coldStarts(token: string): { bundle: ColdStart; floor: ColdStart } {
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
      const token = process.env.BENCH_TOKEN;
      let t0, t1, t2;
      if (process.env.BENCH_MODE === 'bundle') {
        t0 = performance.now();
        const { handler } = require(process.env.BENCH_BUNDLE);
        t1 = performance.now();
        const result = await handler({ type: 'REQUEST', methodArn: 'arn:aws:execute-api:us-east-1:1:a/dev/$connect', headers: { Authorization: 'Bearer ' + token }, requestContext: { connectionId: 'c' } });
        t2 = performance.now();
        if (result.policyDocument.Statement[0].Effect !== 'Allow') throw new Error('not allowed');
      } else {
        t0 = performance.now();
        const crypto = require('node:crypto');
        t1 = performance.now();
        const body = await new Promise((resolve, reject) => http.get(process.env.AUTH_JWKS_URL, (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        }).on('error', reject));
        const [h, p, s] = token.split('.');
        const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
        const key = crypto.createPublicKey({ key: JSON.parse(body).keys.find((k) => k.kid === header.kid), format: 'jwk' });
        if (!crypto.verify('sha256', Buffer.from(h + '.' + p), key, Buffer.from(s, 'base64url'))) throw new Error('not verified');
        JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
        t2 = performance.now();
      }
      console.log(JSON.stringify({ load: t1 - t0, first: t2 - t1, fetch: inFetch }));
      server.close();
    });`;
  const samples: Record<'bundle' | 'floor', Array<{ load: number; first: number; fetch: number }>> = { bundle: [], floor: [] };
  for (let i = 0; i < COLD_RUNS * 2; i++) {
    const mode = i % 4 === 0 || i % 4 === 3 ? 'bundle' : 'floor'; // ABBA
    const out = spawnSync(process.execPath, ['-e', child], {
      env: {
        PATH: process.env.PATH,
        BENCH_MODE: mode,
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
    samples[mode].push(JSON.parse(out.stdout.trim().split('\n').pop()!));
  }
  const of = (list: Array<{ load: number; first: number; fetch: number }>): ColdStart => ({
    load: summary(list.map((s) => s.load)),
    first: summary(list.map((s) => s.first)),
    fetch: summary(list.map((s) => s.fetch)),
    excluding: summary(list.map((s) => s.load + s.first - s.fetch)),
  });
  return { bundle: of(samples.bundle), floor: of(samples.floor) };
}

/** Replaces this benchmark's section of bench/RESULTS.md (or appends it), re-reading the file just before. */
function writeSection(section: string): void {
  const header = '# Benchmark results\n\nEach benchmark under bench/ writes its own section here.\n';
  const current = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : header;
  const start = current.search(/^## Token verification$/m);
  let next: string;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${section.trimEnd()}\n`;
  } else {
    const after = current.slice(start + 1).search(/^## /m);
    const end = after < 0 ? current.length : start + 1 + after;
    next = `${current.slice(0, start)}${section.trimEnd()}\n${after < 0 ? '' : `\n${current.slice(end)}`}`;
  }
  writeFileSync(RESULTS, next);
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

function spread(s: Spread): string {
  return `${fmt(s.median)} (${fmt(s.min)} to ${fmt(s.max)})`;
}

function ratio(s: Spread): string {
  return `${s.median.toFixed(2)} (${s.min.toFixed(2)} to ${s.max.toFixed(2)})`;
}

function ms(s: Spread): string {
  return `${s.median.toFixed(1)} (${s.min.toFixed(1)} to ${s.max.toFixed(1)})`;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
