import { callbackUrl, connectionsApiClient } from '../../src/runtime/connections-api';

test('uses CALLBACK_URL when the construct set it', () => {
  expect(callbackUrl({ apiId: 'abc123', stage: 'dev' }, { CALLBACK_URL: 'https://x.example/prod', AWS_REGION: 'eu-west-1' }))
    .toBe('https://x.example/prod');
});

test('otherwise builds the endpoint from the API id, region and stage, never from domainName', () => {
  const requestContext = { apiId: 'abc123', stage: 'live', domainName: 'chat.example.com' };
  expect(callbackUrl(requestContext, { AWS_REGION: 'eu-west-1' })).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/live');
});

test('refuses to guess without an API id, stage or region', () => {
  expect(() => callbackUrl({ stage: 'dev' }, { AWS_REGION: 'eu-west-1' })).toThrow(/apiId or stage/);
  expect(() => callbackUrl({ apiId: 'abc123' }, { AWS_REGION: 'eu-west-1' })).toThrow(/apiId or stage/);
  expect(() => callbackUrl({ apiId: 'abc123', stage: 'dev' }, {})).toThrow(/AWS_REGION/);
});

test('one client per endpoint, reused across invocations', async () => {
  const env = { AWS_REGION: 'eu-west-1' };
  const first = connectionsApiClient({ apiId: 'abc123', stage: 'dev' }, env, 10);
  expect(connectionsApiClient({ apiId: 'abc123', stage: 'dev' }, env, 10)).toBe(first);
  expect(connectionsApiClient({ apiId: 'abc123', stage: 'prod' }, env, 10)).not.toBe(first);
  const endpoint = await first.config.endpoint?.();
  expect(endpoint).toMatchObject({ protocol: 'https:', hostname: 'abc123.execute-api.eu-west-1.amazonaws.com', path: '/dev' });
});
