import { parseChannelName } from '../runtime/channel-names';
import { channelServiceFromEnvironment, ChannelService } from '../runtime/channels';
import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { MessageRejectedError } from '../runtime/envelope';
import { withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addDeliveryMetrics } from '../runtime/metrics';
import {
  isPresenceQuery, parsePresenceQuery, parsePublishRequest, PublishError, publishedFrame, PublishRequest,
} from '../runtime/publish-request';

/** The invocation context fields the publisher reads. */
interface InvocationContext {
  readonly awsRequestId?: string;
  readonly functionName?: string;
  getRemainingTimeInMillis(): number;
}

/**
 * Backends push: `{"to":{"all":true}|{"userId":"u"}|{"connectionId":"c"}|{"channel":"rooms/a"},"message":<any>}`,
 * answered with the counts (and a channel message's `id`); `{"presence":{"channel":"rooms/a"}}`
 * answers a page of the channel's members. Recipients receive `{"message":<any>}`, with `"sender"` when the request
 * names one. A malformed request is answered with `{"error":{"code":"BadRequest"|"TooLarge",...}}`,
 * not thrown, so callers in any language read one JSON shape.
 *
 * Each publish logs its counts (`publish`, never the message) and writes them as one EMF line.
 */
export const handler = async (event: unknown, context?: InvocationContext): Promise<PublisherAnswer> =>
  withInvocation(context, {}, () => (isPresenceQuery(event) ? members(event) : publish(event, context)));

type PublisherAnswer = DeliveryResult | (DeliveryResult & { id: number }) | { members: string[]; cursor: string | null } | PublishError;

async function publish(event: unknown, context?: InvocationContext): Promise<PublisherAnswer> {
  const parsed = parsePublishRequest(event);
  if ('error' in parsed) {
    logEvent('warn', 'publish_refused', { code: parsed.error.code });
    return parsed;
  }
  if ('channel' in parsed.to) return toChannel(parsed, parsed.to.channel, context);
  const to = 'all' in parsed.to ? 'all' : 'userId' in parsed.to ? 'user' : 'connection';
  try {
    const delivery = Delivery.fromEnvironment({}, process.env);
    const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - deadlineMargin(delivery.postTimeoutMs) : undefined;
    const frame = publishedFrame(parsed);
    const result = 'all' in parsed.to ? await delivery.toAll(frame, deadline)
      : 'userId' in parsed.to ? await delivery.toUser(parsed.to.userId, frame, deadline)
        : await delivery.toLiveConnection(parsed.to.connectionId, frame, deadline);
    addDeliveryMetrics(result);
    logEvent('info', 'publish', { to, ...result });
    return result;
  } catch (err) {
    logEvent('error', 'publish_failed', { to, error: errorName(err) });
    throw err;
  }
}

/** A channel message from a backend: numbered, kept when the channel's rule keeps history, fanned out to its subscribers. */
async function toChannel(request: PublishRequest, channel: string, context?: InvocationContext): Promise<PublisherAnswer> {
  try {
    const service = channels();
    const margin = deadlineMargin(Delivery.fromEnvironment({}, process.env).postTimeoutMs);
    const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - margin : undefined;
    const { id, result } = await service.publishFromBackend(parseChannelName(channel), request.messageJson, request.sender, deadline);
    addDeliveryMetrics(result);
    logEvent('info', 'publish', { to: 'channel', id, ...result });
    return { ...result, id };
  } catch (err) {
    if (err instanceof MessageRejectedError) return { error: { code: 'BadRequest', message: err.message } };
    logEvent('error', 'publish_failed', { to: 'channel', error: errorName(err) });
    throw err;
  }
}

/** A page of a channel's members. */
async function members(event: unknown): Promise<PublisherAnswer> {
  const query = parsePresenceQuery(event);
  if ('error' in query) return query;
  try {
    return await channels().members(parseChannelName(query.presence.channel), query.presence.cursor);
  } catch (err) {
    if (err instanceof RangeError) return { error: { code: 'BadRequest', message: '"cursor" is not a cursor of this channel.' } };
    throw err;
  }
}

function channels(): ChannelService {
  const service = channelServiceFromEnvironment({}, process.env);
  if (!service) throw new MessageRejectedError('BadRequest', 'This API has no channels table.');
  return service;
}
