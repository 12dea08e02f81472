import { deadlineMargin, Delivery, DeliveryResult } from '../runtime/delivery';
import { parsePublishRequest, PublishError, publishedFrame } from '../runtime/publish-request';

/** The invocation context fields the publisher reads. */
interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * Backends push: `{"to":{"all":true}|{"userId":"u"}|{"connectionId":"c"},"message":<any>}`,
 * answered with the counts. Recipients receive `{"message":<any>}`, with `"sender"` when the request
 * names one. A malformed request is answered with `{"error":{"code":"BadRequest"|"TooLarge",...}}`,
 * not thrown, so callers in any language read one JSON shape.
 */
export const handler = async (event: unknown, context?: InvocationContext): Promise<DeliveryResult | PublishError> => {
  const parsed = parsePublishRequest(event);
  if ('error' in parsed) return parsed;
  const delivery = Delivery.fromEnvironment({}, process.env);
  const deadline = context ? Date.now() + context.getRemainingTimeInMillis() - deadlineMargin(delivery.postTimeoutMs) : undefined;
  const frame = publishedFrame(parsed);
  if ('all' in parsed.to) return delivery.toAll(frame, deadline);
  if ('userId' in parsed.to) return delivery.toUser(parsed.to.userId, frame, deadline);
  return delivery.toConnection(parsed.to.connectionId, frame);
};
