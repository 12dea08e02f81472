import type { IntegrationModel } from './assembly';
import { HandshakeRequest, headerValue } from './events';
import { LambdaInvocationError, LambdaRunner } from './lambda-runner';
import { renderTemplate } from './request-template';
import { selectRouteKey } from './route-selection';

/**
 * Calls a route's integration: a Lambda function (proxy), an HTTP backend (proxy: the body as is;
 * non-proxy: the request template rendered), or a mock. Failures reach the caller as
 * IntegrationError, which the gateway turns into what API Gateway does (a refused handshake, or an
 * "Internal server error" frame).
 */

export class IntegrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrationError';
  }
}

export interface IntegrationResult {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface IntegrationRequest {
  /** The Lambda proxy event. */
  readonly event: Record<string, unknown>;
  readonly requestContext: Record<string, unknown>;
  readonly body?: string;
  readonly handshake?: HandshakeRequest;
  readonly stageVariables: Readonly<Record<string, string>>;
}

export type FunctionLookup = (functionArn: string) => LambdaRunner | undefined;

export async function callIntegration(
  integration: IntegrationModel,
  request: IntegrationRequest,
  runners: FunctionLookup,
): Promise<IntegrationResult> {
  switch (integration.type) {
    case 'AWS_PROXY': {
      const runner = runners(integration.functionArn);
      if (!runner) throw new IntegrationError(`the integration invokes ${integration.functionArn}, which is not a function of this assembly`);
      try {
        return lambdaProxyResult(await runner.invoke(request.event));
      } catch (err) {
        if (err instanceof LambdaInvocationError) throw new IntegrationError(err.message);
        throw err;
      }
    }
    case 'HTTP':
    case 'HTTP_PROXY':
      return callHttp(integration, request);
    case 'MOCK':
      return { statusCode: 200, headers: {} };
    case 'UNSUPPORTED':
      throw new IntegrationError(integration.description);
  }
}

/** A Lambda proxy result: `{ statusCode, headers, body }`; anything else is a 200 whose body is the value. */
function lambdaProxyResult(result: unknown): IntegrationResult {
  if (result === null || result === undefined) return { statusCode: 200, headers: {} };
  if (typeof result !== 'object') return { statusCode: 200, headers: {}, body: String(result) };
  const proxy = result as { statusCode?: unknown; headers?: Record<string, unknown>; multiValueHeaders?: Record<string, unknown[]>; body?: unknown };
  if (proxy.statusCode === undefined) return { statusCode: 200, headers: {}, body: JSON.stringify(result) };
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(proxy.multiValueHeaders ?? {})) headers[name] = values.map(String).join(',');
  for (const [name, value] of Object.entries(proxy.headers ?? {})) headers[name] = String(value);
  const body = proxy.body === undefined || proxy.body === null ? undefined : typeof proxy.body === 'string' ? proxy.body : JSON.stringify(proxy.body);
  return { statusCode: Number(proxy.statusCode), headers, body };
}

async function callHttp(integration: Extract<IntegrationModel, { type: 'HTTP' | 'HTTP_PROXY' }>, request: IntegrationRequest): Promise<IntegrationResult> {
  const url = new URL(integration.uri);
  const headers: Record<string, string> = {};
  for (const [target, source] of Object.entries(integration.requestParameters)) {
    const value = parameterValue(source, request);
    if (value === undefined) continue;
    const header = /^integration\.request\.header\.(.+)$/.exec(target);
    const query = /^integration\.request\.querystring\.(.+)$/.exec(target);
    if (header) headers[header[1]] = value;
    else if (query) url.searchParams.set(query[1], value);
  }

  let body: string | undefined;
  if (integration.type === 'HTTP_PROXY') {
    body = request.body;
  } else {
    const template = chooseTemplate(integration.requestTemplates, integration.templateSelectionExpression, request.body);
    body = template === undefined ? request.body : renderTemplate(template, request);
    headers['Content-Type'] ??= 'application/json';
  }

  let response: Response;
  try {
    response = await fetch(url, {
      method: integration.method,
      headers,
      body: ['GET', 'HEAD'].includes(integration.method.toUpperCase()) ? undefined : body,
      signal: AbortSignal.timeout(integration.timeoutMs),
    });
  } catch (err) {
    throw new IntegrationError(`${integration.method} ${integration.uri} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const text = await response.text();
  return { statusCode: response.status, headers: Object.fromEntries(response.headers), body: text.length > 0 ? text : undefined };
}

/** A request parameter's source: `context.x.y`, `route.request.header.x`, `route.request.querystring.x`, `stageVariables.x` or `'literal'`. */
function parameterValue(source: string, request: IntegrationRequest): string | undefined {
  const literal = /^'(.*)'$/.exec(source);
  if (literal) return literal[1];
  const [, kind, name] = /^(context|route\.request\.header|route\.request\.querystring|stageVariables)\.(.+)$/.exec(source) ?? [];
  switch (kind) {
    case 'context': return stringOrUndefined(lookup(request.requestContext, name));
    case 'route.request.header': return request.handshake ? headerValue(request.handshake.headers, name) : undefined;
    case 'route.request.querystring': return request.handshake?.queryStringParameters?.[name];
    case 'stageVariables': return request.stageVariables[name];
    default: return undefined;
  }
}

function chooseTemplate(templates: Readonly<Record<string, string>>, expression: string | undefined, body: string | undefined): string | undefined {
  if (Object.keys(templates).length === 0) return undefined;
  // CloudFormation needs `$default` escaped as `\$default` in a template selection expression.
  const unescaped = expression?.replace(/^\\/, '');
  const key = unescaped?.startsWith('$request.body.') ? selectRouteKey(unescaped, body ?? '') : unescaped;
  return (key !== undefined ? templates[key] : undefined) ?? templates.$default;
}

function lookup(value: unknown, path: string): unknown {
  let current = value;
  for (const segment of path.split('.').filter((part) => part.length > 0)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function stringOrUndefined(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
