import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Structured logs: one JSON object per line, so CloudWatch Logs Insights can query the fields.
 * Callers pass reason codes and ids only: never tokens, secrets or message bodies.
 *
 * Every line carries `level`, `event` (the name of what happened), `timestamp` (ISO 8601) and, inside
 * an invocation (`withInvocation`), `requestId` (the Lambda request id), `functionName`, and the
 * `connectionId`, `routeKey` and `eventType` of the WebSocket event when it has them.
 *
 * Lines are written to stdout (errors to stderr) directly rather than through `console`: the Lambda
 * runtime prefixes what `console` writes with a timestamp, request id and level, so a line would no
 * longer be pure JSON. The embedded metric format line (see metrics.ts) uses the same writer.
 *
 * In-house (log.ts, metrics.ts and invocation.ts bundle to 3.5 KB) rather than Powertools for AWS
 * Lambda's Logger and Metrics: measured with `taskset -c 0 node bench/observability/run.mjs`, those
 * add 35 KB to every bundle and double the authorizer's (33.9 KB to 68.6 KB, its load from ~9 ms to
 * ~17 ms), and the authorizer needs an EMF writer anyway; see the README's "Logs and metrics".
 */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export type LogLevel = 'info' | 'warn' | 'error';

/** What every line of one invocation carries. */
export interface InvocationFields {
  /** The Lambda request id (`context.awsRequestId`). */
  readonly requestId?: string;
  readonly functionName?: string;
  readonly connectionId?: string;
  readonly routeKey?: string;
  readonly eventType?: string;
}

/** The invocation a line is written in: its fields, and the metrics recorded so far (see metrics.ts). */
export interface InvocationScope {
  readonly fields: InvocationFields;
  readonly metrics: Map<string, number>;
  /** The API id of the event, the metrics' fallback when WEBSOCKET_API_ID is not set. */
  readonly apiId?: string;
}

const invocations = new AsyncLocalStorage<InvocationScope>();

/** The invocation this code runs in, if any. */
export function currentInvocation(): InvocationScope | undefined {
  return invocations.getStore();
}

/** Runs `fn` as one invocation: every line written inside it (awaited work included) carries `fields`. */
export function runInInvocation<T>(scope: InvocationScope, fn: () => Promise<T>): Promise<T> {
  return invocations.run(scope, fn);
}

/** Writes one line. Replaced in tests only through the streams (process.stdout/stderr). */
export function writeLine(stream: 'stdout' | 'stderr', line: string): void {
  (stream === 'stderr' ? process.stderr : process.stdout).write(`${line}\n`);
}

export function logEvent(level: LogLevel, event: string, fields: LogFields = {}): void {
  const scope = invocations.getStore()?.fields ?? {};
  const timestamp = new Date().toISOString();
  // level, event and timestamp lead the line, and are set again last so no field can overwrite them.
  const record = Object.assign({ level, event, timestamp }, scope, fields, { level, event, timestamp });
  writeLine(level === 'error' ? 'stderr' : 'stdout', JSON.stringify(record));
}

/** The name of a thrown value (e.g. `GoneException`, `TypeError`), which is safe to log where its message may not be. */
export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
