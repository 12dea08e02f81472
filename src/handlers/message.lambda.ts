import type { Context } from 'aws-lambda';
import { channelServiceFromEnvironment } from '../runtime/channels';
import { ConnectionExpiry } from '../runtime/connection-expiry';
import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { errorFrame, messageFrame, MessageRejectedError, parseClientFrame, pongFrame, withRequestId } from '../runtime/envelope';
import { Env } from '../runtime/environment';
import type { FanOutResult } from '../runtime/fan-out';
import { eventFields, withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addDeliveryMetrics } from '../runtime/metrics';
import { reauthenticate } from '../runtime/reauth';
import { TokenVerifier } from '../runtime/token-verifier';
import { connectedUser, ConnectedUser, WebSocketEvent, WebSocketRequestContext } from '../runtime/websocket-event';

/** Built on the first `reauth`, with the authorizer's settings (the construct gives both the same AUTH_* environment). */
let verifier: TokenVerifier | undefined;

/**
 * The `$default` route: broadcast, send, ping, reauth, and the channel actions (subscribe,
 * unsubscribe, publish, presence). One-way: replies and error frames go to the sender
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
  let requestId: string | undefined;
  try {
    const sender = await authenticatedSender(event.requestContext);
    const request = parseClientFrame(event.body);
    requestId = request.requestId;
    const channels = channelServiceFromEnvironment(event.requestContext, process.env);
    const asked = { connectionId, requestId, deadline };
    switch (request.action) {
      case 'broadcast':
        await channels?.checkAction('broadcast', connectionId, sender.userId, requestId);
        logFanOut(request.action, await delivery.toAll(messageFrame(request.messageJson, sender.userId), deadline));
        break;
      case 'send':
        await channels?.checkAction('send', connectionId, sender.userId, requestId);
        logFanOut(request.action, await delivery.toUser(request.to, messageFrame(request.messageJson, sender.userId), deadline));
        break;
      case 'ping':
        await delivery.toConnection(connectionId, withRequestId(pongFrame(), requestId), deadline);
        break;
      case 'reauth':
        if (!process.env[Env.AUTH_SECRET_ARN] && !process.env[Env.AUTH_JWKS_URL]) {
          // WebSocketAuth.lambdaAuthorizer: the API's own function checks tokens, on $connect only.
          throw new MessageRejectedError('BadRequest', 'reauth is not available on this API: its tokens are checked when connecting only; reconnect with a fresh token.');
        }
        verifier ??= TokenVerifier.fromEnvironment(process.env);
        const user = { connectionId, userId: sender.userId };
        const reauthenticated = await reauthenticate(verifier, expiryOf(event.requestContext), user, request.token);
        await delivery.toConnection(connectionId, withRequestId(reauthenticated, requestId), deadline);
        break;
      case 'subscribe':
        await requireChannels(channels).subscribe(asked, request.channel, request.since);
        break;
      case 'unsubscribe':
        await requireChannels(channels).unsubscribe(asked, request.channel);
        break;
      case 'publish':
        logFanOut(request.action, await requireChannels(channels).publishFromClient(asked, request.channel, request.messageJson));
        break;
      case 'presence':
        await requireChannels(channels).presence(asked, request.channel, request.cursor);
        break;
    }
  } catch (err) {
    if (!(err instanceof MessageRejectedError)) throw err;
    const context = { ...(requestId !== undefined ? { requestId } : {}), ...err.context };
    if (err.code === 'TokenExpired') {
      // A connection does not outlive its token: tell it why, then close it.
      const outcome = await expiryOf(event.requestContext).close(connectionId, errorFrame(err.code, err.message, context));
      logEvent('info', 'connection_expired', { outcome });
      return;
    }
    await delivery.toConnection(connectionId, errorFrame(err.code, err.message, context), deadline);
  }
}

function requireChannels<T>(channels: T | undefined): T {
  if (!channels) throw new MessageRejectedError('UnknownAction', 'This API has no channels.');
  return channels;
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

function logFanOut(action: string, result: DeliveryResult | FanOutResult): void {
  addDeliveryMetrics(result);
  logEvent('info', 'fan_out', { action, ...result });
}
