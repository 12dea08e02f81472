/**
 * An adaptive send rate, like a congestion window: sends are paced at `rate` per second; sustained
 * 429s lower the rate to a little under what actually got through, and a quiet stretch raises it
 * again, a step at a time, up to the configured ceiling.
 *
 * Why not the SDK's adaptive retry mode (`@smithy/util-retry` DefaultRateLimiter): it belongs to
 * the SDK client's retry strategy, which the signed keep-alive client deliberately bypasses
 * (see signed-connections-client.ts), its retry quota stops retrying altogether once many throttles
 * have drained it (losing recipients in exactly the storm this is for), and it cannot be given a
 * ceiling shared out between parallel workers.
 */
export interface SendRateOptions {
  /** Most sends per second, ever. @default Infinity: no ceiling until the first throttles */
  readonly maxRate?: number;
  /** Fewest sends per second the rate falls to. @default 5 */
  readonly minRate?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Throttles within the last second that count as sustained rather than one slow client's full
 * buffer (which @connections also answers with 429): at least this many, and this share of the sends.
 */
const SUSTAINED_THROTTLES = 3;
const SUSTAINED_SHARE = 0.01;
/** After this long without a throttle, a new send starts again at the ceiling. */
const FORGET_MS = 2_000;
/** The rate falls to this share of the sends that went through. */
const DECREASE = 0.95;
/** Each quiet bucket raises the rate by this share. */
const INCREASE = 0.02;
const BUCKET_MS = 100;
const BUCKETS = 10; // one second of history
/** A decrease waits for the sends already paced at the old rate to be answered. */
const COOLDOWN_MS = 500;

export class SendRate {
  private readonly maxRate: number;
  private readonly minRate: number;
  private readonly now: () => number;
  private current: number;
  private nextSlot = 0;
  private readonly successes = new Array<number>(BUCKETS).fill(0);
  private readonly throttles = new Array<number>(BUCKETS).fill(0);
  private lastThrottle = Number.NEGATIVE_INFINITY;
  private bucketStart: number;
  private readonly started: number;
  private lastDecrease = Number.NEGATIVE_INFINITY;

  constructor(options: SendRateOptions = {}) {
    this.maxRate = options.maxRate ?? Number.POSITIVE_INFINITY;
    this.minRate = Math.min(options.minRate ?? 5, this.maxRate);
    this.now = options.now ?? Date.now;
    this.current = this.maxRate;
    this.started = this.bucketStart = this.now();
  }

  /** Sends per second allowed now (Infinity: unpaced). */
  get rate(): number {
    return this.current;
  }

  /** A new send begins: a throttle long past says nothing about the API now. */
  restart(): void {
    if (this.now() - this.lastThrottle > FORGET_MS) this.current = this.maxRate;
  }

  /**
   * Resolves to true when the next send may go, or at once to false when its slot would come at or
   * after `deadline` (epoch milliseconds): a send that may not go takes no slot, and nobody waits
   * past the deadline for one.
   */
  async acquire(deadline: number = Number.POSITIVE_INFINITY): Promise<boolean> {
    const now = this.now();
    if (this.current === Number.POSITIVE_INFINITY) return now < deadline;
    const interval = 1000 / this.current;
    // A small burst allowance (50 ms worth) absorbs timer jitter without exceeding the rate on average.
    const slot = Math.max(this.nextSlot, now - 50);
    if (slot >= deadline) return false;
    this.nextSlot = slot + interval;
    const wait = slot - now;
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait));
    return true;
  }

  /** A send went through. */
  onSuccess(): void {
    this.roll();
    this.successes[0] += 1;
  }

  /** A send was throttled (429). */
  onThrottle(): void {
    this.roll();
    this.throttles[0] += 1;
    const now = this.now();
    this.lastThrottle = now;
    const throttled = sum(this.throttles);
    const sent = throttled + sum(this.successes);
    if (throttled < SUSTAINED_THROTTLES || throttled < sent * SUSTAINED_SHARE || now - this.lastDecrease < COOLDOWN_MS) return;
    this.current = Math.max(this.minRate, Math.min(this.current, this.throughput(now)) * DECREASE);
    this.lastDecrease = now;
  }

  /** Successes per second over the last second (or since the start, when younger). */
  private throughput(now: number): number {
    const total = sum(this.successes);
    // The ring holds BUCKETS - 1 full buckets and the current, partial one.
    const span = Math.max(BUCKET_MS, Math.min((BUCKETS - 1) * BUCKET_MS + (now - this.bucketStart), now - this.started));
    return (total * 1000) / span;
  }

  private roll(): void {
    const now = this.now();
    while (now - this.bucketStart >= BUCKET_MS) {
      this.bucketStart += BUCKET_MS;
      if (this.throttles[0] === 0 && this.current < this.maxRate) {
        this.current = Math.min(this.maxRate, this.current * (1 + INCREASE));
      }
      this.successes.pop();
      this.successes.unshift(0);
      this.throttles.pop();
      this.throttles.unshift(0);
      if (now - this.bucketStart > BUCKETS * BUCKET_MS) {
        // Idle for over a second: skip the empty buckets in one go.
        this.bucketStart = now - ((now - this.bucketStart) % BUCKET_MS);
        this.successes.fill(0);
        this.throttles.fill(0);
      }
    }
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
