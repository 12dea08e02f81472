import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { closeAllClients, refusalStatus, TestClient } from './support/clients';
import { AuthenticatedWebSocketApi, TokenLocation, WebSocketAuth } from '../../src';
import { LocalGateway } from '../../src/local/gateway';
import { Env } from '../../src/runtime/environment';
import {
  Deployment, goodToken, MATRIX, MATRIX_AUDIENCE, MATRIX_CLIENT_ID, MATRIX_SCOPE, MATRIX_SUBPROTOCOL, MatrixFixture, MatrixRequest, placed,
  startMatrixFixture,
} from '../support/auth-matrix';

/**
 * The bad-token matrix end to end: real WebSocket handshakes against `authws local` serving one
 * AuthenticatedWebSocketApi per deployment, with the bundled authorizer and connection handler.
 * The statuses are API Gateway's: 401 from the identity source check (no Lambda runs) or from the
 * authorizer, 403 for its Deny, 500 when it fails.
 */

const DEPLOYMENTS: readonly Deployment[] = ['hmac', 'query', 'subprotocol', 'jwks', 'jwksDown', 'jwksSlow', 'cognito'];

let fixture: MatrixFixture;
let gateway: LocalGateway;
const urls = new Map<Deployment, string>();
const logLines: string[] = [];

/** One API per deployment, configured as `matrixEnvironment` describes, through the public factories. */
function synthesizeMatrixApp(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'authws-matrix-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'AuthMatrix');
  const secret = new secretsmanager.Secret(stack, 'JwtSecret');
  const hmac = (tokenLocation: TokenLocation) => WebSocketAuth.hmacSecret(secret, { issuer: 'https://issuer.example', audience: [MATRIX_AUDIENCE], tokenLocation });
  const jwks = (jwksUrl: string) => WebSocketAuth.jwks({
    jwksUrl,
    issuer: fixture.jwks.issuer,
    audience: [MATRIX_AUDIENCE],
    algorithms: ['RS256', 'ES256'],
    requiredClaims: { scope: MATRIX_SCOPE },
    jwksTimeout: Duration.millis(300),
  });
  const auths: Record<Exclude<Deployment, 'cognito'>, WebSocketAuth> = {
    hmac: hmac(TokenLocation.header()),
    query: hmac(TokenLocation.queryString()),
    subprotocol: hmac(TokenLocation.subprotocol(MATRIX_SUBPROTOCOL)),
    jwks: jwks(fixture.jwks.jwksUrl),
    jwksDown: jwks(fixture.downJwks.jwksUrl),
    jwksSlow: jwks(fixture.slowJwks.jwksUrl),
  };
  for (const [name, auth] of Object.entries(auths)) new AuthenticatedWebSocketApi(stack, name, { apiName: name, auth });

  // Cognito, with the pool's issuer and key set pointed at the loopback issuer (a real pool's are on AWS).
  const pool = new cognito.UserPool(stack, 'Users');
  const client = cognito.UserPoolClient.fromUserPoolClientId(stack, 'WebClient', MATRIX_CLIENT_ID);
  const cognitoAuth = WebSocketAuth.cognito(pool, { userPoolClients: [client] });
  const cognitoApi = new AuthenticatedWebSocketApi(stack, 'cognito', { apiName: 'cognito', auth: cognitoAuth });
  const cognitoAuthorizer = cognitoApi.authorizerFunction as lambda.Function; // the bundled one: auth is not lambdaAuthorizer
  cognitoAuthorizer.addEnvironment(Env.AUTH_ISSUER, fixture.jwks.issuer);
  cognitoAuthorizer.addEnvironment(Env.AUTH_JWKS_URL, fixture.jwks.jwksUrl);
  app.synth();
  return outdir;
}

type ConnectOptions = { headers?: Record<string, string>; protocols?: string[] };

function connect(deployment: Deployment, request: MatrixRequest): { url: string; options: ConnectOptions } {
  const query = request.query ? `?${new URLSearchParams(request.query).toString()}` : '';
  return { url: `${urls.get(deployment)}${query}`, options: { headers: request.headers, protocols: request.protocols } };
}

beforeAll(async () => {
  fixture = await startMatrixFixture();
  gateway = await LocalGateway.start({
    assemblyDirectory: synthesizeMatrixApp(),
    port: 0,
    secret: fixture.secret,
    log: (line) => { logLines.push(line); },
  });
  for (const deployment of DEPLOYMENTS) urls.set(deployment, gateway.stages.find((stage) => stage.api.name === deployment)!.url);
}, 120_000);

afterEach(() => closeAllClients());

afterAll(async () => {
  await gateway?.close();
  await fixture?.stop();
});

describe.each(DEPLOYMENTS.filter((d) => !d.startsWith('jwks') || d === 'jwks'))('positive control: %s', (deployment) => {
  test('a good token in the right place connects', async () => {
    const { url, options } = connect(deployment, placed(deployment, await goodToken(deployment, fixture)));
    const client = await TestClient.connect(url, options);
    // With a subprotocol token, $connect echoes the protocol name (never the token), as browsers require.
    expect(client.protocol).toBe(deployment === 'subprotocol' ? MATRIX_SUBPROTOCOL : '');
    client.send({ action: 'ping' });
    expect(await client.nextJson()).toEqual({ action: 'pong' });
    await client.close();
  });
});

test.each(MATRIX.map((c) => [c.name, c] as const))('refused: %s', async (_name, badCase) => {
  const { url, options } = connect(badCase.deployment, await badCase.request(fixture));
  expect(await refusalStatus(url, options)).toBe(badCase.status);
});

test('no token and no secret reaches the gateway\'s or the handlers\' logs, except where the query string puts it', async () => {
  const presented: string[] = [];
  for (const badCase of MATRIX.filter((c) => c.deployment !== 'query')) {
    const request = await badCase.request(fixture);
    if (request.query) continue; // a URL's query string is logged, as API Gateway's access logs do: the documented trade-off
    presented.push(...Object.values(request.headers ?? {}), ...(request.protocols ?? []));
  }
  const logged = logLines.join('\n');
  // Runs after the matrix (jest keeps file order): the authorizer's refusals were forwarded to this log.
  expect(logged.split('"connect_refused"').length - 1).toBeGreaterThanOrEqual(30);
  expect(logged).not.toContain(fixture.secret);
  for (const value of presented) {
    for (const segment of value.replace(/^Bearer /, '').split(/[.,\s]/).filter((s) => s.length >= 16)) expect(logged).not.toContain(segment);
  }
});
