/**
 * The @connections management API as the fan-out benchmark needs it, run as a child process of
 * bench/fanout/run.ts so that its CPU is never counted as the client's.
 *
 * POST /{stage}/@connections/{id} answers 200 (empty body) after `latencyMs`, over HTTP keep-alive.
 * With a ceiling, a token bucket of `maxRate` per second (100 ms of burst) answers the POSTs above it
 * 429 with `x-amzn-ErrorType: LimitExceededException` and a JSON body, as API Gateway does; of the
 * POSTs within the rate, a share `errorRate` answers 500 InternalServerErrorException. Every answer
 * comes after the same latency. It counts distinct connection ids answered 200 (delivered), every
 * status, and the POSTs that carried a SigV4 `Authorization` header.
 *
 * Control is over IPC: `{ type: 'configure', ... }` resets the counters; `{ type: 'stats' }` answers them.
 * With BENCH_TLS_KEY and BENCH_TLS_CERT (PEM) it also serves the same API over TLS on a second port,
 * as the real @connections endpoint does (https only).
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

interface Config {
  latencyMs: number;
  maxRate: number; // posts per second; Infinity: no ceiling
  errorRate: number; // 0..1, share of in-rate posts answered 500
  stage: string;
}

const SIGV4 = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/;

let config: Config = { latencyMs: 20, maxRate: Number.POSITIVE_INFINITY, errorRate: 0, stage: 'bench' };
let delivered = new Set<string>();
let posts = 0;
let signed = 0;
let statuses: Record<string, number> = {};
let inFlight = 0;
let maxInFlight = 0;
let tokens = 0;
let tokensAt = Date.now();
let first200 = 0;
let last200 = 0;

function reset(next: Partial<Config>): void {
  config = { ...config, ...next, maxRate: next.maxRate ?? Number.POSITIVE_INFINITY };
  delivered = new Set();
  posts = signed = inFlight = maxInFlight = first200 = last200 = 0;
  statuses = {};
  tokens = config.maxRate / 10;
  tokensAt = Date.now();
}

function withinRate(): boolean {
  if (config.maxRate === Number.POSITIVE_INFINITY) return true;
  const now = Date.now();
  tokens = Math.min(config.maxRate / 10, tokens + ((now - tokensAt) * config.maxRate) / 1000);
  tokensAt = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

function answer(res: ServerResponse, status: number, type?: string, message?: string): void {
  statuses[status] = (statuses[status] ?? 0) + 1;
  if (type) {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-ErrorType': type }).end(JSON.stringify({ message }));
  } else {
    res.writeHead(status).end();
  }
}

function serve(req: IncomingMessage, res: ServerResponse): void {
  const match = /^\/([^/]+)\/@connections\/([^/?]+)$/.exec(req.url ?? '');
  if (!match || req.method !== 'POST' || match[1] !== config.stage) {
    req.resume();
    return answer(res, 404, 'NotFoundException', 'No method found matching route');
  }
  const connectionId = decodeURIComponent(match[2]);
  posts += 1;
  if (SIGV4.test(req.headers.authorization ?? '') && req.headers['x-amz-date']) signed += 1;
  inFlight += 1;
  maxInFlight = Math.max(maxInFlight, inFlight);
  res.on('close', () => { inFlight -= 1; });
  req.resume(); // the payload itself is not needed; draining it keeps the socket reusable
  req.on('end', () => {
    const inRate = withinRate();
    const fails = inRate && config.errorRate > 0 && Math.random() < config.errorRate;
    setTimeout(() => {
      if (!inRate) return answer(res, 429, 'LimitExceededException', 'Rate exceeded');
      if (fails) return answer(res, 500, 'InternalServerErrorException', 'Internal server error');
      delivered.add(connectionId);
      last200 = Date.now();
      if (first200 === 0) first200 = last200;
      answer(res, 200);
    }, config.latencyMs);
  });
}

const server = createServer(serve);
const tlsServer = process.env.BENCH_TLS_KEY && process.env.BENCH_TLS_CERT
  ? createTlsServer({ key: process.env.BENCH_TLS_KEY, cert: process.env.BENCH_TLS_CERT }, serve)
  : undefined;
for (const s of [server, tlsServer]) {
  if (!s) continue;
  s.keepAliveTimeout = 120_000;
  s.headersTimeout = 125_000;
  s.requestTimeout = 0;
}

process.on('message', (message: { type: string; config?: Partial<Config> }) => {
  if (message.type === 'configure') {
    reset(message.config ?? {});
    process.send!({ type: 'configured' });
  } else if (message.type === 'stats') {
    process.send!({
      type: 'stats',
      delivered: delivered.size,
      posts,
      signed,
      statuses,
      maxInFlight,
      deliveringMs: last200 - first200,
    });
  } else if (message.type === 'stop') {
    tlsServer?.closeAllConnections();
    tlsServer?.close();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0)); // the parent is gone: never outlive it

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  if (!tlsServer) {
    process.send!({ type: 'listening', port });
    return;
  }
  tlsServer.listen(0, '127.0.0.1', () => process.send!({ type: 'listening', port, tlsPort: (tlsServer.address() as AddressInfo).port }));
});
