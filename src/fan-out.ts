import { Token } from 'aws-cdk-lib';
import { Defaults } from './runtime/environment';

/** Options of `FanOut.inline()`. */
export interface InlineFanOutOptions {
  /**
   * Most @connections posts in flight at once for one broadcast or send (1 to 1000).
   * @default 100
   */
  readonly concurrency?: number;
}

/** Options of `FanOut.queue()`. */
export interface QueueFanOutOptions {
  /**
   * Scan segments per broadcast: one SQS task each, served by one worker invocation, all in
   * parallel (1 to 1000).
   * @default 16
   */
  readonly segments?: number;

  /**
   * Most @connections posts in flight at once in one worker (1 to 1000).
   * @default 100
   */
  readonly concurrency?: number;

  /**
   * Posts per second of all workers together. Each worker is held to its share (this divided by the
   * most workers that run at once), so broadcasts stay under the account throttle they share with
   * every API of the account and region (10,000 requests per second by default).
   * @default 5000
   */
  readonly maxSendRate?: number;

  /**
   * Most worker invocations at once (the SQS event source's maximum concurrency, 2 or more). Fewer
   * workers than segments take the segments' tasks in turn, each sending at a larger share of
   * `maxSendRate`, so the broadcast takes as long and bills less time spent waiting on pacing.
   * @default - as many as `maxSendRate` needs at the 1,500 posts per second one 512 MB worker sends
   *   comfortably (about 150 us of CPU per post over TLS, measured by bench:fanout): 4 for the default
   *   5,000 per second; at least 2, at most one per segment
   */
  readonly maxWorkers?: number;
}

/**
 * How broadcasts reach everyone: from the message handler itself (`FanOut.inline()`), or through
 * an SQS queue to parallel worker invocations, one per scan segment (`FanOut.queue()`), for
 * audiences too large for one invocation.
 */
export class FanOut {
  /**
   * The message handler posts to every recipient itself, reading the registry by parallel scan
   * segments. Fits audiences one invocation can reach within its timeout: about 40,000 recipients
   * per broadcast at the message handler's default 512 MB (CPU-bound; about 85,000 at 1,024 MB).
   * Beyond that, use `FanOut.queue()`.
   * @param options concurrency
   */
  public static inline(options: InlineFanOutOptions = {}): FanOut {
    const concurrency = options.concurrency ?? Defaults.FANOUT_CONCURRENCY;
    checkWhole('FanOut.inline', 'concurrency', concurrency, 1, 1000);
    return new FanOut(false, concurrency, Defaults.FANOUT_INLINE_SEGMENTS, undefined);
  }

  /**
   * A broadcast becomes one SQS task per scan segment; worker invocations deliver them in parallel,
   * each rate-limited to its share of `maxSendRate`. What they cannot reach is kept in a dead-letter
   * queue. Sends to one user or one connection stay inline.
   * @param options segments, concurrency and maxSendRate
   */
  public static queue(options: QueueFanOutOptions = {}): FanOut {
    const segments = options.segments ?? Defaults.FANOUT_QUEUE_SEGMENTS;
    const concurrency = options.concurrency ?? Defaults.FANOUT_CONCURRENCY;
    const maxSendRate = options.maxSendRate ?? Defaults.FANOUT_MAX_SEND_RATE;
    checkWhole('FanOut.queue', 'segments', segments, 1, 1000);
    checkWhole('FanOut.queue', 'concurrency', concurrency, 1, 1000);
    if (!Token.isUnresolved(maxSendRate) && !(Number.isInteger(maxSendRate) && maxSendRate >= 2 * Math.max(2, segments))) {
      throw new Error(`FanOut.queue: maxSendRate is ${maxSendRate}; use a whole number of posts per second of at least 2 per worker (${2 * Math.max(2, segments)} for ${segments} segments).`);
    }
    const onePerSegment = Math.max(2, segments);
    const maxWorkers = options.maxWorkers ?? (Token.isUnresolved(maxSendRate)
      ? onePerSegment
      : Math.min(onePerSegment, Math.max(2, Math.ceil(maxSendRate / POSTS_PER_WORKER))));
    checkWhole('FanOut.queue', 'maxWorkers', maxWorkers, 2, 1000);
    return new FanOut(true, concurrency, segments, maxSendRate, maxWorkers);
  }

  /** Whether broadcasts go through the queue to workers. */
  public readonly queued: boolean;

  /** Most posts in flight at once in one sender (the message handler, or one worker). */
  public readonly concurrency: number;

  /** Scan segments a broadcast is read (inline) or split (queue) into. */
  public readonly segments: number;

  /**
   * Queue mode: posts per second of all workers together.
   * @default - no ceiling (inline)
   */
  public readonly maxSendRate?: number;

  /**
   * Queue mode: the most worker invocations that run at once (the SQS event source's maximum
   * concurrency, which Lambda allows from 2); each sends at `maxSendRate / maxWorkers`.
   * @default - inline: none
   */
  public readonly maxWorkers: number;

  private constructor(queued: boolean, concurrency: number, segments: number, maxSendRate: number | undefined, maxWorkers = 0) {
    this.queued = queued;
    this.concurrency = concurrency;
    this.segments = segments;
    this.maxSendRate = maxSendRate;
    this.maxWorkers = maxWorkers;
  }
}

/**
 * Posts per second one worker at its default 512 MB sends comfortably: about 0.29 vCPU at about
 * 150 us of CPU per post over TLS (bench/RESULTS.md, Fan-out) is about 1,900 per second at full load.
 */
const POSTS_PER_WORKER = 1_500;

function checkWhole(factory: string, name: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) return;
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    throw new Error(`${factory}: ${name} is ${value}; use a whole number from ${min} to ${max}.`);
  }
}
