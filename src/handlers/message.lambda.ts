import { ConnectionStore } from '../runtime/connection-store';
import { connectionsApiClient } from '../runtime/connections-api';
import { errorFrame, messageFrame, MessageRejectedError, parseClientFrame, pongFrame } from '../runtime/envelope';
import { FanOut, fanOutSettings } from '../runtime/fan-out';
import { errorName, logEvent } from '../runtime/log';
import { connectedUser, ConnectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

/** Built on the first message, so the environment is read then; reused by the container after that. */
let store: ConnectionStore | undefined;

/**
 * The `$default` route: broadcast, send and ping. One-way: replies and error frames go to the sender
 * through @connections, and the handler always answers 200 so API Gateway never sends the client an
 * "Internal server error" frame.
 */
export const handler = async (event: WebSocketEvent): Promise<{ statusCode: number }> => {
  const { requestContext } = event;
  try {
    store ??= ConnectionStore.fromEnvironment(process.env);
    const registry = store;
    const { concurrency, postTimeoutMs } = fanOutSettings(process.env);
    const fanOut = new FanOut({
      client: connectionsApiClient(requestContext, process.env, concurrency),
      onGone: (connectionId) => registry.remove(connectionId),
      concurrency,
      postTimeoutMs,
    });
    await serve(event, registry, fanOut);
  } catch (err) {
    logEvent('error', 'message_failed', { connectionId: requestContext.connectionId, error: errorName(err) });
  }
  return { statusCode: 200 };
};

async function serve(event: WebSocketEvent, registry: ConnectionStore, fanOut: FanOut): Promise<void> {
  const { connectionId } = event.requestContext;
  try {
    const sender = authenticatedSender(event.requestContext);
    const request = parseClientFrame(event.body);
    switch (request.action) {
      case 'broadcast':
        logFanOut(request.action, await fanOut.send(registry.all(), messageFrame(request.message, sender.userId)));
        break;
      case 'send':
        logFanOut(request.action, await fanOut.send(registry.ofUser(request.to), messageFrame(request.message, sender.userId)));
        break;
      case 'ping':
        await fanOut.sendTo(connectionId, pongFrame());
        break;
    }
  } catch (err) {
    if (!(err instanceof MessageRejectedError)) throw err;
    await fanOut.sendTo(connectionId, errorFrame(err.code, err.message));
  }
}

/** The sender as the authorizer established it; a connection whose token has expired may no longer send. */
function authenticatedSender(requestContext: WebSocketRequestContext, nowMs: number = Date.now()): ConnectedUser {
  const sender = connectedUser(requestContext);
  if (!sender) throw new MessageRejectedError('Forbidden', 'This connection has no authenticated user.');
  if (sender.expiresAt !== undefined && sender.expiresAt * 1000 < nowMs) {
    throw new MessageRejectedError('TokenExpired', 'The token of this connection has expired; reconnect with a new token.');
  }
  return sender;
}

function logFanOut(action: string, result: { delivered: number; gone: number; failed: number }): void {
  logEvent('info', 'fan_out', { action, ...result });
}
