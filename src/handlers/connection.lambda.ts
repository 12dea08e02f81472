import { channelServiceFromEnvironment } from '../runtime/channels';
import { Environment, listSetting, optionalSetting, positiveIntegerSetting } from '../runtime/configuration';
import { connectionRow, ConnectionStore } from '../runtime/connection-store';
import { Defaults, Env } from '../runtime/environment';
import { eventFields, InvocationContext, withInvocation } from '../runtime/invocation';
import { lifecycleSinkFromEnvironment } from '../runtime/lifecycle-events';
import { errorName, logEvent } from '../runtime/log';
import { connectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

export interface ConnectionResult {
  readonly statusCode: number;
  /** Headers API Gateway adds to the handshake's 101 response. */
  readonly headers?: Record<string, string>;
}

/** A `$connect` event carries the handshake's headers; other events carry none or a fixed few. */
export type ConnectionEvent = WebSocketEvent & { readonly headers?: Readonly<Record<string, string | undefined>> | null };

/** Built on the first event, so the environment is read then; reused by the container after that. */
let store: ConnectionStore | undefined;

/**
 * `$connect` records the connection in the registry; `$disconnect` removes it and its channel
 * subscriptions. Both are idempotent,
 * and a failure is answered with a status code rather than a throw.
 */
export const handler = async (event: ConnectionEvent, context?: InvocationContext): Promise<ConnectionResult> =>
  withInvocation(context, eventFields(event.requestContext), () => handle(event));

async function handle(event: ConnectionEvent): Promise<ConnectionResult> {
  const { requestContext } = event;
  try {
    store ??= ConnectionStore.fromEnvironment(process.env);
    switch (requestContext.eventType) {
      case 'CONNECT':
        return await connect(store, event, process.env);
      case 'DISCONNECT':
        await store.remove(requestContext.connectionId);
        // Its subscriptions go too; presence channels hear that the user left (when it was the last tab).
        await channelServiceFromEnvironment(requestContext, process.env)?.disconnect(requestContext.connectionId);
        await lifecycleSinkFromEnvironment(process.env)?.connection({
          event: 'disconnected', connectionId: requestContext.connectionId, userId: connectedUser(requestContext)?.userId,
        });
        logEvent('info', 'disconnected', { disconnectStatusCode: requestContext.disconnectStatusCode });
        return { statusCode: 200 };
      default:
        return { statusCode: 400 };
    }
  } catch (err) {
    // On $connect a 500 refuses the handshake: better than a connection the registry does not know.
    logEvent('error', 'connection_event_failed', { error: errorName(err) });
    return { statusCode: 500 };
  }
}

async function connect(registry: ConnectionStore, event: ConnectionEvent, env: Environment): Promise<ConnectionResult> {
  const requestContext: WebSocketRequestContext = event.requestContext;
  const user = connectedUser(requestContext, listSetting(env, Env.AUTH_CONTEXT_CLAIMS));
  if (!user) {
    logEvent('warn', 'connect_without_user');
    return { statusCode: 403 };
  }
  if (user.expiresAt !== undefined && user.expiresAt <= Date.now() / 1000) {
    // The token expired between the authorizer and here: such a connection would be closed at once.
    logEvent('warn', 'connect_expired', { userId: user.userId });
    return { statusCode: 401 };
  }
  const ttlSeconds = positiveIntegerSetting(env, Env.CONNECTION_TTL_SECONDS, Defaults.CONNECTION_TTL_SECONDS);
  await registry.register(connectionRow(requestContext, user, ttlSeconds));
  logEvent('info', 'connected', { userId: user.userId });
  await lifecycleSinkFromEnvironment(env)?.connection({ event: 'connected', connectionId: requestContext.connectionId, userId: user.userId });
  const protocol = chosenSubprotocol(event, env);
  return protocol ? { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': protocol } } : { statusCode: 200 };
}

/**
 * With the token in a subprotocol, the client offered two: the protocol name and the token. A
 * browser closes a handshake that echoes none of its offers, and API Gateway echoes nothing itself,
 * so `$connect` names the protocol (never the token) in its response.
 */
function chosenSubprotocol(event: ConnectionEvent, env: Environment): string | undefined {
  const location = optionalSetting(env, Env.AUTH_TOKEN_LOCATION);
  if (!location?.startsWith('subprotocol:')) return undefined;
  const protocol = location.slice('subprotocol:'.length).trim();
  const offered = Object.entries(event.headers ?? {})
    .filter(([name]) => name.toLowerCase() === 'sec-websocket-protocol')
    .flatMap(([, value]) => (value ?? '').split(',').map((item) => item.trim()));
  return offered.includes(protocol) ? protocol : undefined;
}
