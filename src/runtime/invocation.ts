import { InvocationFields, InvocationScope, runInInvocation } from './log';
import { flushMetrics } from './metrics';

/** The Lambda context fields the handlers log (all optional: tests and scripts call handlers without one). */
export interface InvocationContext {
  readonly awsRequestId?: string;
  readonly functionName?: string;
}

/** What the event tells about the invocation. */
export interface EventFields {
  readonly connectionId?: string;
  readonly routeKey?: string;
  readonly eventType?: string;
  /** The API id, the metrics' dimension when WEBSOCKET_API_ID is not set. */
  readonly apiId?: string;
}

/** The fields a WebSocket event's (or an authorizer event's) requestContext gives. */
export function eventFields(requestContext: unknown): EventFields {
  if (typeof requestContext !== 'object' || requestContext === null) return {};
  const rc = requestContext as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' && value.length > 0 ? value : undefined);
  return { connectionId: text(rc.connectionId), routeKey: text(rc.routeKey), eventType: text(rc.eventType), apiId: text(rc.apiId) };
}

/**
 * Runs one handler invocation: every log line written inside it carries the request id, function
 * name, connection id, route key and event type; the metrics it records are written as one EMF line
 * when it ends, whether it returned or threw.
 */
export function withInvocation<T>(context: InvocationContext | undefined, event: EventFields, fn: () => Promise<T>): Promise<T> {
  const fields: InvocationFields = {
    requestId: context?.awsRequestId,
    functionName: context?.functionName ?? process.env.AWS_LAMBDA_FUNCTION_NAME,
    connectionId: event.connectionId,
    routeKey: event.routeKey,
    eventType: event.eventType,
  };
  const scope: InvocationScope = { fields, metrics: new Map(), apiId: event.apiId };
  return runInInvocation(scope, async () => {
    try {
      return await fn();
    } finally {
      flushMetrics(scope);
    }
  });
}
