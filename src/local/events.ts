import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * The events API Gateway sends a WebSocket API's integrations, shaped as the service shapes them
 * (see shared/docs/websocket-protocol.md): handlers tested here see what they will see deployed.
 */

/**
 * An id in the form API Gateway uses for connection, request and message ids: 16 characters of
 * base64 (11 random bytes), so it often ends in `=` and may hold `+` or `/` — clients must
 * URL-encode it in @connections paths, as they must in AWS.
 */
export function awsStyleId(): string {
  return randomBytes(11).toString('base64');
}

/** What a connection carries from its `$connect` to every later event. */
export interface ConnectionIdentity {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
  /** `{ principalId, ...context, integrationLatency }` once a Lambda authorizer allowed the connect. */
  authorizer?: Record<string, unknown>;
}

/** The API a request arrived on. */
export interface ApiEndpoint {
  readonly apiId: string;
  readonly stage: string;
  /** The Host the client connected to: what API Gateway reports as `domainName` (a custom domain, locally). */
  readonly domainName: string;
}

export type EventType = 'CONNECT' | 'MESSAGE' | 'DISCONNECT';

/** `requestContext` for one event of `connection`. */
export function requestContext(
  api: ApiEndpoint,
  connection: ConnectionIdentity,
  routeKey: string,
  eventType: EventType,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Date.now();
  const requestId = awsStyleId();
  return {
    routeKey,
    eventType,
    extendedRequestId: requestId,
    requestTime: clfTime(new Date(now)),
    messageDirection: 'IN',
    stage: api.stage,
    connectedAt: connection.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
    requestId,
    domainName: api.domainName,
    connectionId: connection.connectionId,
    apiId: api.apiId,
    ...(connection.authorizer ? { authorizer: connection.authorizer } : {}),
    ...extra,
  };
}

/** Headers and query string of the upgrade request, as `$connect` and the authorizer receive them. */
export interface HandshakeRequest {
  readonly headers: Record<string, string>;
  readonly multiValueHeaders: Record<string, string[]>;
  readonly queryStringParameters?: Record<string, string>;
  readonly multiValueQueryStringParameters?: Record<string, string[]>;
}

/**
 * Reads the upgrade request, keeping header names as the client sent them and adding the
 * X-Forwarded-* headers API Gateway's front end adds. The query string keys are absent (not empty)
 * when the URL has no query string.
 */
export function handshakeRequest(request: IncomingMessage, url: URL, sourceIp: string): HandshakeRequest {
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i];
    (multiValueHeaders[name] ??= []).push(request.rawHeaders[i + 1]);
  }
  const forwarded = {
    'X-Amzn-Trace-Id': [traceId()],
    'X-Forwarded-For': [sourceIp],
    'X-Forwarded-Port': [String(request.socket.localPort ?? '')],
    'X-Forwarded-Proto': ['http'],
  };
  for (const [name, values] of Object.entries(forwarded)) {
    if (!findHeaderName(multiValueHeaders, name)) multiValueHeaders[name] = values;
  }
  const headers = Object.fromEntries(Object.entries(multiValueHeaders).map(([name, values]) => [name, values.join(',')]));

  if (url.search.length <= 1) return { headers, multiValueHeaders };
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) (multiValueQueryStringParameters[name] ??= []).push(value);
  // API Gateway gives the last value of a repeated parameter in the single-value map.
  const queryStringParameters = Object.fromEntries(
    Object.entries(multiValueQueryStringParameters).map(([name, values]) => [name, values[values.length - 1]]),
  );
  return { headers, multiValueHeaders, queryStringParameters, multiValueQueryStringParameters };
}

/** An X-Ray trace header as API Gateway's front end adds it: `Root=1-{epoch seconds, hex}-{96 random bits, hex}`. */
export function traceId(): string {
  return `Root=1-${Math.floor(Date.now() / 1000).toString(16).padStart(8, '0')}-${randomBytes(12).toString('hex')}`;
}

/** The `$disconnect` headers: API Gateway sends a few fixed ones, not the client's. */
export function disconnectHeaders(domainName: string): HandshakeRequest {
  const headers = { 'Host': domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' };
  return { headers, multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])) };
}

/** A header's value by case-insensitive name. */
export function headerValue(headers: Record<string, string>, name: string): string | undefined {
  const key = findHeaderName(headers, name);
  return key === undefined ? undefined : headers[key];
}

function findHeaderName(headers: Record<string, unknown>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(headers).find((key) => key.toLowerCase() === lower);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `22/Nov/2025:23:45:01 +0000`, the Common Log Format API Gateway uses for `requestTime`. */
function clfTime(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}
