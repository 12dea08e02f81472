import type { Context } from 'aws-lambda';
import { ConnectionExpiry } from '../runtime/connection-expiry';
import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { errorFrame, messageFrame, MessageRejectedError, parseClientFrame, pongFrame } from '../runtime/envelope';
import { Env } from '../runtime/environment';
import { eventFields, withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addDeliveryMetrics } from '../runtime/metrics';
import { reauthenticate } from '../runtime/reauth';
import { TokenVerifier } from '../runtime/token-verifier';
import { connectedUser, ConnectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

/** Built on the first `reauth`, with the authorizer's settings (the construct gives both the same AUTH_* environment). */
let verifier: TokenVerifier | undefined;

/**
 * The `$default` route: broadcast, send, ping and reauth. One-way: replies and error frames go to the sender
 * through @connections, and the handler always answers 200 so API Gateway never sends the client an
 * "Internal server error" frame.
 *
 * A broadcast or send writes its counts as one EMF line; replies to the sender (pong, error frames,
 * reauth) are not counted.
 */
export const handler = async (event: WebSocketEvent, context?: Context): Promise<{ statusCode: number }> =>
  withInvocation(context, eventFields(event.requestContext), () => handle(event, context));

async function handle(event: WebSocketEvent, context?: Context): Promise<{ statusCode: number }> {
  const { requestContext } = event;
  try {
    // Built on the first message (the environment is read then) and kept by the container.
    const delivery = Delivery.fromEnvironment(requestContext, process.env);
    // An inline broadcast stops pulling recipients before the invocation's own timeout.
    const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - deadlineMargin(delivery.postTimeoutMs) : undefined;
    await serve(event, delivery, deadline);
  } catch (err) {
    logEvent('error', 'message_failed', { error: errorName(err) });
  }
  return { statusCode: 200 };
}

async function serve(event: WebSocketEvent, delivery: Delivery, deadline?: number): Promise<void> {
  const { connectionId } = event.requestContext;
  try {
    const sender = await authenticatedSender(event.requestContext);
    const request = parseClientFrame(event.body);
    switch (request.action) {
      case 'broadcast':
        logFanOut(request.action, await delivery.toAll(messageFrame(request.messageJson, sender.userId), deadline));
        break;
      case 'send':
        logFanOut(request.action, await delivery.toUser(request.to, messageFrame(request.messageJson, sender.userId), deadline));
        break;
      case 'ping':
        await delivery.toConnection(connectionId, pongFrame(), deadline);
        break;
      case 'reauth':
        if (!process.env[Env.AUTH_SECRET_ARN] && !process.env[Env.AUTH_JWKS_URL]) {
          // WebSocketAuth.lambdaAuthorizer: the API's own function checks tokens, on $connect only.
          throw new MessageRejectedError('BadRequest', 'reauth is not available on this API: its tokens are checked when connecting only; reconnect with a fresh token.');
        }
        verifier ??= TokenVerifier.fromEnvironment(process.env);
        await delivery.toConnection(connectionId,
          await reauthenticate(verifier, expiryOf(event.requestContext), { connectionId, userId: sender.userId }, request.token), deadline);
        break;
    }
  } catch (err) {
    if (!(err instanceof MessageRejectedError)) throw err;
    if (err.code === 'TokenExpired') {
      // A connection does not outlive its token: tell it why, then close it.
      const outcome = await expiryOf(event.requestContext).close(connectionId, errorFrame(err.code, err.message));
      logEvent('info', 'connection_expired', { outcome });
      return;
    }
    await delivery.toConnection(connectionId, errorFrame(err.code, err.message), deadline);
  }
}

function expiryOf(requestContext: WebSocketRequestContext): ConnectionExpiry {
  return ConnectionExpiry.fromEnvironment(requestContext, process.env);
}

/**
 * The sender as the authorizer established it; a connection whose token has expired may no longer
 * send. Past the `$connect` token's expiry the registry decides, since a reauth may have moved it.
 */
async function authenticatedSender(requestContext: WebSocketRequestContext): Promise<ConnectedUser> {
  const sender = connectedUser(requestContext);
  if (!sender) throw new MessageRejectedError('Forbidden', 'This connection has no authenticated user.');
  if (await expiryOf(requestContext).hasExpired(requestContext.connectionId, sender.expiresAt)) {
    throw new MessageRejectedError('TokenExpired', 'The token of this connection has expired; reconnect with a new token, or send "reauth" before it expires.');
  }
  return sender;
}

function logFanOut(action: string, result: DeliveryResult): void {
  addDeliveryMetrics(result);
  logEvent('info', 'fan_out', { action, ...result });
}
