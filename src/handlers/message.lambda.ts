import type { Context } from 'aws-lambda';
import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { errorFrame, messageFrame, MessageRejectedError, parseClientFrame, pongFrame } from '../runtime/envelope';
import { errorName, logEvent } from '../runtime/log';
import { connectedUser, ConnectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

/**
 * The `$default` route: broadcast, send and ping. One-way: replies and error frames go to the sender
 * through @connections, and the handler always answers 200 so API Gateway never sends the client an
 * "Internal server error" frame.
 */
export const handler = async (event: WebSocketEvent, context?: Context): Promise<{ statusCode: number }> => {
  const { requestContext } = event;
  try {
    // Built on the first message (the environment is read then) and kept by the container.
    const delivery = Delivery.fromEnvironment(requestContext, process.env);
    // An inline broadcast stops pulling recipients before the invocation's own timeout.
    const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - deadlineMargin(delivery.postTimeoutMs) : undefined;
    await serve(event, delivery, deadline);
  } catch (err) {
    logEvent('error', 'message_failed', { connectionId: requestContext.connectionId, error: errorName(err) });
  }
  return { statusCode: 200 };
};

async function serve(event: WebSocketEvent, delivery: Delivery, deadline?: number): Promise<void> {
  const { connectionId } = event.requestContext;
  try {
    const sender = authenticatedSender(event.requestContext);
    const request = parseClientFrame(event.body);
    switch (request.action) {
      case 'broadcast':
        logFanOut(request.action, await delivery.toAll(messageFrame(request.message, sender.userId), deadline));
        break;
      case 'send':
        logFanOut(request.action, await delivery.toUser(request.to, messageFrame(request.message, sender.userId), deadline));
        break;
      case 'ping':
        await delivery.toConnection(connectionId, pongFrame());
        break;
    }
  } catch (err) {
    if (!(err instanceof MessageRejectedError)) throw err;
    await delivery.toConnection(connectionId, errorFrame(err.code, err.message));
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

function logFanOut(action: string, result: DeliveryResult): void {
  logEvent('info', 'fan_out', { action, ...result });
}
