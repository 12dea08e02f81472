import { awscdk, javascript } from 'projen';
import { UpdateSnapshot } from 'projen/lib/javascript';

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-authenticated-websocket-api',
  description:
    'An authenticated API Gateway WebSocket API in a few lines: JWT authorizer, per-user connection registry, broadcast and direct messages, with bundled Lambda handlers.',
  author: 'cdk-authenticated-websocket-api contributors',
  authorAddress: 'maintainers@cdk-authenticated-websocket-api.dev',
  repositoryUrl: 'https://github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api.git',
  license: 'Apache-2.0',
  stability: 'experimental',
  keywords: ['awscdk', 'cdk', 'websocket', 'apigateway', 'jwt', 'lambda', 'dynamodb'],

  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  github: false,
  release: false,

  cdkVersion: '2.276.0',
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',

  // The dev tsconfig sits at the top level, where users of projen libraries expect it.
  tsconfigDevFile: 'tsconfig.dev.json',
  // jsii compiles the construct layer only. Handler, runtime and gateway code is bundled by esbuild
  // (it imports ESM-only packages such as jose) and type-checked by the `typecheck` task.
  tsconfig: {
    compilerOptions: {},
    exclude: ['src/handlers/*.lambda.ts', 'src/runtime/**', 'src/local/**', 'src/publish/**'],
  },
  tsconfigDev: {
    include: ['.projenrc.ts'],
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } as any,
  },

  // Handlers bundle jose and the AWS SDK v3 (pinned by our lockfile, not by the Lambda runtime).
  devDeps: [
    'jose@^6',
    '@aws-sdk/client-apigatewaymanagementapi@^3',
    '@aws-sdk/client-dynamodb@^3',
    // Fan-out: SQS for queue mode, Lambda for the publisher helper, and the SDK's own SigV4 signer
    // and credential chain for the signed keep-alive @connections client.
    '@aws-sdk/client-sqs@^3',
    '@aws-sdk/client-lambda@^3',
    '@aws-sdk/credential-provider-node@^3',
    '@smithy/signature-v4@^5',
    '@smithy/types@^4',
    '@types/aws-lambda@^8',
    'dynalite@^4',
    'ws@^8',
    '@types/ws@^8',
    'aws-cdk@^2',
    'typescript@~5.9',
    '@types/node@^22',
  ],

  lambdaOptions: {
    // The newest Node.js Lambda offers (cdk-nag AwsSolutions-L1). The handlers are async functions
    // (Node 24 dropped callback handlers) and esbuild only stops lowering syntax for the newer target.
    runtime: awscdk.LambdaRuntime.NODEJS_24_X,
    bundlingOptions: {
      externals: [],
      sourcemap: false,
    },
  },

  // Lint against the dev tsconfig, which covers src, test, examples and bench.
  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'examples', 'bench'],
    tsconfigPath: './tsconfig.dev.json',
    projectService: false,
  },

  jestOptions: {
    // jest 30 and eslint-import-resolver-typescript 4 resolve modules with unrs-resolver, whose
    // per-platform binaries are not all on the registry this project installs from, which leaves
    // the lockfile unusable by `npm ci`. jest 29 and resolver 3.6 need no native binaries.
    jestVersion: '^29',
    // CI must fail on a changed template rather than rewrite the snapshot: `npx projen test:update` updates on purpose.
    updateSnapshot: UpdateSnapshot.NEVER,
    jestConfig: {
      snapshotSerializers: ['<rootDir>/test/support/asset-hash-serializer.ts'],
      testTimeout: 30_000,
      // jose ships ESM only; the tests run CommonJS, so jose is transpiled like our own sources.
      transformIgnorePatterns: ['/node_modules/(?!jose/)'],
    },
  },

  publishToPypi: {
    distName: 'cdk-authenticated-websocket-api',
    module: 'cdk_authenticated_websocket_api',
  },
  publishToMaven: {
    javaPackage: 'io.github.cdk_authenticated_websocket_api',
    mavenGroupId: 'io.github.cdk-authenticated-websocket-api',
    mavenArtifactId: 'cdk-authenticated-websocket-api',
  },
  publishToNuget: {
    dotNetNamespace: 'CdkAuthenticatedWebSocketApi',
    packageId: 'CdkAuthenticatedWebSocketApi',
  },
  publishToGo: {
    moduleName: 'github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api-go',
  },

  gitignore: ['cdk.out/', '.cdk.staging/', '/bindings/'],
});

for (const pattern of ['/examples/', '/bench/', '/.ci/', 'cdk.out/']) project.addPackageIgnore(pattern);

project.jest!.config.transform['^.+/node_modules/jose/.+\\.js$'] = [
  'ts-jest',
  { tsconfig: { allowJs: true, module: 'commonjs', target: 'es2022', isolatedModules: true } },
];

// Runtime and gateway code is bundled by esbuild with its dependencies; nothing loads it from lib/.
project.eslint!.allowDevDeps('src/runtime/**');
project.eslint!.allowDevDeps('src/local/**');

// Minified handler bundles load faster on a cold start; names are kept for readable errors.
for (const task of project.tasks.all) {
  if (!/^bundle:handlers\/[^:]+$/.test(task.name)) continue;
  const args = task.steps[0].execArgs!;
  task.reset();
  task.exec([...args, '--minify', '--keep-names'].join(' '));
}

// `build` packages JavaScript only, on every machine: the Python, Java, .NET and Go toolchains'
// registries are out of reach here, and the bindings test generates their code instead.
// `npx projen package-all` still packages every language where those registries are reachable.
const packageTask = project.tasks.tryFind('package')!;
packageTask.reset();
packageTask.spawn(project.tasks.tryFind('package:js')!);

// The example app, synthesized the way a consumer's CDK app is: by the CDK CLI (the README's
// main command, `demo`, then serves it with the local gateway).
const synthExample = project.addTask('synth:example', {
  description: 'Bundle the handlers and synthesize examples/chat into examples/chat/cdk.out',
  cwd: 'examples/chat',
  exec: 'cdk synth --no-notices --quiet',
});
synthExample.prependSpawn(project.tasks.tryFind('bundle')!);

// ---- local gateway (`authws`) --------------------------------------------------------------
// The CLI is bundled into one file by esbuild, so installing the library adds no runtime
// dependencies. dynalite's optional on-disk store (`level`, a native addon) is swapped for a stub:
// the gateway only uses dynalite's in-memory store.
project.addBins({ authws: 'assets/local/authws.js' });
// src/local/bundle-cli.mjs runs esbuild with a plugin: dynalite requires its actions by computed paths.
const bundleCli = project.addTask('bundle:local', {
  description: 'Bundle the authws CLI (local gateway)',
  exec: 'node src/local/bundle-cli.mjs',
});
project.tasks.tryFind('bundle')!.spawn(bundleCli);
// End-to-end tests drive the gateway with real clients: `ws`, `wscat`, and two Chromium pages.
project.addDevDeps('wscat@^6', 'playwright-core@^1');
// The README's main command: synthesize the example chat app and serve it locally.
// Extra arguments reach the gateway, e.g. `npx projen demo --secret dev-secret --port 3001`.
const demo = project.addTask('demo', {
  description: 'Synthesize examples/chat and serve it with the local gateway (authws local)',
});
demo.spawn(synthExample);
demo.exec('node assets/local/authws.js local --assembly examples/chat/cdk.out', { receiveArgs: true });
// -------------------------------------------------------------------------------------------

// ---- fan-out -------------------------------------------------------------------------------
// `cdk-authenticated-websocket-api/lib/publish`: the helper route Lambdas import to push without SDK
// code. jsii compiles only the construct layer and allows no non-jsii runtime dependency, so the
// helper is bundled with its Lambda client into one CommonJS file, its types declared beside it.
project.eslint!.allowDevDeps('src/publish/**');
const bundlePublish = project.addTask('bundle:publish', {
  description: 'Bundle the publish helper into lib/publish (index.js and index.d.ts)',
  exec: 'esbuild src/publish/index.ts --bundle --platform=node --target=node20 --format=cjs --minify --keep-names --outfile=lib/publish/index.js',
});
bundlePublish.exec('tsc src/publish/index.ts --declaration --emitDeclarationOnly --skipLibCheck --strict --target es2022 --module nodenext --moduleResolution nodenext --outDir lib/publish');
project.postCompileTask.spawn(bundlePublish);
// -------------------------------------------------------------------------------------------

// ---- proofs for consumers (integration snapshots, README examples, the packed package) -----
// integ-tests-alpha's newest release on the registry this project installs from is 2.245.0-alpha.0
// (peer aws-cdk-lib ^2.245.0); 2.276.0-alpha.0 is not published there.
project.addDevDeps('@aws-cdk/integ-tests-alpha@2.245.0-alpha.0', '@aws-cdk/integ-runner@^2.197.10');

// Integration snapshots (test/integ.*.ts, IntegTest apps): integ-runner synthesizes each app and
// compares its templates with the committed test/integ.*.ts.snapshot/. Without --update-on-failed
// it never deploys and never writes: a new or changed template fails the test task. Asset hashes are
// masked in the comparison (integ-runner's default, diffAssets: false), so rebuilt handler bundles
// are not a change. integ-runner 2.197 reads cloud assembly schema 53 at most; test/support/integ-app.ts
// runs each app and relabels its schema 55 output (see there). AWS_REGION spares the SDK's region lookup
// (about 30 s per test on a machine without instance metadata); the apps are environment-agnostic.
const integRunner = 'integ-runner --directory test --language typescript --max-workers 2 --parallel-regions us-east-1'
  + ' --app "node -r ts-node/register/transpile-only test/support/integ-app.ts {filePath}"';
const integEnv = { TS_NODE_PROJECT: 'tsconfig.dev.json', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const integ = project.addTask('integ', {
  description: 'Compare the integration tests\' synthesized templates with their committed snapshots (never deploys)',
  exec: integRunner,
  env: integEnv,
});
project.addTask('integ:update', {
  description: 'Rewrite the snapshots of integration tests whose templates changed (dry run: never deploys), then review the diff',
  exec: `${integRunner} --update-on-failed --dry-run`,
  env: integEnv,
});
const jestStep = project.testTask.steps.findIndex((step) => step.execArgs?.[0] === 'jest' || step.exec?.startsWith('jest'));
project.testTask.insertStep(jestStep + 1, { spawn: integ.name });
project.gitignore.addPatterns('/test/cdk-integ.out.*');

// The README's TypeScript examples compile against the assembly (jsii-rosetta, strict): after compile,
// which embeds the README in .jsii, and after bundle:publish (an example imports lib/publish).
// Fixtures: rosetta/*.ts-fixture. The tablet it writes is a by-product, neither committed nor packed.
const rosetta = project.addTask('rosetta', {
  description: 'Compile the README\'s TypeScript examples with jsii-rosetta (strict: any error fails)',
  exec: 'jsii-rosetta extract --strict .jsii',
});
project.postCompileTask.spawn(rosetta);
project.gitignore.addPatterns('/.jsii.tabl.json');
project.addPackageIgnore('/.jsii.tabl.json');
project.addPackageIgnore('/rosetta/');
// -------------------------------------------------------------------------------------------

// ts-jest transpiles without type-checking (isolatedModules), so the whole tree is checked once here.
const typecheck = project.addTask('typecheck', {
  description: 'Type-check sources, handlers, tests and examples',
  exec: 'tsc --noEmit -p tsconfig.dev.json',
});
project.testTask.prependSpawn(typecheck);

// See jestVersion above: resolver 3.6 needs no native binaries.
project.addDevDeps('eslint-import-resolver-typescript@~3.6');
// ts-jest needs jest-util at the top level (an optional peer dependency npm does not hoist by itself).
project.addDevDeps('jest-util@^29');

// cdk-nag (AwsSolutions) runs on the construct's default and fully configured forms in test/nag.test.ts.
project.addDevDeps('cdk-nag@^3');

// Token verification benchmark (bench/auth/run.ts; it prints bench/RESULTS.md's `Token verification`).
// Never part of `test`. aws-jwt-verify is the verifier AWS samples use, measured on the same tokens.
project.addDevDeps('aws-jwt-verify@^5');
const benchAuth = project.addTask('bench:auth', {
  description: 'Benchmark token verification (HS256, RS256, ES256) against aws-jwt-verify, and the authorizer bundle\'s size and cold start',
});
benchAuth.spawn(project.tasks.tryFind('bundle:handlers/authorizer.lambda')!);
benchAuth.exec('esbuild bench/auth/run.ts --bundle --platform=node --target=node20 --outfile=bench/auth/.build/run.js');
benchAuth.exec('taskset -c 0 node bench/auth/.build/run.js');
project.gitignore.addPatterns('bench/auth/.build/');

// Benchmark of the local gateway (bench/local/run.mjs; it writes bench/RESULTS.md's `## Local gateway`).
// Never part of `test`. 5,000 sockets need more open files than the usual soft limit: raised to the
// hard limit here, and the gateway's child process inherits it.
const benchLocal = project.addTask('bench:local', {
  description: 'Benchmark authws local: 5,000 idle connections, and broadcast latency against a bare ws server',
});
benchLocal.spawn(project.tasks.tryFind('bundle')!);
benchLocal.exec('bash -c \'ulimit -n hard && node bench/local/run.mjs\'');

// Fan-out benchmark (bench/fanout/run.ts, with server.ts and client.ts run as child processes; it writes
// bench/RESULTS.md's `## Fan-out`). Never part of `test`. The scripts are bundled with the engine from
// src/runtime; packages stay external (resolved from node_modules). bench/fanout/.gitignore ignores .build/.
const benchFanout = project.addTask('bench:fanout', {
  description: 'Benchmark the fan-out engine against the common sample, a sequential loop and raw HTTP, with a loopback @connections server',
});
benchFanout.exec('esbuild bench/fanout/run.ts bench/fanout/server.ts bench/fanout/client.ts --bundle --platform=node --target=node20 --packages=external --outdir=bench/fanout/.build --log-level=warning');
benchFanout.exec('node bench/fanout/.build/run.js');

const benchChannels = project.addTask('bench:channels', {
  description: 'Benchmark publishing to a channel against the inline broadcast to as many connections, with a loopback @connections server',
});
benchChannels.exec('esbuild bench/fanout/server.ts --bundle --platform=node --target=node20 --packages=external --outdir=bench/fanout/.build --log-level=warning');
benchChannels.exec('esbuild bench/channels/run.ts bench/channels/client.ts --bundle --platform=node --target=node20 --packages=external --outdir=bench/channels/.build --log-level=warning');
benchChannels.exec('node bench/channels/.build/run.js');

project.synth();
