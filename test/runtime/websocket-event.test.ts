import { connectedUser, WebSocketRequestContext } from '../../src/runtime/websocket-event';

function context(authorizer: WebSocketRequestContext['authorizer']): WebSocketRequestContext {
  return { routeKey: '$default', eventType: 'MESSAGE', connectionId: 'c1', connectedAt: 1, apiId: 'a', stage: 'dev', authorizer };
}

describe('connectedUser', () => {
  test('reads the user id, expiry and claims the authorizer passed on as strings', () => {
    const user = connectedUser(context({ principalId: 'u1', userId: 'u1', expiresAt: '1700000000', role: 'admin', integrationLatency: 3 }), ['role']);
    expect(user).toEqual({ userId: 'u1', expiresAt: 1_700_000_000, claims: { role: 'admin' } });
  });

  test('prefers userId and falls back to principalId', () => {
    expect(connectedUser(context({ principalId: 'p', userId: 'u' }))?.userId).toBe('u');
    expect(connectedUser(context({ principalId: 'p' }))?.userId).toBe('p');
  });

  test('no user without an authorizer context or with an empty user id', () => {
    expect(connectedUser(context(undefined))).toBeUndefined();
    expect(connectedUser(context(null))).toBeUndefined();
    expect(connectedUser(context({ principalId: '', userId: '' }))).toBeUndefined();
  });

  test('a blank or non-numeric expiresAt means no expiry, never "expired in 1970"', () => {
    expect(connectedUser(context({ userId: 'u', expiresAt: '' }))?.expiresAt).toBeUndefined();
    expect(connectedUser(context({ userId: 'u', expiresAt: 'soon' }))?.expiresAt).toBeUndefined();
    expect(connectedUser(context({ userId: 'u', expiresAt: null }))?.expiresAt).toBeUndefined();
    expect(connectedUser(context({ userId: 'u', expiresAt: 1_700_000_000 }))?.expiresAt).toBe(1_700_000_000);
  });

  test('copies only configured claims that are present, never the reserved keys', () => {
    const user = connectedUser(context({ userId: 'u', role: 'admin', org: 'acme' }), ['role', 'missing', 'principalId', 'integrationLatency']);
    expect(user?.claims).toEqual({ role: 'admin' });
  });
});
