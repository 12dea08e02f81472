import { Environment, listSetting, positiveIntegerSetting } from '../runtime/configuration';
import { connectionRow, ConnectionStore } from '../runtime/connection-store';
import { Defaults, Env } from '../runtime/environment';
import { errorName, logEvent } from '../runtime/log';
import { connectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

export interface ConnectionResult {
  readonly statusCode: number;
}

/** Built on the first event, so the environment is read then; reused by the container after that. */
let store: ConnectionStore | undefined;

/**
 * `$connect` records the connection in the registry; `$disconnect` removes it. Both are idempotent,
 * and a failure is answered with a status code rather than a throw.
 */
export const handler = async (event: WebSocketEvent): Promise<ConnectionResult> => {
  const { requestContext } = event;
  try {
    store ??= ConnectionStore.fromEnvironment(process.env);
    switch (requestContext.eventType) {
      case 'CONNECT':
        return await connect(store, requestContext, process.env);
      case 'DISCONNECT':
        await store.remove(requestContext.connectionId);
        return { statusCode: 200 };
      default:
        return { statusCode: 400 };
    }
  } catch (err) {
    // On $connect a 500 refuses the handshake: better than a connection the registry does not know.
    logEvent('error', 'connection_event_failed', {
      eventType: requestContext.eventType, connectionId: requestContext.connectionId, error: errorName(err),
    });
    return { statusCode: 500 };
  }
};

async function connect(registry: ConnectionStore, requestContext: WebSocketRequestContext, env: Environment): Promise<ConnectionResult> {
  const user = connectedUser(requestContext, listSetting(env, Env.AUTH_CONTEXT_CLAIMS));
  if (!user) {
    logEvent('warn', 'connect_without_user', { connectionId: requestContext.connectionId });
    return { statusCode: 403 };
  }
  const ttlSeconds = positiveIntegerSetting(env, Env.CONNECTION_TTL_SECONDS, Defaults.CONNECTION_TTL_SECONDS);
  await registry.register(connectionRow(requestContext, user, ttlSeconds));
  return { statusCode: 200 };
}
