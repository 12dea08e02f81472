import { ConnectionExpiry } from '../runtime/connection-expiry';
import { errorFrame } from '../runtime/envelope';
import { InvocationContext, withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';

/** Closes in flight at once: DeleteConnection shares the account's API Gateway rate with everything else. */
const CONCURRENCY = 10;

/** What one sweep did. */
export interface SweepResult {
  readonly closed: number;
  readonly gone: number;
  readonly failed: number;
}

/**
 * Runs on a schedule (EventBridge): closes the connections whose token has expired. The message
 * handler closes an expired connection when it next sends; this catches the ones that send nothing
 * (they receive nothing either: sends skip expired rows). Each gets a `TokenExpired` error frame,
 * then DeleteConnection, and its row is deleted. A failure is logged and left to the next sweep.
 */
export const handler = async (_event?: unknown, context?: InvocationContext): Promise<SweepResult> =>
  withInvocation(context, {}, sweep);

async function sweep(): Promise<SweepResult> {
  const result = { closed: 0, gone: 0, failed: 0 };
  try {
    // No WebSocket event locates the API here: the construct sets CALLBACK_URL.
    const expiry = ConnectionExpiry.fromEnvironment({}, process.env);
    const notice = errorFrame('TokenExpired', 'The token of this connection has expired; reconnect with a new token.');
    const inFlight = new Set<Promise<void>>();
    for await (const connectionId of expiry.expired()) {
      const close: Promise<void> = expiry.close(connectionId, notice)
        .then((outcome) => { result[outcome] += 1; })
        .catch(() => { result.failed += 1; })
        .finally(() => inFlight.delete(close));
      inFlight.add(close);
      if (inFlight.size >= CONCURRENCY) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } catch (err) {
    logEvent('error', 'expiry_sweep_failed', { error: errorName(err), ...result });
    return result;
  }
  logEvent(result.failed > 0 ? 'warn' : 'info', 'expiry_sweep', result);
  return result;
}
