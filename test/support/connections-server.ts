import { createServer, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGV4_AUTHORIZATION } from './aws-environment';

/** Faults a connection can be told to answer with. */
export type ConnectionFault =
  | 'gone' // 410 GoneException, as for a connection that ended without its row being deleted
  | 'throttled' // 429 LimitExceededException, as when the account rate or the client's buffer is exceeded
  | 'internal' // 500 InternalServerErrorException
  | 'hang'; // never answers

interface FaultPlan {
  readonly fault: ConnectionFault;
  remaining: number;
}

/** One request as the server saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly stage: string;
  readonly connectionId: string;
  readonly authorization?: string;
  /** The raw request path (connection id still URL-encoded) and every header, to check signatures. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The body, once it has arrived. */
  body?: Buffer;
}

export interface ConnectionsServerOptions {
  readonly stage?: string;
  /** Milliseconds each POST takes, so concurrent posts overlap. */
  readonly postLatencyMs?: number;
  /** A rate ceiling like the account throttle: POSTs over this many per second answer 429. @default none */
  readonly maxPostsPerSecond?: number;
  /** The share of POSTs (0 to 1, drawn at random) answered 429, as under a throttling storm. @default 0 */
  readonly throttledShare?: number;
}

const MAX_PAYLOAD_BYTES = 131_072;

/**
 * The @connections management API as API Gateway speaks it, at `/{stage}/@connections/{id}`:
 * POST 200 / GET 200 / DELETE 204, 410 GoneException for unknown or closed ids, 413 for payloads over
 * 128 KB, error types in `x-amzn-ErrorType` with a JSON body (the SDK v3 cannot parse anything else),
 * and 403 for unsigned requests. Faults are injected per connection.
 */
export class ConnectionsServer {
  static async start(options: ConnectionsServerOptions = {}): Promise<ConnectionsServer> {
    const server = new ConnectionsServer(options);
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** Every request, in arrival order. */
  readonly requests: SeenRequest[] = [];
  /** The most POSTs that were in flight at once. */
  maxInFlight = 0;
  /** POSTs answered so far (any status). */
  postsAnswered = 0;
  /** POSTs the client abandoned before an answer (e.g. on its deadline). */
  postsAbandoned = 0;

  private readonly http = createServer((req, res) => this.handle(req, res));
  private readonly stage: string;
  private readonly postLatencyMs: number;
  private readonly open = new Map<string, { connectedAt: Date; lastActiveAt: Date }>();
  private readonly inbox = new Map<string, string[]>();
  private readonly faults = new Map<string, FaultPlan>();
  private inFlight = 0;
  private readonly maxPostsPerSecond: number;
  private readonly throttledShare: number;
  private tokens: number;
  private tokensAt = Date.now();

  private constructor(options: ConnectionsServerOptions) {
    this.stage = options.stage ?? 'dev';
    this.postLatencyMs = options.postLatencyMs ?? 0;
    this.maxPostsPerSecond = options.maxPostsPerSecond ?? Number.POSITIVE_INFINITY;
    this.throttledShare = options.throttledShare ?? 0;
    this.tokens = this.maxPostsPerSecond / 10; // a burst of 100 ms worth
  }

  /** The endpoint a client is configured with: `http://127.0.0.1:<port>/{stage}`. */
  get callbackUrl(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}/${this.stage}`;
  }

  /** Opens a connection, so POSTs to it succeed. */
  connect(connectionId: string): void {
    const now = new Date();
    this.open.set(connectionId, { connectedAt: now, lastActiveAt: now });
  }

  /** Ends a connection, so POSTs to it answer 410. */
  disconnect(connectionId: string): void {
    this.open.delete(connectionId);
  }

  /** Makes the next `times` POSTs to `connectionId` fail with `fault`. */
  inject(connectionId: string, fault: ConnectionFault, times = Number.POSITIVE_INFINITY): void {
    this.faults.set(connectionId, { fault, remaining: times });
  }

  /** The bodies delivered to `connectionId`, in order. */
  received(connectionId: string): string[] {
    return this.inbox.get(connectionId) ?? [];
  }

  /** Ids that received at least one message. */
  recipients(): string[] {
    return [...this.inbox.keys()];
  }

  /** POST attempts made to `connectionId`, retries included. */
  attempts(connectionId: string): number {
    return this.requests.filter((r) => r.method === 'POST' && r.connectionId === connectionId).length;
  }

  /** Resolves once no POST is in flight (answered or abandoned); rejects after `timeoutMs`. */
  async idle(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0) {
      if (Date.now() > deadline) throw new Error(`${this.inFlight} POSTs still in flight after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections(); // hung requests included
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/([^/]+)\/@connections\/([^/?]+)$/.exec(req.url ?? '');
    if (!match) return error(res, 404, 'NotFoundException', 'No method found matching route');
    const [, stage, encodedId] = match;
    const connectionId = decodeURIComponent(encodedId);
    const authorization = req.headers.authorization;
    const seen: SeenRequest = { method: req.method ?? '', stage, connectionId, authorization, path: req.url ?? '', headers: req.headers };
    this.requests.push(seen);

    if (!authorization || !SIGV4_AUTHORIZATION.test(authorization)) {
      return error(res, 403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    if (stage !== this.stage) return error(res, 403, 'ForbiddenException', 'Forbidden');

    switch (req.method) {
      case 'POST': return this.post(req, res, connectionId, seen);
      case 'GET': return this.get(res, connectionId);
      case 'DELETE': return this.delete(res, connectionId);
      default: return error(res, 404, 'NotFoundException', 'No method found matching route');
    }
  }

  private post(req: IncomingMessage, res: ServerResponse, connectionId: string, seen: SeenRequest): void {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let settled = false;
    const settle = (abandoned: boolean) => {
      if (settled) return;
      settled = true;
      this.inFlight -= 1;
      if (abandoned) this.postsAbandoned += 1;
      else this.postsAnswered += 1;
    };
    res.on('finish', () => settle(false));
    res.on('close', () => settle(true)); // after 'finish' this is a no-op

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.body = body;
      if (!this.withinRate() || Math.random() < this.throttledShare) {
        setTimeout(() => error(res, 429, 'LimitExceededException', 'Rate exceeded'), this.postLatencyMs);
        return;
      }
      const plan = this.faults.get(connectionId);
      if (plan && plan.remaining > 0) {
        plan.remaining -= 1;
        if (plan.fault === 'hang') return; // no answer, ever
        const [status, type] = FAULT_RESPONSES[plan.fault];
        setTimeout(() => error(res, status, type, `${type} injected by the test`), this.postLatencyMs);
        return;
      }
      setTimeout(() => {
        if (body.length > MAX_PAYLOAD_BYTES) return error(res, 413, 'PayloadTooLargeException', 'Request entity too large');
        const connection = this.open.get(connectionId);
        if (!connection) return error(res, 410, 'GoneException', 'Connection is gone');
        connection.lastActiveAt = new Date();
        this.inbox.set(connectionId, [...this.received(connectionId), body.toString('utf8')]);
        res.writeHead(200).end();
      }, this.postLatencyMs);
    });
  }

  /** A token bucket refilled at maxPostsPerSecond; a throttled POST takes no token. */
  private withinRate(): boolean {
    if (this.maxPostsPerSecond === Number.POSITIVE_INFINITY) return true;
    const now = Date.now();
    this.tokens = Math.min(this.maxPostsPerSecond / 10, this.tokens + ((now - this.tokensAt) * this.maxPostsPerSecond) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private get(res: ServerResponse, connectionId: string): void {
    const connection = this.open.get(connectionId);
    if (!connection) return error(res, 410, 'GoneException', 'Connection is gone');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      connectedAt: connection.connectedAt.toISOString(),
      identity: { sourceIp: '127.0.0.1', userAgent: 'connections-server' },
      lastActiveAt: connection.lastActiveAt.toISOString(),
    }));
  }

  private delete(res: ServerResponse, connectionId: string): void {
    if (!this.open.delete(connectionId)) return error(res, 410, 'GoneException', 'Connection is gone');
    res.writeHead(204).end();
  }
}

const FAULT_RESPONSES: Record<Exclude<ConnectionFault, 'hang'>, [number, string]> = {
  gone: [410, 'GoneException'],
  throttled: [429, 'LimitExceededException'],
  internal: [500, 'InternalServerErrorException'],
};

function error(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-ErrorType': type }).end(JSON.stringify({ message }));
}
