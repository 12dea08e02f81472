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
    '@aws-sdk/client-secrets-manager@^3',
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
    runtime: awscdk.LambdaRuntime.NODEJS_22_X,
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

project.synth();
