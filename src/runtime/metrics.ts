import { HandlerMetrics, ObservabilityEnv } from './environment';
import { currentInvocation, InvocationScope, logEvent, writeLine } from './log';

/**
 * Handler metrics in CloudWatch embedded metric format (EMF): the handlers add to counts during an
 * invocation, and at its end one JSON line carries them all, which CloudWatch Logs turns into
 * metrics in the `AuthenticatedWebSocketApi` namespace with the one dimension `ApiId`:
 *
 * ```json
 * {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"AuthenticatedWebSocketApi",
 *   "Dimensions":[["ApiId"]],"Metrics":[{"Name":"Delivered","Unit":"Count"}]}]},
 *  "ApiId":"a1b2c3","Delivered":2,"requestId":"...","functionName":"..."}
 * ```
 *
 * A few dozen lines of our own rather than Powertools' Metrics, which with its Logger adds 35 KB to
 * each bundle and doubles the authorizer's (see log.ts and the README's "Logs and metrics").
 */
export type HandlerMetricName =
  | typeof HandlerMetrics.DELIVERED
  | typeof HandlerMetrics.GONE
  | typeof HandlerMetrics.FAILED
  | typeof HandlerMetrics.THROTTLED
  | typeof HandlerMetrics.RETRIED
  | typeof HandlerMetrics.AUTH_DENIED;

/** The fan-out counts a send answers (FanOutResult, DeliveryResult). */
export interface DeliveryCounts {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
  readonly retried: number;
  readonly throttled: number;
}

/** Adds `value` to `name` in the current invocation; outside one (a unit test, a script), nothing happens. */
export function addMetric(name: HandlerMetricName, value: number, scope: InvocationScope | undefined = currentInvocation()): void {
  if (!scope) return;
  scope.metrics.set(name, (scope.metrics.get(name) ?? 0) + value);
}

/**
 * Adds one send's counts: Delivered, Gone, Failed, Retried and Throttled (zeros included, so each
 * send is a data point). A broadcast handed to the queue (`queued`) adds nothing: its workers count it.
 */
export function addDeliveryMetrics(
  counts: DeliveryCounts & { readonly queued?: number },
  scope: InvocationScope | undefined = currentInvocation(),
): void {
  if (counts.queued !== undefined) return;
  addMetric(HandlerMetrics.DELIVERED, counts.delivered, scope);
  addMetric(HandlerMetrics.GONE, counts.gone, scope);
  addMetric(HandlerMetrics.FAILED, counts.failed, scope);
  addMetric(HandlerMetrics.RETRIED, counts.retried, scope);
  addMetric(HandlerMetrics.THROTTLED, counts.throttled, scope);
}

/** One EMF document: `values` as Count metrics under the ApiId dimension, with `properties` beside them (not dimensions). */
export function emfRecord(
  apiId: string,
  values: ReadonlyMap<string, number>,
  properties: Readonly<Record<string, string | undefined>> = {},
  timestamp: number = Date.now(),
): Record<string, unknown> {
  const record: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{
        Namespace: HandlerMetrics.NAMESPACE,
        Dimensions: [[HandlerMetrics.API_DIMENSION]],
        Metrics: [...values.keys()].map((name) => ({ Name: name, Unit: 'Count' })),
      }],
    },
  };
  for (const [key, value] of Object.entries(properties)) if (value !== undefined) record[key] = value;
  record[HandlerMetrics.API_DIMENSION] = apiId;
  for (const [name, value] of values) record[name] = value;
  return record;
}

let warnedNoApiId = false;

/**
 * Writes the invocation's metrics as one EMF line, if it recorded any. The ApiId is WEBSOCKET_API_ID
 * (set by the construct), else the event's `requestContext.apiId`; with neither, the metrics are
 * dropped and a single warning is logged per container.
 */
export function flushMetrics(scope: InvocationScope, env: Readonly<Record<string, string | undefined>> = process.env): void {
  if (scope.metrics.size === 0) return;
  const apiId = env[ObservabilityEnv.API_ID]?.trim() || scope.apiId;
  if (!apiId) {
    if (!warnedNoApiId) {
      warnedNoApiId = true;
      logEvent('warn', 'metrics_disabled', { reason: `neither ${ObservabilityEnv.API_ID} nor the event names the API` });
    }
    return;
  }
  const { requestId, functionName } = scope.fields;
  writeLine('stdout', JSON.stringify(emfRecord(apiId, scope.metrics, { requestId, functionName })));
  scope.metrics.clear();
}
