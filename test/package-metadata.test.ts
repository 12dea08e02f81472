import { readFileSync } from 'fs';
import { join } from 'path';

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
