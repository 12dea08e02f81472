import { awscdk, javascript, TextFile } from 'projen';
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
  keywords: [
    'awscdk', 'cdk', 'websocket', 'apigateway', 'apigatewayv2', 'jwt', 'lambda', 'dynamodb',
    'realtime', 'pubsub', 'chat', 'cognito', 'serverless',
  ],
  homepage: 'https://github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api#readme',
  bugsUrl: 'https://github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api/issues',
  // The oldest Node.js the construct layer and the publish helper bundle (target node20) run on.
  minNodeVersion: '20.0.0',

  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  // Released the way cdklabs libraries are: GitHub workflows build every pull request, and each
  // push to main releases to npm, PyPI, Maven Central, NuGet and the Go module repository, with
  // the credentials held as repository secrets (NPM_TOKEN, TWINE_*, MAVEN_*, NUGET_API_KEY, GO_GITHUB_TOKEN).
  github: true,
  release: true,
  releaseToNpm: true,
  // The workflows run on Node 22, a release jsii supports; contributors get the same from .nvmrc.
  workflowNodeVersion: '22.x',
  // The bump step's tool: 13.x pulls in conventional-changelog packages that require Node 22, which
  // `npm ci` reports as EBADENGINE on Node 20; 12.x needs Node 18 and bumps the same way.
  bumpPackage: 'commit-and-tag-version@^12',

  cdkVersion: '2.276.0',
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',

  // The dev tsconfig sits at the top level, where users of projen libraries expect it.
  tsconfigDevFile: 'tsconfig.dev.json',
  // jsii compiles the construct layer only. Handler, runtime and gateway code is bundled by esbuild
  // (it imports ESM-only packages such as jose) and type-checked by the `typecheck` task.
  tsconfig: {
    compilerOptions: {},
    exclude: ['src/handlers/*.lambda.ts', 'src/runtime/**', 'src/local/**', 'src/publish/**', 'src/client/**'],
  },
  tsconfigDev: {
    include: ['.projenrc.ts'],
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      // The example app imports the library by its package name, as a copy of it outside this repo does.
      paths: { 'cdk-authenticated-websocket-api': ['./src/index.ts'] },
    } as any,
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
      // The example app imports the library by its package name (see tsconfigDev's paths).
      moduleNameMapper: { '^cdk-authenticated-websocket-api$': '<rootDir>/src/index.ts' },
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

// ---- a quiet first run ----------------------------------------------------------------------
// jsii refuses a public name that is a keyword in a target language (RouteTarget.lambda was
// `lambda_` in Python): projen silences that warning by default, this project fails on it.
project.compileTask.reset('jsii --fail-on-warnings');
// jsii's tools print a banner on Node 20, which left jsii's support on 2026-10-30. The project
// still builds and is tested on Node 20 (engines: >= 20), so its tasks silence that one banner;
// .nvmrc and the workflows use Node 22, which jsii supports and which prints none.
project.tasks.addEnvironment('JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION', '20');
// Likewise the AWS SDK's notice that its 2027 releases need Node 22, printed once per test process that
// makes an SDK call (the local gateway turns it off in the functions it runs).
project.tasks.addEnvironment('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'true');
new TextFile(project, '.nvmrc', { lines: ['22'] });
project.addPackageIgnore('/.nvmrc');
// npm 11 blocks dependencies' install scripts and lists the ones it skipped after every `npm ci`.
// Neither is needed: esbuild's postinstall only checks the binary its optional dependency brings,
// and classic-level (dynalite's on-disk store, a native addon) is never loaded: dynalite runs in memory.
project.package.addField('allowScripts', { 'classic-level': false, 'esbuild': false });
// The release test reads the generated workflows.
project.addDevDeps('yaml@^2');
// -------------------------------------------------------------------------------------------

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
// examples/chat/cdk.json is a consumer's (`npx ts-node --prefer-ts-exts app.ts`, the package
// installed); here the package is this repo's src/, mapped by tsconfig.dev.json's paths at run time.
const synthExample = project.addTask('synth:example', {
  description: 'Bundle the handlers and synthesize examples/chat into examples/chat/cdk.out',
  cwd: 'examples/chat',
  exec: 'cdk synth --no-notices --quiet --app "npx ts-node -r tsconfig-paths/register --prefer-ts-exts app.ts"',
  env: { TS_NODE_PROJECT: '../../tsconfig.dev.json' },
});
project.addDevDeps('tsconfig-paths@^4');
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
// It also serves the example's browser page (examples/chat/web, which loads the bundled client) and prints its URL.
demo.exec('node assets/local/authws.js local --assembly examples/chat/cdk.out --web examples/chat/web', { receiveArgs: true });
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

// ---- client ------------------------------------------------------------------------------
// `cdk-authenticated-websocket-api/client`: the browser and Node.js client. Dependency-free, bundled
// apart from the jsii construct layer into client/ at the package root (a subpath without an exports
// map resolves to client/index.js): CommonJS, an ES module, a browser script defining the global
// `AuthWs`, and its types. The example page (examples/chat/web) loads the browser script.
const clientEsbuild = 'esbuild src/client/index.ts --bundle --platform=neutral --target=es2019 --minify';
const bundleClient = project.addTask('bundle:client', {
  description: 'Bundle the client into client/ (index.js, index.mjs, browser.js, index.d.ts) and the example page',
});
bundleClient.exec(`${clientEsbuild} --format=cjs --outfile=client/index.js --log-level=warning`);
bundleClient.exec(`${clientEsbuild} --format=esm --outfile=client/index.mjs --log-level=warning`);
bundleClient.exec(`${clientEsbuild} --format=iife --global-name=AuthWs --outfile=client/browser.js --log-level=warning`);
bundleClient.exec(`${clientEsbuild} --format=iife --global-name=AuthWs --outfile=examples/chat/web/authws-client.js --log-level=warning`);
bundleClient.exec('tsc src/client/index.ts --declaration --emitDeclarationOnly --skipLibCheck --strict --target es2022 --lib es2022,dom --module nodenext --moduleResolution nodenext --outDir client');
project.tasks.tryFind('bundle')!.spawn(bundleClient);
project.gitignore.addPatterns('/client/', '/examples/chat/web/authws-client.js');
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

// Token verification benchmark (bench/auth/run.ts; it rewrites bench/RESULTS.md's `## Token verification` section only, or just prints with BENCH_WRITE=0).
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
