/**
 * API Gateway's route selection for WebSocket messages: evaluate the API's route selection
 * expression against the message, then pick the route with that key, else `$default`, else none
 * (the client then gets a "Forbidden" frame).
 */

/**
 * The route key a message selects, or undefined when the body is not JSON or the expression finds
 * nothing. Supports `$request.body.<path>` and compound forms such as
 * `${request.body.service}/${request.body.action}`. The value is stringified, as API Gateway does.
 */
export function selectRouteKey(expression: string, body: string): string | undefined {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return undefined;
  }

  const simple = /^\$request\.body\.(.+)$/.exec(expression.trim());
  if (simple) return stringify(lookup(message, simple[1]));

  // Compound: every `${request.body.x}` must be found, or there is no match.
  let missing = false;
  const key = expression.replace(/\$\{request\.body\.([^}]+)\}/g, (_whole, path: string) => {
    const value = stringify(lookup(message, path));
    if (value === undefined) missing = true;
    return value ?? '';
  });
  return missing || key === expression ? undefined : key;
}

/** The route to run for a message: its selected key when that route exists, else `$default`, else none. */
export function chooseRoute<T>(routes: ReadonlyMap<string, T>, routeKey: string | undefined): { routeKey: string; route: T } | undefined {
  // `$connect`, `$disconnect` and `$default` are never selected by a message's content.
  if (routeKey !== undefined && !routeKey.startsWith('$')) {
    const route = routes.get(routeKey);
    if (route) return { routeKey, route };
  }
  const fallback = routes.get('$default');
  return fallback ? { routeKey: '$default', route: fallback } : undefined;
}

function lookup(value: unknown, path: string): unknown {
  let current = value;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function stringify(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
