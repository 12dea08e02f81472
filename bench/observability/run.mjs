// What Powertools for AWS Lambda (Logger + Metrics) would cost the bundled handlers, against the
// in-house log.ts + metrics.ts they ship with: bundle size, and the cold start's module load (a fresh
// `node` process requiring the bundle, median of ROUNDS, variants interleaved so machine load hits
// both alike). Bundled as `npx projen bundle` does: esbuild, node22, minified, names kept.
//
//   node bench/observability/run.mjs      (pin it to one core for steadier numbers: taskset -c 0 node ...)
//
// Powertools is installed into a temporary directory (npm install, the registry's release of
// POWERTOOLS_VERSION), never into the project: the handlers do not depend on it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const POWERTOOLS_VERSION = '2.36.0';
const ROUNDS = 21;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const { build } = createRequire(path.join(root, 'package.json'))('esbuild');
const handlers = ['authorizer', 'connection', 'expiry-sweeper', 'fan-out-worker', 'message', 'publisher'];
// The two libraries alone, without a handler: what each adds to any bundle, away from the noise of loading the SDK.
const alone = {
  'in-house': "export * from './src/runtime/invocation'; export * from './src/runtime/metrics'; export * from './src/runtime/log';",
  'powertools': POWERTOOLS_ENTRY(),
};
function POWERTOOLS_ENTRY() {
  return [
    "import { Logger } from '@aws-lambda-powertools/logger';",
    "import { Metrics } from '@aws-lambda-powertools/metrics';",
    "export const logger = new Logger({ serviceName: 'authws' });",
    "export const metrics = new Metrics({ namespace: 'AuthenticatedWebSocketApi', serviceName: 'authws' });",
  ];
}

const work = mkdtempSync(path.join(tmpdir(), 'bench-observability-'));
try {
  execFileSync('npm', ['install', '--prefix', work, '--no-save', '--no-audit', '--no-fund', '--loglevel=error',
    `@aws-lambda-powertools/logger@${POWERTOOLS_VERSION}`, `@aws-lambda-powertools/metrics@${POWERTOOLS_VERSION}`], { stdio: 'inherit' });

  const bundles = [];
  const bundle = async (name, variant, entry) => {
    const outfile = path.join(work, 'out', `${name}.${variant}.js`);
    await build({
      entryPoints: [entry], bundle: true, platform: 'node', target: 'node22', minify: true, keepNames: true, outfile, logLevel: 'error',
      tsconfig: path.join(root, 'tsconfig.dev.json'), nodePaths: [path.join(work, 'node_modules'), path.join(root, 'node_modules')],
    });
    bundles.push({ name, variant, outfile, bytes: statSync(outfile).size, samples: [] });
  };
  for (const [variant, entry] of Object.entries(alone)) {
    const file = path.join(work, `alone.${variant}.ts`);
    writeFileSync(file, (Array.isArray(entry) ? entry.join('\n') : entry).replaceAll('./src/', `${root}/src/`));
    await bundle('(library alone)', variant, file);
  }
  for (const name of handlers) {
    const source = path.join(root, 'src/handlers', `${name}.lambda.ts`);
    // The same handler with Powertools' Logger and Metrics loaded and built at module scope, as their docs do.
    const withPowertools = path.join(work, `${name}.powertools.ts`);
    writeFileSync(withPowertools, [`export { handler } from ${JSON.stringify(source.replace(/\.ts$/, ''))};`, ...POWERTOOLS_ENTRY()].join('\n'));
    await bundle(name, 'in-house', source);
    await bundle(name, 'powertools', withPowertools);
  }

  const load = 'const t = performance.now(); require(process.argv[1]); console.log(performance.now() - t);';
  for (let round = 0; round < ROUNDS; round++) {
    for (const bundle of bundles) {
      const out = spawnSync(process.execPath, ['-e', load, bundle.outfile], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      if (out.status !== 0) throw new Error(`${bundle.outfile}: ${out.stderr}`);
      bundle.samples.push(Number(out.stdout.trim()));
    }
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
  console.log(`\nNode.js ${process.version}, Powertools ${POWERTOOLS_VERSION}, load = require() in a fresh process, median of ${ROUNDS} interleaved rounds\n`);
  console.log('| handler | in-house: size | in-house: load | Powertools: size | Powertools: load | difference |');
  console.log('|---|---|---|---|---|---|');
  for (const name of ['(library alone)', ...handlers]) {
    const [own, pt] = ['in-house', 'powertools'].map((v) => bundles.find((b) => b.name === name && b.variant === v));
    const [ownMs, ptMs] = [median(own.samples), median(pt.samples)];
    console.log(`| ${name} | ${kb(own.bytes)} | ${ownMs.toFixed(1)} ms | ${kb(pt.bytes)} | ${ptMs.toFixed(1)} ms | +${kb(pt.bytes - own.bytes)}, ${ptMs - ownMs >= 0 ? '+' : ''}${(ptMs - ownMs).toFixed(1)} ms |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
