import { randomBytes } from 'node:crypto';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import type { AuthorizerFields, WebSocketEvent, WebSocketRequestContext } from '../../src/runtime/websocket-event';

export const API_ID = 'a1b2c3d4e5';
export const STAGE = 'dev';

/** A connection id shaped like API Gateway's: 16 base64 characters, often ending in `=`. */
export function newConnectionId(): string {
  return randomBytes(11).toString('base64');
}

/** The REQUEST authorizer event API Gateway sends for `$connect`. */
export function authorizerEvent(request: {
  headers?: Record<string, string>;
  query?: Record<string, string>;
  connectionId?: string;
} = {}): APIGatewayRequestAuthorizerEvent {
  const headers = { 'Host': `${API_ID}.execute-api.us-east-1.amazonaws.com`, 'Sec-WebSocket-Version': '13', ...request.headers };
  return {
    type: 'REQUEST',
    methodArn: `arn:aws:execute-api:us-east-1:123456789012:${API_ID}/${STAGE}/$connect`,
    resource: '',
    path: '',
    httpMethod: '',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    pathParameters: null,
    // API Gateway leaves these out when there is no query string, rather than sending empty maps.
    queryStringParameters: request.query ?? null,
    multiValueQueryStringParameters: request.query
      ? Object.fromEntries(Object.entries(request.query).map(([k, v]) => [k, [v]]))
      : null,
    stageVariables: null,
    requestContext: { connectionId: request.connectionId ?? newConnectionId(), routeKey: '$connect', eventType: 'CONNECT', apiId: API_ID, stage: STAGE } as never,
  };
}

/** A route event for the connection `connectionId`; `authorizer` as API Gateway passes it on (values as strings). */
export function routeEvent(
  eventType: WebSocketRequestContext['eventType'],
  connectionId: string,
  authorizer: AuthorizerFields | undefined,
  body?: string,
): WebSocketEvent {
  const routeKey = { CONNECT: '$connect', DISCONNECT: '$disconnect', MESSAGE: '$default' }[eventType];
  return {
    requestContext: {
      routeKey,
      eventType,
      connectionId,
      connectedAt: 1_700_000_000_000,
      apiId: API_ID,
      stage: STAGE,
      authorizer,
      ...(eventType === 'DISCONNECT' ? { disconnectStatusCode: 1001 } : {}),
    },
    body,
    isBase64Encoded: false,
  };
}

/** The authorizer fields a connection of `userId` carries once the bundled authorizer allowed it. */
export function authorizedAs(userId: string, extra: Record<string, string> = {}): AuthorizerFields {
  return { principalId: userId, userId, integrationLatency: 12, ...extra };
}
