import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { closeAllClients, refusalStatus, TestClient } from './support/clients';
import { AuthenticatedWebSocketApi, TokenLocation, WebSocketAuth } from '../../src';
import { LocalGateway } from '../../src/local/gateway';

/**
 * `WebSocketAuth.lambdaAuthorizer` end to end: a function of the app decides who connects (here,
 * from a `ticket` query parameter), and the bundled registry, broadcast and send work as they do
 * with the bundled authorizer. Real `ws` clients against `authws local`.
 */

/** Allows `?ticket=ok-<user>` as that user, denies any other ticket. */
const TICKET_AUTHORIZER = `
exports.handler = async (event) => {
  const match = /^ok-(\\w+)$/.exec((event.queryStringParameters || {}).ticket || '');
  const effect = match ? 'Allow' : 'Deny';
  return {
    principalId: match ? match[1] : 'nobody',
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: event.methodArn }] },
    context: { tenant: 'acme' },
  };
};`;

let gateway: LocalGateway;
let url: string;

beforeAll(async () => {
  const outdir = mkdtempSync(join(tmpdir(), 'authws-custom-authorizer-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'CustomAuthorizer');
  const tickets = new lambda.Function(stack, 'Tickets', {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline(TICKET_AUTHORIZER),
  });
  new AuthenticatedWebSocketApi(stack, 'Chat', {
    auth: WebSocketAuth.lambdaAuthorizer(tickets, { tokenLocation: TokenLocation.queryString('ticket'), contextClaims: ['tenant'] }),
  });
  app.synth();
  gateway = await LocalGateway.start({ assemblyDirectory: outdir, port: 0, log: () => {} });
  url = gateway.stages[0].url;
}, 120_000);

afterEach(() => closeAllClients());

afterAll(async () => {
  await gateway?.close();
});

test('users your function allows connect, and a broadcast reaches them named by the principalId it answered', async () => {
  const alice = await TestClient.connect(`${url}?ticket=ok-alice`);
  const bob = await TestClient.connect(`${url}?ticket=ok-bob`);
  alice.send({ action: 'broadcast', message: 'Hello everyone' });
  expect(await alice.nextJson()).toEqual({ message: 'Hello everyone', sender: 'alice' });
  expect(await bob.nextJson()).toEqual({ message: 'Hello everyone', sender: 'alice' });
  bob.send({ action: 'send', to: 'alice', message: 'hi alice' });
  expect(await alice.nextJson()).toEqual({ message: 'hi alice', sender: 'bob' });
});

test('a ticket your function denies is refused with 403; no ticket at all with 401, before it runs', async () => {
  expect(await refusalStatus(`${url}?ticket=forged`)).toBe(403);
  expect(await refusalStatus(url)).toBe(401);
});

test('reauth is answered with BadRequest, and the connection stays open', async () => {
  const alice = await TestClient.connect(`${url}?ticket=ok-alice`);
  alice.send({ action: 'reauth', token: 'e30.e30.sig' });
  expect(await alice.nextJson()).toEqual({ error: { code: 'BadRequest', message: expect.stringMatching(/^reauth is not available on this API/) } });
  alice.send({ action: 'ping' });
  expect(await alice.nextJson()).toEqual({ action: 'pong' });
});
