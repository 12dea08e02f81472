import { createHash, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGV4_AUTHORIZATION } from './aws-environment';

/** A message as a queue holds it. */
export interface QueuedMessage {
  readonly messageId: string;
  readonly body: string;
}

/**
 * The part of SQS the fan-out uses, in its JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, as
 * the SDK v3 speaks it): SendMessage and SendMessageBatch, answering the MD5 of each body (the SDK
 * checks it). Queues are named by the last segment of their URL; signed requests only.
 */
export class SqsServer {
  static async start(): Promise<SqsServer> {
    const server = new SqsServer();
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  private readonly http = createServer((req, res) => this.handle(req, res));
  private readonly queues = new Map<string, QueuedMessage[]>();

  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_SQS. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** The URL of queue `name`. */
  queueUrl(name: string): string {
    return `${this.endpoint}/123456789012/${name}`;
  }

  /** Takes every message from queue `name`. */
  drain(name: string): QueuedMessage[] {
    const messages = this.queues.get(name) ?? [];
    this.queues.set(name, []);
    return messages;
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!SIGV4_AUTHORIZATION.test(req.headers.authorization ?? '')) return reply(res, 403, { __type: 'com.amazon.coral.service#MissingAuthenticationTokenException' });
      const action = String(req.headers['x-amz-target'] ?? '').replace('AmazonSQS.', '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      const queue = this.queue(String(input.QueueUrl));
      switch (action) {
        case 'SendMessage':
          return reply(res, 200, this.push(queue, input.MessageBody));
        case 'SendMessageBatch':
          return reply(res, 200, {
            Successful: input.Entries.map((entry: { Id: string; MessageBody: string }) => ({ Id: entry.Id, ...this.push(queue, entry.MessageBody) })),
            Failed: [],
          });
        default:
          return reply(res, 400, { __type: 'com.amazonaws.sqs#InvalidAction', message: `Unsupported ${action}` });
      }
    });
  }

  private queue(url: string): QueuedMessage[] {
    const name = url.split('/').pop()!;
    if (!this.queues.has(name)) this.queues.set(name, []);
    return this.queues.get(name)!;
  }

  private push(queue: QueuedMessage[], body: string): { MessageId: string; MD5OfMessageBody: string } {
    const messageId = randomUUID();
    queue.push({ messageId, body });
    return { MessageId: messageId, MD5OfMessageBody: createHash('md5').update(body, 'utf8').digest('hex') };
  }
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
}
