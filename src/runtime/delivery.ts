import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Environment, optionalSetting, positiveIntegerSetting, requiredSetting } from './configuration';
import { ConnectionStore, ScanCursor } from './connection-store';
import { ApiLocation, callbackUrl } from './connections-api';
import { Defaults, Env } from './environment';
import { FanOut, FanOutResult, fanOutSettings, PostOutcome } from './fan-out';
import { logEvent } from './log';
import { SignedConnectionsClient } from './signed-connections-client';
import { DynamoStaleConnections } from './stale-connections';

/** What a send answers: the fan-out counts, and in queue mode the tasks enqueued for the workers. */
export interface DeliveryResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
  readonly retried: number;
  readonly throttled: number;
  /** Queue mode, broadcast: SQS tasks (scan segments) handed to the workers; their counts are in their logs. */
  readonly queued?: number;
  /** The @connections API refused the payload as too large (413). */
  readonly payloadTooLarge?: boolean;
  /** False when an inline send ran out of time before every recipient was reached. */
  readonly complete?: boolean;
  /** Recipients pulled but not reached before the deadline (counted in `failed`); absent when none. */
  readonly cutOff?: number;
}

/** A task on the fan-out queue: one scan segment (from a cursor), or listed connections (a redriven failure). */
export type FanOutTask =
  | { readonly kind: 'segment'; readonly segment: number; readonly totalSegments: number; readonly startKey?: ScanCursor; readonly payload: string }
  | { readonly kind: 'connections'; readonly connectionIds: readonly string[]; readonly payload: string };

/** Parses a queue message body into a task, or throws saying what is wrong with it. */
export function parseTask(body: string): FanOutTask {
  const task = JSON.parse(body) as Partial<Record<string, unknown>>;
  if (typeof task.payload !== 'string') throw new Error('The fan-out task has no payload');
  if (task.kind === 'segment' && Number.isInteger(task.segment) && Number.isInteger(task.totalSegments)) return task as FanOutTask;
  if (task.kind === 'connections' && Array.isArray(task.connectionIds)) return task as FanOutTask;
  throw new Error('The fan-out task is neither a segment nor a list of connections');
}

/** Milliseconds kept free before a Lambda deadline: one attempt's timeout plus room to enqueue the rest. */
export function deadlineMargin(postTimeoutMs: number): number {
  return postTimeoutMs + 3_000;
}

/** SQS takes 256 KB per message; ids are listed up to this many bytes per dead-letter message. */
const MAX_LISTED_BYTES = 60_000;

/**
 * Every send path in one place: to everyone (inline, or enqueued per scan segment in queue mode),
 * to one user (its GSI rows, always inline), to one connection. Built from the environment the
 * construct sets, once per Lambda container, so the engine's learnt send rate and the kept-alive
 * sockets carry over between invocations.
 */
export class Delivery {
  /** The container's delivery for `location`'s @connections endpoint. */
  static fromEnvironment(location: ApiLocation, env: Environment): Delivery {
    const endpoint = callbackUrl(location, env);
    let delivery = containers.get(endpoint);
    if (!delivery) {
      delivery = new Delivery(endpoint, env);
      containers.set(endpoint, delivery);
    }
    return delivery;
  }

  readonly store: ConnectionStore;
  readonly fanOut: FanOut;
  readonly postTimeoutMs: number;
  private readonly segments: number;
  private readonly queueUrl?: string;
  private readonly deadLetterUrl?: string;
  private sqs?: SQSClient;

  private constructor(endpoint: string, env: Environment) {
    const dynamo = new DynamoDBClient({});
    const tableName = requiredSetting(env, Env.TABLE_NAME);
    this.store = new ConnectionStore({ client: dynamo, tableName, userIndexName: optionalSetting(env, Env.USER_INDEX_NAME) });
    const { concurrency, postTimeoutMs } = fanOutSettings(env);
    this.postTimeoutMs = postTimeoutMs;
    const maxSendRate = optionalSetting(env, Env.FANOUT_MAX_SEND_RATE) ? positiveIntegerSetting(env, Env.FANOUT_MAX_SEND_RATE, 1) : undefined;
    this.fanOut = new FanOut({
      transport: new SignedConnectionsClient({ endpoint, region: requiredSetting(env, 'AWS_REGION'), maxSockets: concurrency }),
      staleConnections: new DynamoStaleConnections(dynamo, tableName),
      concurrency,
      postTimeoutMs,
      maxSendRate,
    });
    this.queueUrl = optionalSetting(env, Env.FANOUT_QUEUE_URL);
    this.deadLetterUrl = optionalSetting(env, Env.FANOUT_DLQ_URL);
    this.segments = positiveIntegerSetting(env, Env.FANOUT_SEGMENTS,
      this.queueUrl ? Defaults.FANOUT_QUEUE_SEGMENTS : Defaults.FANOUT_INLINE_SEGMENTS);
  }

  /**
   * Everyone. Queue mode: one task per scan segment, answered with `queued`. Inline: read by
   * parallel scan segments and posted until `deadline`; a send cut off by it is logged as an error
   * (`fan_out_incomplete`), never dropped in silence.
   */
  async toAll(payload: string, deadline?: number): Promise<DeliveryResult> {
    if (this.queueUrl) return { ...ZERO, queued: await this.enqueueSegments(payload) };
    const result = await this.fanOut.send(this.store.all(this.segments), payload, { deadline });
    reportIncomplete(result, 'all');
    return publicResult(result);
  }

  /** Every live connection of `userId`, until `deadline`; a send cut off by it is logged (`fan_out_incomplete`). */
  async toUser(userId: string, payload: string, deadline?: number): Promise<DeliveryResult> {
    const result = await this.fanOut.send(this.store.ofUser(userId), payload, { deadline });
    reportIncomplete(result, 'user');
    return publicResult(result);
  }

  /** One connection, e.g. a reply to the sender; no retry waits past `deadline` when given. */
  async toConnection(connectionId: string, payload: string, deadline?: number): Promise<DeliveryResult> {
    const outcome: PostOutcome = await this.fanOut.sendTo(connectionId, payload, deadline);
    return { ...ZERO, [outcome]: 1 };
  }

  /**
   * One connection named by a backend: skipped (all counts 0) when its registry row says its token
   * has expired, as broadcasts and sends skip such rows. A connection without a row is posted to
   * (API Gateway answers 410 for one that is gone).
   */
  async toLiveConnection(connectionId: string, payload: string, deadline?: number): Promise<DeliveryResult> {
    if (await this.store.state(connectionId) === 'expired') {
      logEvent('info', 'post_skipped_expired', { connectionId });
      return ZERO;
    }
    return this.toConnection(connectionId, payload, deadline);
  }

  /**
   * Serves one queue task until `deadline`. What is left of a segment is enqueued again from the
   * page it stopped in; recipients that failed are kept in the dead-letter queue as a
   * `connections` task, which a redrive to the main queue delivers.
   */
  async serveTask(task: FanOutTask, deadline: number): Promise<FanOutResult> {
    const payload = Buffer.from(task.payload, 'base64');
    const failed: string[] = [];
    const onFailed = (id: string) => failed.push(id);
    let result: FanOutResult;
    if (task.kind === 'connections') {
      result = await this.fanOut.send(listed(task.connectionIds), payload, { deadline, onFailed });
      if (!result.complete) throw new Error('The deadline came before a listed task was served; SQS will deliver it again');
    } else {
      let resumeAt: ScanCursor | undefined;
      const store = this.store;
      const { segment, totalSegments, startKey } = task;
      async function* recipients(): AsyncGenerator<string> {
        for await (const page of store.segment(segment, totalSegments, startKey)) {
          resumeAt = page.startKey;
          yield* page.ids;
        }
      }
      result = await this.fanOut.send(recipients(), payload, { deadline, onFailed });
      if (!result.complete) {
        await this.enqueue({ ...task, startKey: resumeAt });
        logEvent('info', 'fan_out_continued', { segment: task.segment, ...counts(result) });
      }
    }
    if (failed.length > 0) await this.keepFailed(failed, task.payload);
    return result;
  }

  private async enqueueSegments(payload: string): Promise<number> {
    const body = Buffer.from(payload, 'utf8').toString('base64');
    const tasks: FanOutTask[] = Array.from({ length: this.segments }, (_, segment) =>
      ({ kind: 'segment', segment, totalSegments: this.segments, payload: body }));
    for (let i = 0; i < tasks.length; i += 10) {
      const entries = tasks.slice(i, i + 10).map((task, n) => ({ Id: String(i + n), MessageBody: JSON.stringify(task) }));
      const answer = await this.queue().send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
      if (answer.Failed && answer.Failed.length > 0) {
        // A segment that never reaches the queue is an audience cut off: fail loudly.
        throw new Error(`${answer.Failed.length} fan-out tasks were not enqueued: ${answer.Failed[0].Code}`);
      }
    }
    return tasks.length;
  }

  private async enqueue(task: FanOutTask): Promise<void> {
    const queueUrl = this.queueUrl ?? requiredSetting({}, Env.FANOUT_QUEUE_URL);
    await this.queue().send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(task) }));
  }

  private async keepFailed(connectionIds: string[], payload: string): Promise<void> {
    if (!this.deadLetterUrl) return;
    const budget = MAX_LISTED_BYTES;
    let batch: string[] = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const task: FanOutTask = { kind: 'connections', connectionIds: batch, payload };
      await this.queue().send(new SendMessageCommand({ QueueUrl: this.deadLetterUrl, MessageBody: JSON.stringify(task) }));
      batch = [];
      size = 0;
    };
    for (const id of connectionIds) {
      if (size + id.length + 3 > budget) await flush();
      batch.push(id);
      size += id.length + 3;
    }
    await flush();
    logEvent('warn', 'fan_out_dead_lettered', { count: connectionIds.length });
  }

  private queue(): SQSClient {
    this.sqs ??= new SQSClient({});
    return this.sqs;
  }
}

const containers = new Map<string, Delivery>();

const ZERO = { delivered: 0, gone: 0, failed: 0, retried: 0, throttled: 0 } as const;

function counts(result: FanOutResult): { delivered: number; gone: number; failed: number; retried: number; throttled: number } {
  return { delivered: result.delivered, gone: result.gone, failed: result.failed, retried: result.retried, throttled: result.throttled };
}

function publicResult(result: FanOutResult): DeliveryResult {
  return {
    ...counts(result),
    ...(result.payloadTooLarge ? { payloadTooLarge: true } : {}),
    ...(result.complete && result.cutOff === 0 ? {} : { complete: false }),
    ...(result.cutOff > 0 ? { cutOff: result.cutOff } : {}),
  };
}

/**
 * An inline send the deadline cut short, whether before every recipient was pulled or while some
 * still waited for a rate slot or a retry, is an error in the log, never dropped in silence.
 */
function reportIncomplete(result: FanOutResult, to: 'all' | 'user'): void {
  if (result.complete && result.cutOff === 0) return;
  logEvent('error', 'fan_out_incomplete', {
    to,
    ...counts(result),
    cutOff: result.cutOff,
    allPulled: result.complete,
    ...(to === 'all' ? { hint: 'use FanOut.queue() for audiences this large' } : {}),
  });
}

async function* listed(ids: readonly string[]): AsyncGenerator<string> {
  yield* ids;
}
