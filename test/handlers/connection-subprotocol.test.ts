import { handler } from '../../src/handlers/connection.lambda';
import { Env } from '../../src/runtime/environment';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { LocalDynamo, startDynalite } from '../support/dynalite';
import { authorizedAs, newConnectionId, routeEvent } from '../support/websocket-events';

let dynamo: LocalDynamo;
let output: CapturedConsole;

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLWEifQ.c2lnbmF0dXJl';

/** A `$connect` event whose handshake offered `protocols` (API Gateway passes the header as the client sent it). */
function connectOffering(protocols: string | undefined, headerName = 'Sec-WebSocket-Protocol') {
  const event = routeEvent('CONNECT', newConnectionId(), authorizedAs('user-a'));
  return { ...event, headers: { Host: 'a1b2c3d4e5.execute-api.us-east-1.amazonaws.com', ...(protocols === undefined ? {} : { [headerName]: protocols }) } };
}

beforeAll(async () => {
  useDummyAwsEnvironment();
  dynamo = await startDynalite();
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
  process.env[Env.TABLE_NAME] = dynamo.tableName;
});

afterAll(async () => {
  delete process.env[Env.AUTH_TOKEN_LOCATION];
  await dynamo.close();
});

beforeEach(() => {
  output = captureConsole();
});

afterEach(() => {
  output.restore();
});

describe('with the token in a subprotocol', () => {
  beforeAll(() => {
    process.env[Env.AUTH_TOKEN_LOCATION] = 'subprotocol:authws';
  });

  test.each([
    ['protocol name first', `authws, ${TOKEN}`, 'Sec-WebSocket-Protocol'],
    ['token first', `${TOKEN},authws`, 'Sec-WebSocket-Protocol'],
    ['a lower-case header name', `authws, ${TOKEN}`, 'sec-websocket-protocol'],
  ])('$connect echoes the protocol name, never the token (%s)', async (_case, offered, headerName) => {
    const result = await handler(connectOffering(offered, headerName));
    expect(result).toEqual({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'authws' } });
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  test('$connect echoes nothing when the protocol name was not offered (no subprotocol is chosen)', async () => {
    expect(await handler(connectOffering(undefined))).toEqual({ statusCode: 200 });
    expect(await handler(connectOffering(`graphql-ws, ${TOKEN}`))).toEqual({ statusCode: 200 });
  });

  test('$disconnect returns no handshake headers', async () => {
    const event = { ...routeEvent('DISCONNECT', newConnectionId(), authorizedAs('user-a')), headers: { 'Sec-WebSocket-Protocol': 'authws' } };
    expect(await handler(event)).toEqual({ statusCode: 200 });
  });
});

test.each(['header:Authorization', 'query:token', undefined])('with the token at %p, $connect echoes no subprotocol', async (location) => {
  if (location) process.env[Env.AUTH_TOKEN_LOCATION] = location;
  else delete process.env[Env.AUTH_TOKEN_LOCATION];
  expect(await handler(connectOffering('authws'))).toEqual({ statusCode: 200 });
});
