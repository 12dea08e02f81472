import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { Env } from '../../src/runtime/environment';
import { Deployment, goodToken, MATRIX, MatrixFixture, matrixEnvironment, MatrixRequest, placed, startMatrixFixture } from '../support/auth-matrix';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { SecretsServer } from '../support/secrets-server';
import { authorizerEvent } from '../support/websocket-events';

type Authorizer = (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

let fixture: MatrixFixture;
let secrets: SecretsServer;
let secretArn: string;
let output: CapturedConsole;
/** Every token the matrix presented, so the log test can look for them. */
const presented: string[] = [];

const AUTH_SETTINGS = Object.values(Env).filter((name) => name.startsWith('AUTH_'));

/** The authorizer as a new Lambda container configured for `deployment` would run it. */
function coldStart(deployment: Deployment): Authorizer {
  for (const name of AUTH_SETTINGS) delete process.env[name];
  Object.assign(process.env, matrixEnvironment(deployment, fixture, secretArn));
  let handler: Authorizer | undefined;
  jest.isolateModules(() => {
    handler = jest.requireActual('../../src/handlers/authorizer.lambda').handler;
  });
  return handler!;
}

function toEvent(request: MatrixRequest): APIGatewayRequestAuthorizerEvent {
  const headers = { ...request.headers, ...(request.protocols ? { 'Sec-WebSocket-Protocol': request.protocols.join(', ') } : {}) };
  for (const value of [...Object.values(headers), ...Object.values(request.query ?? {})]) presented.push(value);
  return authorizerEvent({ headers, query: request.query });
}

/** The HTTP status API Gateway answers the handshake with, given what the authorizer did. */
async function statusOf(authorize: Authorizer, event: APIGatewayRequestAuthorizerEvent): Promise<number> {
  try {
    const result = await authorize(event);
    const effect = result.policyDocument.Statement[0].Effect;
    return effect === 'Allow' ? 200 : 403;
  } catch (err) {
    // Unauthorized is API Gateway's 401; any other error its 500. Only these two may be thrown, as Errors.
    expect(err).toBeInstanceOf(Error);
    expect(['Unauthorized', 'AuthorizerUnavailable']).toContain((err as Error).message);
    return (err as Error).message === 'Unauthorized' ? 401 : 500;
  }
}

beforeAll(async () => {
  useDummyAwsEnvironment();
  fixture = await startMatrixFixture();
  secrets = await SecretsServer.start();
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
  secretArn = secrets.put('matrix-hmac', fixture.secret);
});

afterAll(async () => {
  await Promise.all([fixture.stop(), secrets.stop()]);
});

beforeEach(() => {
  output = captureConsole();
});

afterEach(() => {
  output.restore();
});

test('the matrix holds at least 30 bad tokens', () => {
  expect(MATRIX.length).toBeGreaterThanOrEqual(30);
  expect(new Set(MATRIX.map((c) => c.name)).size).toBe(MATRIX.length);
});

describe.each(['hmac', 'query', 'subprotocol', 'jwks', 'cognito'] as const)('positive control: %s', (deployment) => {
  test('a good token in the right place is allowed', async () => {
    const event = toEvent(placed(deployment, await goodToken(deployment, fixture)));
    const result = await coldStart(deployment)(event);
    expect(result.policyDocument.Statement[0].Effect).toBe('Allow');
    expect(result.context?.userId).toBe('user-a');
  });
});

describe('bad tokens', () => {
  test.each(MATRIX.map((c) => [c.name, c] as const))('%s', async (_name, badCase) => {
    const event = toEvent(await badCase.request(fixture));
    expect(await statusOf(coldStart(badCase.deployment), event)).toBe(badCase.status);
    const refusals = output.records().filter((r) => r.event === 'connect_refused');
    expect(refusals).toHaveLength(1);
    expect(refusals[0].level).toBe(badCase.status === 500 ? 'error' : 'warn');
    if (badCase.reason) expect(refusals[0].reason).toBe(badCase.reason);
    // AuthDenied counts the 401s and 403s; a 500 (the key could not be had) is not a denial.
    expect(output.metrics().map((m) => m.AuthDenied)).toEqual([badCase.status === 500 ? 0 : 1]);
  });
});

test('neither the tokens nor the secret reach the log, whatever the refusal', async () => {
  // Replays the whole matrix in one capture, then reads everything that was logged.
  presented.length = 0;
  for (const badCase of MATRIX) {
    await statusOf(coldStart(badCase.deployment), toEvent(await badCase.request(fixture)));
  }
  const logged = output.lines.join('\n');
  expect(output.records().filter((r) => r.event === 'connect_refused')).toHaveLength(MATRIX.length);
  expect(logged).not.toContain(fixture.secret);
  for (const value of presented) {
    for (const segment of value.replace(/^Bearer /, '').split(/[.,\s]/).filter((s) => s.length >= 8)) {
      expect(logged).not.toContain(segment);
    }
  }
});
