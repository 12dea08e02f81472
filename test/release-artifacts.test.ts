import { execFileSync } from 'child_process';
import { existsSync, readdirSync } from 'fs';
import { join } from 'path';

/**
 * What the release workflow publishes to npm, built here by the same task it runs
 * (`npx projen package:js`). The other languages' packages need their registries' toolchains
 * (Maven Central, PyPI, NuGet): test/bindings.test.ts generates and checks their source instead.
 */
const root = join(__dirname, '..');
let entries: string[] = [];
let tarball = '';

beforeAll(() => {
  if (!existsSync(join(root, '.jsii')) || !existsSync(join(root, 'assets', 'local', 'authws.js'))) {
    throw new Error('No .jsii assembly or bundles: run `npx projen bundle && npx projen compile` (or `npx projen build`) before this test.');
  }
  execFileSync('npx', ['projen', 'package:js'], { cwd: root, stdio: 'pipe', env: { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' } });
  const packed = readdirSync(join(root, 'dist', 'js')).filter((file) => file.endsWith('.tgz'));
  expect(packed).toHaveLength(1);
  tarball = packed[0];
  entries = execFileSync('tar', ['tzf', join(root, 'dist', 'js', tarball)], { encoding: 'utf8' }).trim().split('\n');
}, 180_000);

test('package:js writes the npm tarball the release publishes, named by the package and version', () => {
  expect(tarball).toMatch(/^cdk-authenticated-websocket-api@\d+\.\d+\.\d+.*\.jsii\.tgz$/);
});

test('it holds the assembly, the construct layer, the publish helper, the handler bundles and the authws CLI', () => {
  for (const file of ['.jsii', 'lib/index.js', 'lib/index.d.ts', 'lib/publish/index.js', 'lib/publish/index.d.ts', 'assets/local/authws.js', 'README.md', 'LICENSE']) {
    expect(entries).toContain(`package/${file}`);
  }
  for (const handler of ['authorizer', 'connection', 'expiry-sweeper', 'fan-out-worker', 'message', 'publisher']) {
    expect(entries).toContain(`package/assets/handlers/${handler}.lambda/index.js`);
  }
});

test('and nothing of the repository\'s own: sources, tests, examples, benchmarks, workflows', () => {
  expect(entries.filter((entry) => /^package\/(src|test|examples|bench|\.github|\.ci|rosetta)\//.test(entry))).toEqual([]);
});
