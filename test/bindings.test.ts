import { execFileSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

/**
 * The library is published for Python, Java, .NET and Go through jsii. The registries for those
 * languages are out of reach here, so this generates each binding's source (`--code-only`) from
 * the compiled assembly and checks the public API came through in each language's own shape.
 */
const root = join(__dirname, '..');
const outdir = mkdtempSync(join(tmpdir(), 'authws-bindings-'));

beforeAll(() => {
  if (!existsSync(join(root, '.jsii'))) {
    throw new Error('No .jsii assembly: run `npx projen compile` (or `npx projen build`) before this test.');
  }
  execFileSync('npx', ['jsii-pacmak', '--code-only', '--targets', 'python,java,dotnet,go', '--outdir', outdir], {
    cwd: root,
    stdio: 'pipe',
    env: { ...process.env, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' },
  });
}, 120_000);

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const read = (...path: string[]) => readFileSync(join(outdir, ...path), 'utf8');

test('Python: module cdk_authenticated_websocket_api with snake_case members, and valid syntax', () => {
  const file = join(outdir, 'python', 'src', 'cdk_authenticated_websocket_api', '__init__.py');
  const source = readFileSync(file, 'utf8');
  expect(source).toMatch(/^class AuthenticatedWebSocketApi\(/m);
  expect(source).toMatch(/def hmac_secret\(/);
  expect(source).toMatch(/def grant_manage_connections\(/);
  expect(source).toMatch(/route_selection_expression: typing\.Optional\[builtins\.str\]/);
  execFileSync('python3', ['-m', 'py_compile', file]);
});

describe('Python reads naturally', () => {
  const source = () => read('python', 'src', 'cdk_authenticated_websocket_api', '__init__.py');
  /** The body of one class of the generated module, up to the next top-level class. */
  const pythonClass = (name: string) => {
    const text = source();
    const start = text.search(new RegExp(`^class ${name}[(:]`, 'm'));
    expect(start).toBeGreaterThanOrEqual(0);
    const next = text.slice(start + 1).search(/^class /m);
    return next < 0 ? text.slice(start) : text.slice(start, start + 1 + next);
  };

  test('no member takes a name Python reserves: RouteTarget.function, never lambda_', () => {
    expect(pythonClass('RouteTarget')).toMatch(/^    def function\(/m);
    expect(pythonClass('RouteTarget')).toMatch(/^    def integration\(/m);
    // jsii appends `_` to a Python keyword: no public name of ours may need it.
    expect(source()).not.toMatch(/^    def (?!__)\w+_\(/m);
    expect(source()).not.toMatch(/^\s+(lambda|from|import|global|pass|with|yield|async|await|def|class|is|in|not|and|or)_: /m);
  });

  test('Cognito options take no issuer or audience; the JWKS and HMAC options do', () => {
    const init = (name: string) => /def __init__\([\s\S]*?\) -> None:/.exec(pythonClass(name))![0];
    expect(init('CognitoAuthOptions')).toMatch(/user_pool_clients:/);
    expect(init('CognitoAuthOptions')).not.toMatch(/\b(issuer|audience):/);
    expect(init('JwksAuthOptions')).toMatch(/\bissuer:/);
    expect(init('HmacSecretAuthOptions')).toMatch(/\baudience:/);
  });

  test('an API of another stack is imported with from_attributes and used through IAuthenticatedWebSocketApi', () => {
    expect(pythonClass('AuthenticatedWebSocketApi')).toMatch(/^    def from_attributes\(/m);
    expect(source()).toMatch(/^class IAuthenticatedWebSocketApi\(/m);
    expect(pythonClass('HandlerOptions')).toMatch(/\bsecurity_groups:/);
  });
});

test('Java: package io.github.cdk_authenticated_websocket_api with a builder for the props', () => {
  const source = read('java', 'src', 'main', 'java', 'io', 'github', 'cdk_authenticated_websocket_api', 'AuthenticatedWebSocketApi.java');
  expect(source).toMatch(/^package io\.github\.cdk_authenticated_websocket_api;/m);
  expect(source).toMatch(/public static final class Builder/);
  expect(source).toMatch(/public static @org\.jetbrains\.annotations\.NotNull io\.github\.cdk_authenticated_websocket_api\.IAuthenticatedWebSocketApi fromAttributes\(/);
  // The grants and metrics live in the base class the construct shares with its import.
  expect(read('java', 'src', 'main', 'java', 'io', 'github', 'cdk_authenticated_websocket_api', 'AuthenticatedWebSocketApiBase.java'))
    .toMatch(/grantManageConnections\(/);
  expect(read('java', 'src', 'main', 'java', 'io', 'github', 'cdk_authenticated_websocket_api', 'RouteTarget.java')).toMatch(/ function\(/);
});

test('.NET: namespace CdkAuthenticatedWebSocketApi', () => {
  const source = read('dotnet', 'CdkAuthenticatedWebSocketApi', 'CdkAuthenticatedWebSocketApi', 'AuthenticatedWebSocketApi.cs');
  expect(source).toMatch(/namespace CdkAuthenticatedWebSocketApi/);
  expect(source).toMatch(/class AuthenticatedWebSocketApi : CdkAuthenticatedWebSocketApi\.AuthenticatedWebSocketApiBase/);
  expect(read('dotnet', 'CdkAuthenticatedWebSocketApi', 'CdkAuthenticatedWebSocketApi', 'AuthenticatedWebSocketApiBase.cs')).toMatch(/GrantManageConnections\(/);
});

test('Go: module path and constructor function', () => {
  const goMod = read('go', 'cdkauthenticatedwebsocketapi', 'go.mod');
  expect(goMod).toMatch(/^module github\.com\/cdk-authenticated-websocket-api\/cdk-authenticated-websocket-api-go\/cdkauthenticatedwebsocketapi/m);
  const source = read('go', 'cdkauthenticatedwebsocketapi', 'AuthenticatedWebSocketApi.go');
  expect(source).toMatch(/func NewAuthenticatedWebSocketApi\(/);
  expect(read('go', 'cdkauthenticatedwebsocketapi', 'WebSocketAuth.go')).toMatch(/func WebSocketAuth_HmacSecret\(/);
});
