import { Environment, positiveIntegerSetting } from './configuration';
import { Defaults, Env } from './environment';
import { errorName, logEvent } from './log';
import { SendRate } from './send-rate';
import { ConnectionsTransport, PostResponse, PostTimeoutError } from './signed-connections-client';

/**
 * How one send went. Every recipient ends as exactly one of delivered, gone or failed, so the three
 * add up to the recipients reached; `retried` and `throttled` count attempts, not recipients.
 */
export interface FanOutResult {
  /** Posts the @connections API accepted (200). */
  readonly delivered: number;
  /** Recipients found gone (410); their registry rows are deleted. */
  readonly gone: number;
  /** Recipients not reached: retries exhausted, refused (403, 413), or cut off by the deadline. */
  readonly failed: number;
  /** Extra attempts made after a 429, a 5xx, a timeout or a network error. */
  readonly retried: number;
  /** 429 answers received. */
  readonly throttled: number;
  /** The API refused the payload as too large (413): the send stopped at the first one. */
  readonly payloadTooLarge: boolean;
  /** False when the deadline stopped the send before every recipient was pulled. */
  readonly complete: boolean;
  /**
   * Recipients pulled but given up on because the deadline came before their next attempt (a rate
   * slot, a backoff or a retry would have run past it). Counted in `failed` too.
   */
  readonly cutOff: number;
}

/** What became of one post. */
export type PostOutcome = 'delivered' | 'gone' | 'failed';

/** Where the rows of gone connections go; called with at most 25 ids (one BatchWriteItem). */
export interface StaleConnections {
  removeAll(connectionIds: readonly string[]): Promise<void>;
}

export interface FanOutOptions {
  readonly transport: ConnectionsTransport;
  /** Deletes the registry rows of recipients the @connections API reports gone (410), in batches. */
  readonly staleConnections: StaleConnections;
  /** Most posts in flight at once. @default Defaults.FANOUT_CONCURRENCY */
  readonly concurrency?: number;
  /** Milliseconds one attempt may take before it is abandoned. @default Defaults.POST_TIMEOUT_MS */
  readonly postTimeoutMs?: number;
  /** Ceiling on posts per second (shared out between parallel workers by the caller). @default no ceiling */
  readonly maxSendRate?: number;
  /** Attempts per recipient while the API answers 429. @default 8 */
  readonly maxThrottledAttempts?: number;
  /**
   * Attempts per recipient on 5xx, timeouts and network errors. Five: with 5% of posts failing at
   * random, three attempts still lost about one recipient in 8,000 (0.05^3); five lose one in 3 million.
   * @default 5
   */
  readonly maxFailedAttempts?: number;
  /** First backoff ceiling in milliseconds; doubles per attempt ("full jitter"). @default 50 */
  readonly backoffBaseMs?: number;
  /** Largest backoff in milliseconds. @default 2000 */
  readonly backoffMaxMs?: number;
}

/** Per-send options. */
export interface SendOptions {
  /**
   * Epoch milliseconds after which no recipient is pulled, no attempt or retry started, and nothing
   * waited for: a rate limiter slot or a backoff that would end past it is not waited for (the
   * recipient is counted `cutOff`). Posts under way finish, each within the post timeout, so the
   * send returns at most one post timeout after it (callers keep that margin). @default none
   */
  readonly deadline?: number;
  /** Told each recipient that ends failed, e.g. to keep it in a dead-letter queue. */
  readonly onFailed?: (connectionId: string) => void;
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

/** DynamoDB's BatchWriteItem takes at most 25 requests. */
const DELETE_BATCH = 25;

/**
 * Posts one payload to many connections through the @connections API: the engine every send path
 * uses (message handler, queue worker, publisher).
 *
 * - Recipients are pulled from the iterator only as pool slots free up, so an audience of any size
 *   is never held in memory.
 * - Every attempt is bounded by a timeout after which the transport destroys the request (the SDK's
 *   `requestTimeout` has been reported not to bound a hung post, aws-sdk-js-v3#6896).
 * - 429, 5xx, timeouts and network errors are retried with jittered exponential backoff, up to a
 *   bound; sustained 429s lower the send rate (SendRate) instead of hammering the account throttle.
 * - 410 queues the row for deletion, in batches of 25; 413 stops the send and is reported.
 *
 * The pool is a dozen lines of its own rather than p-limit or p-map: p-limit queues a task per call
 * (a 1,000,000-recipient scan would queue 1,000,000 closures unless the caller rebuilds
 * backpressure around it), and p-map is ESM-only, which the CommonJS test setup would have to
 * transpile for a loop this small. Here each worker pulls the next id only when it is free.
 */
export class FanOut {
  private readonly transport: ConnectionsTransport;
  private readonly staleConnections: StaleConnections;
  private readonly concurrency: number;
  private readonly postTimeoutMs: number;
  private readonly maxThrottledAttempts: number;
  private readonly maxFailedAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  /** Kept across sends of one container, so what it learnt about the throttle is not forgotten. */
  private readonly rate: SendRate;

  constructor(options: FanOutOptions) {
    this.transport = options.transport;
    this.staleConnections = options.staleConnections;
    this.concurrency = options.concurrency ?? Defaults.FANOUT_CONCURRENCY;
    this.postTimeoutMs = options.postTimeoutMs ?? Defaults.POST_TIMEOUT_MS;
    this.maxThrottledAttempts = options.maxThrottledAttempts ?? 8;
    this.maxFailedAttempts = options.maxFailedAttempts ?? 5;
    this.backoffBaseMs = options.backoffBaseMs ?? 50;
    this.backoffMaxMs = options.backoffMaxMs ?? 2_000;
    this.rate = new SendRate({ maxRate: options.maxSendRate });
  }

  /** The current send rate ceiling, in posts per second (Infinity: unpaced). */
  get sendRate(): number {
    return this.rate.rate;
  }

  /** Posts `payload` to every recipient. Rejects only when reading the recipients fails. */
  async send(recipients: AsyncIterable<string>, payload: string | Buffer, options: SendOptions = {}): Promise<FanOutResult> {
    const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload; // encoded once for every recipient
    const run = new Run(options.deadline ?? Number.POSITIVE_INFINITY, options.onFailed);
    this.rate.restart();
    const iterator = recipients[Symbol.asyncIterator]();
    // Workers take turns at the iterator: not every async iterable tolerates concurrent next() calls.
    let turn: Promise<unknown> = Promise.resolve();
    const next = (): Promise<IteratorResult<string>> => {
      const result = turn.then(() => iterator.next());
      turn = result.catch(() => undefined);
      return result;
    };
    const worker = async (): Promise<void> => {
      while (!run.stopped()) {
        const item = await next();
        if (item.done) return;
        run.record(item.value, await this.deliver(item.value, data, run));
        if (run.gone.length >= DELETE_BATCH) this.flushGone(run);
      }
    };

    const workers = await Promise.allSettled(Array.from({ length: this.concurrency }, worker));
    this.flushGone(run);
    await Promise.all(run.deletions);
    const readFailure = workers.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (readFailure) throw readFailure.reason;
    if (run.stopped() && !run.payloadTooLarge) {
      // Pulling stopped early: say whether anyone was left behind.
      const rest = await next().catch(() => ({ done: true as const, value: undefined }));
      run.complete = rest.done === true;
      await iterator.return?.();
    }
    return run.result();
  }

  /** Posts `payload` to one connection, e.g. a reply or an error frame to the sender, until `deadline` (epoch ms). */
  async sendTo(connectionId: string, payload: string, deadline: number = Number.POSITIVE_INFINITY): Promise<PostOutcome> {
    const run = new Run(deadline);
    const outcome = await this.deliver(connectionId, Buffer.from(payload, 'utf8'), run);
    run.record(connectionId, outcome);
    this.flushGone(run);
    await Promise.all(run.deletions);
    return outcome === 'tooLarge' ? 'failed' : outcome;
  }

  /** One recipient, retried as the answers allow. */
  private async deliver(connectionId: string, data: Buffer, run: Run): Promise<PostOutcome | 'tooLarge'> {
    // Throttled and failed attempts have budgets of their own: a recipient throttled twice still
    // gets maxFailedAttempts tries at a 5xx, not one.
    let throttledAttempts = 0;
    let failedAttempts = 0;
    for (let attempt = 1; ; attempt++) {
      // No rate slot before the deadline, or no time left for an attempt: this recipient is not
      // reached, and neither would the next ones be, so the run stops pulling.
      if (!(await this.rate.acquire(run.deadline)) || Date.now() >= run.deadline) {
        run.outOfTime = true;
        return this.cutOff(run);
      }
      const answer = await this.attempt(connectionId, data);
      // Any answer but 429 got through the throttle (a 410 or a 500 used up its share of the rate as
      // much as a 200): counting only 200s set the rate after a throttle below what the API allows.
      if ('status' in answer && answer.status !== 429) this.rate.onSuccess();
      if ('status' in answer && answer.status >= 200 && answer.status < 300) return 'delivered';
      if ('status' in answer && answer.status === 410) return 'gone';
      if ('status' in answer && answer.status === 413) {
        logEvent('warn', 'post_refused_too_large', { connectionId, bytes: data.length });
        return 'tooLarge';
      }
      const throttled = 'status' in answer && answer.status === 429;
      if (throttled) {
        run.throttled += 1;
        this.rate.onThrottle();
      }
      const retryable = throttled || !('status' in answer) || answer.status >= 500;
      const exhausted = throttled ? ++throttledAttempts >= this.maxThrottledAttempts : ++failedAttempts >= this.maxFailedAttempts;
      const delay = this.backoff(attempt);
      if (!retryable || exhausted) {
        logEvent('warn', 'post_failed', { connectionId, error: 'status' in answer ? answer.errorType ?? `HTTP ${answer.status}` : answer.error, attempts: attempt });
        return 'failed';
      }
      if (Date.now() + delay >= run.deadline) return this.cutOff(run);
      run.retried += 1;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * The deadline leaves no time for the next attempt: the recipient ends failed, counted as cut off.
   * Not logged one by one (a storm would cut off thousands): the caller reports the count.
   */
  private cutOff(run: Run): 'failed' {
    run.cutOff += 1;
    return 'failed';
  }

  /** One POST, bounded by the timeout; a thrown error becomes its name. */
  private async attempt(connectionId: string, data: Buffer): Promise<PostResponse | { error: string }> {
    try {
      return await this.transport.post(connectionId, data, this.postTimeoutMs);
    } catch (err) {
      return { error: err instanceof PostTimeoutError ? 'Timeout' : errorName(err) };
    }
  }

  /** "Full jitter": a random delay up to an exponentially growing ceiling. */
  private backoff(attempt: number): number {
    return Math.random() * Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (attempt - 1));
  }

  private flushGone(run: Run): void {
    while (run.gone.length > 0) {
      const batch = run.gone.splice(0, DELETE_BATCH);
      run.deletions.push(this.staleConnections.removeAll(batch).catch((err: unknown) =>
        logEvent('warn', 'stale_connections_not_removed', { count: batch.length, error: errorName(err) })));
    }
  }
}

/** The state of one send. */
class Run {
  delivered = 0;
  goneCount = 0;
  failed = 0;
  retried = 0;
  throttled = 0;
  cutOff = 0;
  /** Set when the rate limiter had no slot left before the deadline. */
  outOfTime = false;
  payloadTooLarge = false;
  complete = true;
  /** Gone ids not yet handed to the batch delete. */
  readonly gone: string[] = [];
  readonly deletions: Promise<void>[] = [];

  constructor(readonly deadline: number, private readonly onFailed?: (connectionId: string) => void) {}

  stopped(): boolean {
    return this.payloadTooLarge || this.outOfTime || Date.now() >= this.deadline;
  }

  record(connectionId: string, outcome: PostOutcome | 'tooLarge'): void {
    switch (outcome) {
      case 'delivered':
        this.delivered += 1;
        break;
      case 'gone':
        this.goneCount += 1;
        this.gone.push(connectionId);
        break;
      case 'tooLarge':
        this.payloadTooLarge = true;
        this.failed += 1;
        break;
      case 'failed':
        this.failed += 1;
        this.onFailed?.(connectionId);
        break;
    }
  }

  result(): FanOutResult {
    return {
      delivered: this.delivered,
      gone: this.goneCount,
      failed: this.failed,
      retried: this.retried,
      throttled: this.throttled,
      payloadTooLarge: this.payloadTooLarge,
      complete: this.complete,
      cutOff: this.cutOff,
    };
  }
}
