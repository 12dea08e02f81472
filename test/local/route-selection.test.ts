import { chooseRoute, selectRouteKey } from '../../src/local/route-selection';

describe('selectRouteKey', () => {
  test('reads a field of the JSON body, nested fields too', () => {
    expect(selectRouteKey('$request.body.action', '{"action":"send"}')).toBe('send');
    expect(selectRouteKey('$request.body.meta.kind', '{"meta":{"kind":"orders"}}')).toBe('orders');
  });

  test('stringifies what it selects, as API Gateway does', () => {
    expect(selectRouteKey('$request.body.action', '{"action":1}')).toBe('1');
    expect(selectRouteKey('$request.body.action', '{"action":true}')).toBe('true');
  });

  test('selects nothing for a body that is not JSON or lacks the field', () => {
    expect(selectRouteKey('$request.body.action', 'hello')).toBeUndefined();
    expect(selectRouteKey('$request.body.action', '{"other":1}')).toBeUndefined();
    expect(selectRouteKey('$request.body.action', '{"action":null}')).toBeUndefined();
  });

  test('fills every part of a compound expression, or selects nothing', () => {
    const expression = '${request.body.service}/${request.body.action}';
    expect(selectRouteKey(expression, '{"service":"orders","action":"create"}')).toBe('orders/create');
    expect(selectRouteKey(expression, '{"service":"orders"}')).toBeUndefined();
  });
});

describe('chooseRoute', () => {
  const routes = new Map([['send', 'send-route'], ['$default', 'default-route'], ['$disconnect', 'disconnect-route']]);

  test('picks the route with the selected key', () => {
    expect(chooseRoute(routes, 'send')).toEqual({ routeKey: 'send', route: 'send-route' });
  });

  test('falls back to $default for an unknown key or none, and never selects a $ route by content', () => {
    expect(chooseRoute(routes, 'unknown')?.routeKey).toBe('$default');
    expect(chooseRoute(routes, undefined)?.routeKey).toBe('$default');
    expect(chooseRoute(routes, '$disconnect')?.routeKey).toBe('$default');
  });

  test('finds nothing without a match and without $default', () => {
    expect(chooseRoute(new Map([['send', 'send-route']]), 'unknown')).toBeUndefined();
  });
});
