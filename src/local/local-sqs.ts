import { createHash, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventSourceMappingModel, QueueModel } from './assembly';
import type { LambdaRunner } from './lambda-runner';

/**
 * The template's SQS queues, in memory, and their event source mappings, so a function that hands
 * work to a queue (the fan-out's queue mode, say) runs end to end:
 *
 * - An SQS endpoint speaking the JSON protocol the AWS SDK v3 uses (`X-Amz-Target: AmazonSQS.<Action>`):
 *   SendMessage, SendMessageBatch (with the MD5 of each body, which the SDK checks), GetQueueUrl.
 * - For each mapping, a poller that invokes the function with SQS events of at most `batchSize`
 *   records, at most `maximumConcurrency` at once, as soon as messages arrive. What the function
 *   succeeds with is deleted; a failed invocation, or the records it lists in `batchItemFailures`
 *   (with ReportBatchItemFailures), come back after the queue's visibility timeout, and move to
 *   the dead-letter queue after `maxReceiveCount` receives, as the queue's redrive policy says.
 */
export interface LocalSqs {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Starts the pollers: call once the functions can run. */
  startPolling(functions: (arn: string) => LambdaRunner | undefined): void;
  close(): Promise<void>;
}

interface Message {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly sentTimestamp: number;
  receiveCount: number;
  firstReceiveTimestamp?: number;
  /** Hidden from receivers until then (epoch ms). */
  visibleAt: number;
}

class Queue {
  readonly messages: Message[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(readonly model: QueueModel) {}

  push(body: string): Message {
    const message: Message = {
      messageId: randomUUID(),
      body,
      md5OfBody: createHash('md5').update(body, 'utf8').digest('hex'),
      sentTimestamp: Date.now(),
      receiveCount: 0,
      visibleAt: 0,
    };
    this.messages.push(message);
    this.notify();
    return message;
  }

  /** Up to `count` visible messages, now hidden for the visibility timeout. */
  receive(count: number): Message[] {
    const now = Date.now();
    const taken = this.messages.filter((message) => message.visibleAt <= now).slice(0, count);
    for (const message of taken) {
      message.receiveCount += 1;
      message.firstReceiveTimestamp ??= now;
      message.visibleAt = now + this.model.visibilityTimeoutSeconds * 1000;
    }
    return taken;
  }

  delete(message: Message): void {
    const index = this.messages.indexOf(message);
    if (index >= 0) this.messages.splice(index, 1);
  }

  /** The first time a hidden message becomes visible again, if any. */
  nextVisibleAt(): number | undefined {
    const times = this.messages.map((message) => message.visibleAt).filter((time) => time > Date.now());
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  onMessage(listener: () => void): void {
    this.listeners.add(listener);
  }

  notify(): void {
    for (const listener of this.listeners) listener();
  }
}

export async function startSqs(
  queueModels: readonly QueueModel[],
  mappings: readonly EventSourceMappingModel[],
  host: string,
  log: (line: string) => void,
): Promise<LocalSqs> {
  const queues = new Map(queueModels.map((model) => [model.arn, new Queue(model)]));
  const byName = (name: string) => [...queues.values()].find((queue) => queue.model.queueName === name);
  const pollers: Poller[] = [];

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => serve(request, response, Buffer.concat(chunks).toString('utf8'), byName, log));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const endpoint = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    startPolling(functions) {
      for (const mapping of mappings) {
        const queue = queues.get(mapping.queueArn);
        const runner = functions(mapping.functionArn);
        if (!queue || !runner) {
          log(`warning: event source mapping ${mapping.logicalId} connects ${mapping.queueArn} to ${mapping.functionArn}, which is not in the assembly; it does not run`);
          continue;
        }
        const deadLetter = queue.model.deadLetterQueueArn ? queues.get(queue.model.deadLetterQueueArn) : undefined;
        pollers.push(new Poller(mapping, queue, deadLetter, runner, log));
      }
    },
    close: () => new Promise((resolve) => {
      for (const poller of pollers) poller.stop();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** One SQS request. Queues are named by the last segment of the QueueUrl (any host: the SDK may send the deployed one). */
function serve(
  request: IncomingMessage,
  response: ServerResponse,
  text: string,
  byName: (name: string) => Queue | undefined,
  log: (line: string) => void,
): void {
  const reply = (statusCode: number, payload: Record<string, unknown>) => {
    const body = JSON.stringify(payload);
    response.writeHead(statusCode, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': Buffer.byteLength(body), 'x-amzn-RequestId': randomUUID() });
    response.end(body);
  };
  const action = String(request.headers['x-amz-target'] ?? '').replace(/^AmazonSQS\./, '');
  let input: Record<string, unknown>;
  try {
    input = JSON.parse(text || '{}') as Record<string, unknown>;
  } catch {
    return reply(400, { __type: 'com.amazonaws.sqs#InvalidParameterValue', message: 'The request body is not JSON' });
  }
  const queueName = String(input.QueueName ?? String(input.QueueUrl ?? '').split('/').pop() ?? '');
  const queue = byName(queueName);
  if (!queue) {
    log(`sqs: ${action} on ${queueName || 'no queue'}, which is not a queue of the assembly`);
    return reply(400, { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: `The specified queue ${queueName} does not exist.` });
  }
  switch (action) {
    case 'SendMessage': {
      const message = queue.push(String(input.MessageBody ?? ''));
      return reply(200, { MessageId: message.messageId, MD5OfMessageBody: message.md5OfBody });
    }
    case 'SendMessageBatch': {
      const entries = (input.Entries ?? []) as Array<{ Id: string; MessageBody: string }>;
      return reply(200, {
        Successful: entries.map((entry) => {
          const message = queue.push(String(entry.MessageBody ?? ''));
          return { Id: entry.Id, MessageId: message.messageId, MD5OfMessageBody: message.md5OfBody };
        }),
        Failed: [],
      });
    }
    case 'GetQueueUrl':
      return reply(200, { QueueUrl: `http://${request.headers.host}/${queue.model.arn.split(':')[4]}/${queue.model.queueName}` });
    default:
      log(`sqs: ${action || 'a request without X-Amz-Target'} is not served locally`);
      return reply(400, { __type: 'com.amazonaws.sqs#UnsupportedOperation', message: `authws local serves SendMessage, SendMessageBatch and GetQueueUrl, not ${action}` });
  }
}

/** Lambda's SQS poller for one mapping. */
class Poller {
  private running = 0;
  private stopped = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly maxConcurrency: number;

  constructor(
    private readonly mapping: EventSourceMappingModel,
    private readonly queue: Queue,
    private readonly deadLetter: Queue | undefined,
    private readonly runner: LambdaRunner,
    private readonly log: (line: string) => void,
  ) {
    this.maxConcurrency = mapping.maximumConcurrency ?? 1000;
    queue.onMessage(() => this.poll());
    this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.wakeTimer);
  }

  private poll(): void {
    while (!this.stopped && this.running < this.maxConcurrency) {
      const batch = this.queue.receive(this.mapping.batchSize);
      if (batch.length === 0) break;
      this.running += 1;
      void this.invoke(batch).finally(() => {
        this.running -= 1;
        this.poll();
      });
    }
    this.scheduleWake();
  }

  /** Polls again when a hidden message becomes visible. */
  private scheduleWake(): void {
    clearTimeout(this.wakeTimer);
    const next = this.queue.nextVisibleAt();
    if (next === undefined || this.stopped) return;
    this.wakeTimer = setTimeout(() => this.poll(), Math.max(0, next - Date.now()) + 5);
    this.wakeTimer.unref();
  }

  private async invoke(batch: Message[]): Promise<void> {
    const { queue, mapping } = this;
    const region = queue.model.arn.split(':')[3];
    const event = {
      Records: batch.map((message) => ({
        messageId: message.messageId,
        receiptHandle: Buffer.from(`${message.messageId}:${message.receiveCount}`).toString('base64'),
        body: message.body,
        attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(message.sentTimestamp),
          SenderId: 'AIDALOCALAUTHWS',
          ApproximateFirstReceiveTimestamp: String(message.firstReceiveTimestamp ?? Date.now()),
        },
        messageAttributes: {},
        md5OfBody: message.md5OfBody,
        eventSource: 'aws:sqs',
        eventSourceARN: queue.model.arn,
        awsRegion: region,
      })),
    };
    let failed: Message[];
    try {
      const result = await this.runner.invoke(event) as { batchItemFailures?: Array<{ itemIdentifier?: unknown }> } | null;
      const reported = mapping.reportBatchItemFailures ? result?.batchItemFailures ?? [] : [];
      const failedIds = new Set(reported.map((failure) => String(failure.itemIdentifier)));
      failed = batch.filter((message) => failedIds.has(message.messageId));
    } catch (err) {
      this.log(`sqs: ${queue.model.queueName} -> ${this.runner.fn.logicalId} failed: ${err instanceof Error ? err.message : String(err)}`);
      failed = batch;
    }
    for (const message of batch) {
      if (!failed.includes(message)) {
        queue.delete(message);
      } else if (this.deadLetter && queue.model.maxReceiveCount !== undefined && message.receiveCount >= queue.model.maxReceiveCount) {
        queue.delete(message);
        this.deadLetter.push(message.body);
        this.log(`sqs: message ${message.messageId} moved to ${this.deadLetter.model.queueName} after ${message.receiveCount} receives`);
      }
      // Otherwise it stays hidden until its visibility timeout ends, then is received again.
    }
  }
}
