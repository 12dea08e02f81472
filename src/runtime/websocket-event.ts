import { AuthorizerContext, RESERVED_CONTEXT_KEYS } from './environment';

/**
 * The authorizer's output as API Gateway hands it to route integrations: `principalId`, the context
 * the authorizer returned, and `integrationLatency`. Context values arrive as strings.
 */
export interface AuthorizerFields {
  readonly principalId?: string;
  readonly integrationLatency?: number;
  readonly [key: string]: string | number | boolean | null | undefined;
}

/** The requestContext of a WebSocket route event (the fields the handlers use). */
export interface WebSocketRequestContext {
  readonly routeKey: string;
  readonly eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT';
  readonly connectionId: string;
  /** Epoch milliseconds; the same on every event of a connection. */
  readonly connectedAt: number;
  readonly apiId: string;
  readonly stage: string;
  readonly authorizer?: AuthorizerFields | null;
  readonly disconnectStatusCode?: number;
}

/** A `$connect`, `$disconnect` or message event from a Lambda proxy integration. */
export interface WebSocketEvent {
  readonly requestContext: WebSocketRequestContext;
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
}

/** Who holds a connection, as the authorizer established on `$connect`. */
export interface ConnectedUser {
  readonly userId: string;
  /** The token's `exp` in epoch seconds, when it had one. */
  readonly expiresAt?: number;
  /** The configured claims found in the authorizer context. */
  readonly claims: Readonly<Record<string, string>>;
}

/**
 * The user behind an event, or undefined when the authorizer context names none (a route reached
 * without the bundled authorizer). `userId` is preferred over `principalId`: it is the claim the
 * construct was told to use, while `principalId` is whatever a replaced authorizer chose.
 */
export function connectedUser(requestContext: WebSocketRequestContext, claimNames: readonly string[] = []): ConnectedUser | undefined {
  const authorizer = requestContext.authorizer ?? {};
  const userId = authorizer[AuthorizerContext.USER_ID] ?? authorizer.principalId;
  if (typeof userId !== 'string' || userId.length === 0) return undefined;

  const claims: Record<string, string> = {};
  for (const name of claimNames) {
    const value = authorizer[name];
    if (!RESERVED_CONTEXT_KEYS.includes(name) && value !== undefined && value !== null) claims[name] = String(value);
  }
  return { userId, expiresAt: epochSeconds(authorizer[AuthorizerContext.EXPIRES_AT]), claims };
}

/** `expiresAt` arrives as a string (`"1700000000"`); blank or junk means the token had no `exp`. */
function epochSeconds(value: AuthorizerFields[string]): number | undefined {
  if (typeof value !== 'number' && (typeof value !== 'string' || value.trim() === '')) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? seconds : undefined;
}
