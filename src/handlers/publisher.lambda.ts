import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addDeliveryMetrics } from '../runtime/metrics';
import { parsePublishRequest, PublishError, publishedFrame } from '../runtime/publish-request';

/** The invocation context fields the publisher reads. */
interface InvocationContext {
  readonly awsRequestId?: string;
  readonly functionName?: string;
  getRemainingTimeInMillis(): number;
}

/**
 * Backends push: `{"to":{"all":true}|{"userId":"u"}|{"connectionId":"c"},"message":<any>}`,
 * answered with the counts. Recipients receive `{"message":<any>}`, with `"sender"` when the request
 * names one. A malformed request is answered with `{"error":{"code":"BadRequest"|"TooLarge",...}}`,
 * not thrown, so callers in any language read one JSON shape.
 *
 * Each publish logs its counts (`publish`, never the message) and writes them as one EMF line.
 */
export const handler = async (event: unknown, context?: InvocationContext): Promise<DeliveryResult | PublishError> =>
  withInvocation(context, {}, () => publish(event, context));

async function publish(event: unknown, context?: InvocationContext): Promise<DeliveryResult | PublishError> {
  const parsed = parsePublishRequest(event);
  if ('error' in parsed) {
    logEvent('warn', 'publish_refused', { code: parsed.error.code });
    return parsed;
  }
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
