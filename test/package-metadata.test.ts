import { readFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';

/**
 * Construct Hub lists a package by its package.json: these fields come from .projenrc.ts.
 */
const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));

test('package.json carries what Construct Hub lists a construct library by', () => {
  expect(pkg.name).toBe('cdk-authenticated-websocket-api');
  expect(pkg.description).toMatch(/WebSocket/);
  expect(pkg.keywords).toEqual(expect.arrayContaining(['awscdk', 'cdk', 'websocket', 'apigateway', 'jwt']));
  expect(pkg.repository).toMatchObject({ type: 'git', url: expect.stringMatching(/^https:\/\/github\.com\/.+\.git$/) });
  expect(pkg.license).toBe('Apache-2.0');
  expect(pkg.stability).toBe('experimental');
  expect(pkg.author).toMatchObject({ name: expect.any(String) });
  expect(pkg.types).toBe('lib/index.d.ts');
  // jsii targets: the bindings the README promises
  expect(Object.keys(pkg.jsii.targets).sort()).toEqual(['dotnet', 'go', 'java', 'python']);
});

test('package.json says where the project lives, where to report bugs, which Node.js it needs, and what users search for', () => {
  expect(pkg.homepage).toBe('https://github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api#readme');
  expect(pkg.bugs).toEqual({ url: 'https://github.com/cdk-authenticated-websocket-api/cdk-authenticated-websocket-api/issues' });
  expect(pkg.engines).toEqual({ node: '>= 20.0.0' });
  expect(pkg.keywords).toEqual(expect.arrayContaining(['realtime', 'pubsub', 'chat', 'apigatewayv2', 'cognito', 'serverless']));
});

describe('release, as cdklabs libraries do it', () => {
  const read = (...path: string[]) => readFileSync(join(__dirname, '..', ...path), 'utf8');
  const release = parse(read('.github', 'workflows', 'release.yml'));
  const tasks = JSON.parse(read('.projen', 'tasks.json')).tasks;

  test('a push to main releases to GitHub, npm, Maven Central, PyPI, NuGet and the Go module repository', () => {
    expect(release.on.push.branches).toEqual(['main']);
    expect(Object.keys(release.jobs).sort()).toEqual(
      ['release', 'release_github', 'release_golang', 'release_maven', 'release_npm', 'release_nuget', 'release_pypi']);
    const runs = (job: string) => release.jobs[job].steps.map((step: { run?: string }) => step.run ?? '').join('\n');
    expect(runs('release')).toMatch(/npx projen release/);
    for (const [job, language] of [['release_npm', 'js'], ['release_maven', 'java'], ['release_pypi', 'python'], ['release_nuget', 'dotnet'], ['release_golang', 'go']]) {
      expect(runs(job)).toContain(`npx projen package:${language}`);
    }
  });

  test('the release task bumps the version from the commits, builds, and packages every language', () => {
    expect(tasks.release.steps.map((step: { spawn?: string; exec?: string }) => step.spawn ?? step.exec)).toEqual(
      expect.arrayContaining(['bump', 'build', 'unbump']));
    expect(tasks['package-all'].steps.map((step: { spawn: string }) => step.spawn)).toEqual(
      ['package:js', 'package:java', 'package:python', 'package:dotnet', 'package:go']);
    // The bump tool installs without engine warnings on Node 20 (13.x brings packages requiring Node 22).
    expect(tasks.bump.env.BUMP_PACKAGE).toBe('commit-and-tag-version@^12');
    expect(pkg.devDependencies['commit-and-tag-version']).toBe('^12');
    // Pull requests build on GitHub with the same command as .ci/run.
    expect(JSON.stringify(parse(read('.github', 'workflows', 'build.yml')).jobs.build.steps)).toContain('npx projen build');
  });

  test('a quiet build: jsii fails on a name reserved in a target language, and the tasks silence only the Node version notices of jsii and the AWS SDK', () => {
    expect(tasks.compile.steps).toEqual([{ exec: 'jsii --fail-on-warnings' }]);
    expect(JSON.parse(read('.projen', 'tasks.json')).env).toMatchObject({
      JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    expect(read('.nvmrc').trim()).toBe('22');
  });

  test('the README\'s TypeScript blocks use the jsii API only: rosetta cannot resolve the publish helper\'s symbols and warned about each', () => {
    const tsBlocks = [...read('README.md').matchAll(/^```(?:ts|typescript)\b[^\n]*\n([\s\S]*?)^```/gm)].map((match) => match[1]);
    expect(tsBlocks.length).toBeGreaterThan(5);
    expect(tsBlocks.filter((block) => block.includes('/lib/publish'))).toEqual([]);
  });
});
