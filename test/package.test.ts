import { execFileSync } from 'child_process';
import { createHmac } from 'crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

/**
 * The library as a consumer gets it: `npm pack` the working tree, install the tarball into a fresh
 * CDK app outside this repository (aws-cdk-lib and constructs at this repo's versions, from the npm
 * cache), synthesize a stack from plain JavaScript, and run the `authws` bin from the install.
 *
 * Needs the compiled construct layer (lib/, .jsii) and the bundled handlers and CLI (assets/):
 * `npx projen build` runs it after both.
 */
const root = join(__dirname, '..');
const workdir = mkdtempSync(join(tmpdir(), 'authws-package-'));
const appdir = join(workdir, 'app');
const handlers = ['authorizer', 'connection', 'expiry-sweeper', 'fan-out-worker', 'message', 'publisher'];
const env = { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' };
/** The client: CommonJS, ES module, browser script and types (`npx projen bundle:client`). */
const CLIENT_FILES = ['client/index.js', 'client/index.mjs', 'client/browser.js', 'client/index.d.ts'];

let packedFiles: string[] = [];
let template: { Resources: Record<string, { Type: string; Properties: any }> };
let cloudAssembly: string;

beforeAll(() => {
  const needed = ['lib/index.js', 'lib/publish/index.js', '.jsii', 'assets/local/authws.js', ...CLIENT_FILES, ...handlers.map((h) => `assets/handlers/${h}.lambda/index.js`)];
  const missing = needed.filter((file) => !existsSync(join(root, file)));
  if (missing.length > 0) {
    throw new Error(`The package test packs the built library, but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing: `
      + 'run `npx projen bundle && npx projen compile` (or `npx projen build`) first.');
  }

  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--silent', '--pack-destination', workdir], { cwd: root, env, encoding: 'utf8' }));
  packedFiles = packed.files.map((file: { path: string }) => file.path);

  // A consumer's app: the packed library, and aws-cdk-lib and constructs at the versions this repo
  // builds against, installed from the npm cache where it has them.
  const version = (name: string) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  execFileSync('mkdir', ['-p', appdir]);
  writeFileSync(join(appdir, 'package.json'), JSON.stringify({
    name: 'consumer-app',
    version: '0.0.0',
    private: true,
    dependencies: {
      'cdk-authenticated-websocket-api': `file:../${packed.filename}`,
      'aws-cdk-lib': version('aws-cdk-lib'),
      'constructs': version('constructs'),
    },
  }, undefined, 2));
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: appdir, env, stdio: 'pipe' });

  writeFileSync(join(appdir, 'app.js'), [
    "const { App, CfnOutput, Stack } = require('aws-cdk-lib');",
    "const secretsmanager = require('aws-cdk-lib/aws-secretsmanager');",
    "const { AuthenticatedWebSocketApi, WebSocketAuth } = require('cdk-authenticated-websocket-api');",
    '',
    "const app = new App({ outdir: 'cdk.out' });",
    "const stack = new Stack(app, 'Consumer');",
    "const secret = new secretsmanager.Secret(stack, 'JwtSecret');",
    "const chat = new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(secret) });",
    "new CfnOutput(stack, 'Url', { value: chat.url });",
    'app.synth();',
    "console.log(require.resolve('cdk-authenticated-websocket-api'));",
  ].join('\n'));
  const resolved = execFileSync('node', ['app.js'], { cwd: appdir, env, encoding: 'utf8' }).trim().split('\n').pop();
  if (!resolved?.startsWith(join(appdir, 'node_modules'))) throw new Error(`the app loaded the library from ${resolved}, not from its own install`);
  cloudAssembly = join(appdir, 'cdk.out');
  template = JSON.parse(readFileSync(join(cloudAssembly, 'Consumer.template.json'), 'utf8'));
}, 180_000);

afterAll(() => rmSync(workdir, { recursive: true, force: true }));

const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);

describe('the packed tarball', () => {
  test('holds the compiled construct layer, the assembly, the publish helper, the handler bundles and the CLI', () => {
    for (const file of ['lib/index.js', 'lib/index.d.ts', 'lib/publish/index.js', 'lib/publish/index.d.ts', '.jsii', 'README.md', 'LICENSE', 'package.json']) {
      expect(packedFiles).toContain(file);
    }
    for (const handler of handlers) expect(packedFiles).toContain(`assets/handlers/${handler}.lambda/index.js`);
    expect(packedFiles).toContain('assets/local/authws.js');
    for (const file of CLIENT_FILES) expect(packedFiles).toContain(file);
  });

  test('holds nothing else: no sources, tests, fixtures, examples or benchmarks', () => {
    const stray = packedFiles.filter((file) => !/^(lib|assets|client)\//.test(file) && !['.jsii', 'API.md', 'LICENSE', 'README.md', 'package.json'].includes(file));
    expect(stray).toEqual([]);
  });
});

describe('a CDK app that installs the tarball', () => {
  test('synthesizes the API, its authorizer, the registry and channels tables and the functions', () => {
    expect(ofType('AWS::ApiGatewayV2::Api')).toHaveLength(1);
    expect(ofType('AWS::ApiGatewayV2::Api')[0][1].Properties.ProtocolType).toBe('WEBSOCKET');
    expect(ofType('AWS::ApiGatewayV2::Authorizer')).toHaveLength(1);
    expect(ofType('AWS::DynamoDB::Table').map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(['ChatConnections', 'ChatChannelsTable']);
    // authorizer, $connect/$disconnect, message handler, expiry sweeper, publisher
    expect(ofType('AWS::Lambda::Function').length).toBeGreaterThanOrEqual(5);
  });

  test('stages every function\'s code from the installed package\'s handler bundles', () => {
    const assets = JSON.parse(readFileSync(join(cloudAssembly, 'Consumer.assets.json'), 'utf8')).files as Record<string, { source: { path: string } }>;
    const functions = ofType('AWS::Lambda::Function');
    for (const [id, fn] of functions) {
      const hash = String(fn.Properties.Code.S3Key).replace(/\.zip$/, '');
      const folder = assets[hash]?.source.path;
      expect({ id, folder }).toEqual({ id, folder: expect.stringMatching(/^asset\./) });
      expect(readdirSync(join(cloudAssembly, folder))).toContain('index.js');
    }
    // Each bundled handler is staged byte for byte.
    const staged = new Set(functions.map(([, fn]) => readFileSync(join(cloudAssembly, assets[String(fn.Properties.Code.S3Key).replace(/\.zip$/, '')].source.path, 'index.js'), 'utf8')));
    for (const handler of ['authorizer', 'connection', 'expiry-sweeper', 'message', 'publisher']) {
      expect(staged.has(readFileSync(join(appdir, 'node_modules/cdk-authenticated-websocket-api/assets/handlers', `${handler}.lambda`, 'index.js'), 'utf8'))).toBe(true);
    }
  });

  test('imports the publish helper from cdk-authenticated-websocket-api/lib/publish', () => {
    const exported = execFileSync('node', ['-e', "console.log(Object.keys(require('cdk-authenticated-websocket-api/lib/publish')).sort().join(','))"], { cwd: appdir, env, encoding: 'utf8' });
    expect(exported.trim().split(',')).toEqual(expect.arrayContaining(['publish', 'publishToUser']));
  });

  test('imports the client from cdk-authenticated-websocket-api/client (CommonJS, ES module and types), with no dependencies', () => {
    const cjs = execFileSync('node', ['-e', "const c = require('cdk-authenticated-websocket-api/client'); console.log(Object.keys(c).sort().join(','))"], { cwd: appdir, env, encoding: 'utf8' });
    expect(cjs.trim().split(',')).toEqual(expect.arrayContaining(['AuthWsClient', 'AuthWsError', 'connect']));
    const esm = execFileSync('node', ['--input-type=module', '-e', "import { connect } from 'cdk-authenticated-websocket-api/client/index.mjs'; console.log(typeof connect)"], { cwd: appdir, env, encoding: 'utf8' });
    expect(esm.trim()).toBe('function');
    // Loading it requires nothing: no dependency, no Node.js module.
    const required = execFileSync('node', ['-e', [
      "const Module = require('module'); const seen = []; const load = Module.prototype.require;",
      'Module.prototype.require = function (id) { seen.push(id); return load.apply(this, arguments); };',
      "load.call(module, 'cdk-authenticated-websocket-api/client'); console.log(JSON.stringify(seen.slice(0)));",
    ].join('\n')], { cwd: appdir, env, encoding: 'utf8' });
    expect(JSON.parse(required)).toEqual([]);
    // TypeScript resolves the subpath to client/index.d.ts.
    writeFileSync(join(appdir, 'client-types.ts'), [
      "import { connect, ConnectOptions } from 'cdk-authenticated-websocket-api/client';",
      "const options: ConnectOptions = { url: 'wss://example.com/dev', token: async () => 'token', tokenLocation: 'subprotocol' };",
      'export const client = connect(options);',
      "client.on('error', (error) => error.code.toUpperCase());",
    ].join('\n'));
    const tsc = join(root, 'node_modules', '.bin', 'tsc');
    execFileSync(tsc, ['--noEmit', '--strict', '--lib', 'es2022,dom', '--module', 'commonjs', '--moduleResolution', 'node', '--skipLibCheck', 'client-types.ts'], { cwd: appdir, env, encoding: 'utf8' });
  });

  test('runs the authws bin: `npx authws token` prints a JWT signed with the secret', () => {
    const token = execFileSync('npx', ['--no', 'authws', 'token', '--secret', 's', '--sub', 'u'], { cwd: appdir, env, encoding: 'utf8' }).trim();
    const [header, payload, signature] = token.split('.');
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toMatchObject({ alg: 'HS256' });
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toMatchObject({ sub: 'u' });
    expect(signature).toBe(createHmac('sha256', 's').update(`${header}.${payload}`).digest('base64url'));
  });
});
