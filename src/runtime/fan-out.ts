import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { Environment, positiveIntegerSetting } from './configuration';
import { Defaults, Env } from './environment';
import { errorName, logEvent } from './log';

/** How one send went: posts accepted, recipients found gone (their rows deleted), and posts that failed. */
export interface FanOutResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
}

/** What became of one post. */
export type PostOutcome = 'delivered' | 'gone' | 'failed';

export interface FanOutOptions {
  readonly client: ApiGatewayManagementApiClient;
  /** Called for a recipient the @connections API reports gone (410), to delete its registry row. */
  readonly onGone: (connectionId: string) => Promise<void>;
  /** Most posts in flight at once. @default Defaults.FANOUT_CONCURRENCY */
  readonly concurrency?: number;
  /** Milliseconds one post (with the SDK's retries) may take before it is abandoned. @default Defaults.POST_TIMEOUT_MS */
  readonly postTimeoutMs?: number;
}

/** FANOUT_CONCURRENCY and POST_TIMEOUT_MS as the construct set them. */
export function fanOutSettings(env: Environment): { concurrency: number; postTimeoutMs: number } {
  return {
    concurrency: positiveIntegerSetting(env, Env.FANOUT_CONCURRENCY, Defaults.FANOUT_CONCURRENCY),
    postTimeoutMs: positiveIntegerSetting(env, Env.POST_TIMEOUT_MS, Defaults.POST_TIMEOUT_MS),
  };
}

/** Whether an SDK v3 error means the connection is gone. SDK v3 errors carry no `statusCode`. */
export function isGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'GoneException' || e?.$metadata?.httpStatusCode === 410;
}

/**
 * Posts one payload to many connections through the @connections API.
 *
 * Recipients are pulled from the iterator only as pool slots free up, so an audience of any size is
 * never held in memory. Every post is bounded by an AbortSignal (the SDK's `requestTimeout` has been
 * reported not to bound a hung post, aws-sdk-js-v3#6896). 429 and 5xx are retried by the SDK's own
 * jittered backoff. One failed post never stops the others.
 */
export class FanOut {
  private readonly client: ApiGatewayManagementApiClient;
  private readonly onGone: (connectionId: string) => Promise<void>;
  private readonly concurrency: number;
  private readonly postTimeoutMs: number;

  constructor(options: FanOutOptions) {
    this.client = options.client;
    this.onGone = options.onGone;
    this.concurrency = options.concurrency ?? Defaults.FANOUT_CONCURRENCY;
    this.postTimeoutMs = options.postTimeoutMs ?? Defaults.POST_TIMEOUT_MS;
  }

  /** Posts `payload` to every recipient. Rejects only when reading the recipients fails. */
  async send(recipients: AsyncIterable<string>, payload: string): Promise<FanOutResult> {
    const data = Buffer.from(payload, 'utf8'); // encoded once for every recipient
    const counts = { delivered: 0, gone: 0, failed: 0 };
    const iterator = recipients[Symbol.asyncIterator]();
    // Workers take turns at the iterator: not every async iterable tolerates concurrent next() calls.
    let turn: Promise<unknown> = Promise.resolve();
    const next = (): Promise<IteratorResult<string>> => {
      const result = turn.then(() => iterator.next());
      turn = result.catch(() => undefined);
      return result;
    };
    const worker = async (): Promise<void> => {
      for (let item = await next(); !item.done; item = await next()) {
        counts[await this.post(item.value, data)] += 1;
      }
    };

    const workers = await Promise.allSettled(Array.from({ length: this.concurrency }, worker));
    const readFailure = workers.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (readFailure) throw readFailure.reason;
    return counts;
  }

  /** Posts `payload` to one connection, e.g. a reply or an error frame to the sender. */
  async sendTo(connectionId: string, payload: string): Promise<PostOutcome> {
    return this.post(connectionId, Buffer.from(payload, 'utf8'));
  }

  private async post(connectionId: string, data: Uint8Array): Promise<PostOutcome> {
    try {
      await this.client.send(
        new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }),
        { abortSignal: AbortSignal.timeout(this.postTimeoutMs) },
      );
      return 'delivered';
    } catch (err) {
      if (isGone(err)) {
        // The recipient's row is stale: delete that row, and only that one.
        await this.onGone(connectionId).catch((removeErr: unknown) =>
          logEvent('warn', 'stale_connection_not_removed', { connectionId, error: errorName(removeErr) }));
        return 'gone';
      }
      logEvent('warn', 'post_failed', { connectionId, error: errorName(err) });
      return 'failed';
    }
  }
}
