import type { AuthorizerModel } from './assembly';
import { HandshakeRequest, headerValue } from './events';
import { LambdaInvocationError } from './lambda-runner';

/**
 * The REQUEST authorizer on `$connect`, as API Gateway runs it: identity sources are checked
 * first (any missing or empty: 401, and the authorizer is never called), then the function's
 * policy decides (Allow: connect; Deny: 403; `Unauthorized` thrown: 401; anything invalid: 500).
 */

export type AuthorizationOutcome =
  | { readonly allowed: true; readonly authorizer: Record<string, unknown> }
  | { readonly allowed: false; readonly statusCode: number; readonly reason: string };

/** API Gateway's limit on an authorizer's response. */
const MAX_RESULT_BYTES = 8 * 1024;

/** The first identity source the request lacks (or has empty), or undefined when all are present. */
export function missingIdentitySource(
  authorizer: AuthorizerModel,
  request: HandshakeRequest,
  stageVariables: Readonly<Record<string, string>>,
  requestContext: Record<string, unknown>,
): string | undefined {
  for (const source of authorizer.identitySources) {
    const value = identityValue(source.trim(), request, stageVariables, requestContext);
    if (value === undefined || value.trim() === '') return source;
  }
  return undefined;
}

function identityValue(
  source: string,
  request: HandshakeRequest,
  stageVariables: Readonly<Record<string, string>>,
  requestContext: Record<string, unknown>,
): string | undefined {
  const [, kind, name] = /^(route\.request\.header|route\.request\.querystring|stageVariables|context)\.(.+)$/.exec(source) ?? [];
  switch (kind) {
    case 'route.request.header': return headerValue(request.headers, name);
    case 'route.request.querystring': return request.queryStringParameters?.[name];
    case 'stageVariables': return stageVariables[name];
    case 'context': {
      const value = requestContext[name];
      return value === undefined || value === null ? undefined : String(value);
    }
    default: return undefined;
  }
}

/** Turns what the authorizer function did (returned `result`, or threw `error`) into API Gateway's decision. */
export function authorizationOutcome(methodArn: string, result: unknown, error: unknown, latencyMs: number): AuthorizationOutcome {
  if (error !== undefined) {
    if (error instanceof LambdaInvocationError && error.errorMessage === 'Unauthorized') {
      return { allowed: false, statusCode: 401, reason: 'the authorizer threw Unauthorized' };
    }
    const detail = error instanceof Error ? error.message : String(error);
    return { allowed: false, statusCode: 500, reason: `the authorizer failed: ${detail}` };
  }

  const response = result as { principalId?: unknown; policyDocument?: { Statement?: unknown }; context?: unknown } | null;
  const statements = response?.policyDocument?.Statement;
  if (!response || typeof response !== 'object' || !Array.isArray(statements)) {
    return { allowed: false, statusCode: 500, reason: 'the authorizer returned no policyDocument with a Statement list' };
  }
  if (JSON.stringify(response).length > MAX_RESULT_BYTES) {
    return { allowed: false, statusCode: 500, reason: `the authorizer's response is over ${MAX_RESULT_BYTES} bytes` };
  }
  const context: Record<string, string> = {};
  for (const [key, value] of Object.entries((response.context ?? {}) as Record<string, unknown>)) {
    if (value === null || value === undefined) continue;
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      return { allowed: false, statusCode: 500, reason: `the authorizer's context value '${key}' is not a string, number or boolean` };
    }
    // API Gateway hands every context value to the integrations as a string.
    context[key] = String(value);
  }

  const effect = policyEffect(statements as Array<Record<string, unknown>>, methodArn);
  if (effect !== 'Allow') {
    return { allowed: false, statusCode: 403, reason: effect === 'Deny' ? 'the authorizer denied the connection' : 'the authorizer\'s policy does not allow this route' };
  }
  return {
    allowed: true,
    authorizer: {
      principalId: response.principalId === undefined ? undefined : String(response.principalId),
      ...context,
      integrationLatency: latencyMs,
    },
  };
}

/** IAM's rule: an explicit Deny wins, then an Allow; no matching statement denies. */
function policyEffect(statements: Array<Record<string, unknown>>, methodArn: string): 'Allow' | 'Deny' | undefined {
  let allowed = false;
  for (const statement of statements) {
    const actions = asList(statement.Action);
    const resources = asList(statement.Resource);
    const actionMatches = actions.some((action) => wildcardMatch(action, 'execute-api:Invoke'));
    const resourceMatches = resources.some((resource) => wildcardMatch(resource, methodArn));
    if (!actionMatches || !resourceMatches) continue;
    if (statement.Effect === 'Deny') return 'Deny';
    if (statement.Effect === 'Allow') allowed = true;
  }
  return allowed ? 'Allow' : undefined;
}

function asList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return value === undefined ? [] : [String(value)];
}

function wildcardMatch(pattern: string, value: string): boolean {
  const regex = pattern.split('').map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${regex}$`, 'i').test(value);
}
