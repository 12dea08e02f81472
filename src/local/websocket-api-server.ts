import { createReadStream, statSync } from 'node:fs';
import { createServer, IncomingMessage, STATUS_CODES, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
// ws is bundled into the CLI by esbuild.
// eslint-disable-next-line import/no-extraneous-dependencies
import { WebSocket, WebSocketServer } from 'ws';
import type { RouteModel, StageModel, WebSocketApiModel } from './assembly';
import { authorizationOutcome, missingIdentitySource } from './authorizer';
import { CloseInfo, ConnectionLimits, LocalConnection, MAX_FRAME_BYTES } from './connection';
import { MAX_POST_BYTES, serveConnectionsApi } from './connections-api';
import { ApiEndpoint, awsStyleId, ConnectionIdentity, disconnectHeaders, handshakeRequest, HandshakeRequest, requestContext } from './events';
import { callIntegration, FunctionLookup, IntegrationError, IntegrationResult } from './integrations';
import { chooseRoute, selectRouteKey } from './route-selection';

/**
 * Serves one WebSocket API on one port: the WebSocket endpoint at `/{stage}` (authorizer,
 * `$connect`, route selection, `$disconnect`), the @connections API at `/{stage}/@connections/{id}`,
 * and optionally a folder of static files (a browser client) at the other paths.
 */

export interface WebSocketApiServerOptions {
  readonly api: WebSocketApiModel;
  readonly host: string;
  readonly port: number;
  readonly limits: ConnectionLimits;
  readonly functions: FunctionLookup;
  readonly log: (line: string) => void;
  /** A folder served at `/` (GET only), e.g. a browser client. */
  readonly webDirectory?: string;
}

/** Header names the integration may not set on the 101 response: the WebSocket handshake owns them. */
const HANDSHAKE_HEADERS = new Set(['connection', 'upgrade', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions', 'content-length', 'transfer-encoding']);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export class WebSocketApiServer {
  static async listen(options: WebSocketApiServerOptions): Promise<WebSocketApiServer> {
    const server = new WebSocketApiServer(options);
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(options.port, options.host, () => {
        server.http.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  readonly api: WebSocketApiModel;
  private readonly http: Server;
  private readonly sockets: WebSocketServer;
  private readonly connections = new Map<string, LocalConnection>();
  /** Resolves when the connection's `$disconnect` has run: shutdown waits for them. */
  private readonly disconnected = new Map<string, Promise<void>>();
  /** What the `$connect` integration answered, for the 101 response of the same request. */
  private readonly handshakeResponses = new WeakMap<IncomingMessage, IntegrationResult>();
  private closing = false;

  private constructor(private readonly options: WebSocketApiServerOptions) {
    this.api = options.api;
    this.sockets = new WebSocketServer({
      noServer: true,
      // A message may be 128 KB, sent as frames of at most 32 KB (watchFrameSizes closes at a larger frame);
      // over 128 KB in all, ws closes with 1009, as API Gateway does.
      maxPayload: MAX_POST_BYTES,
      perMessageDeflate: false,
      // API Gateway never picks a subprotocol itself: only the one `$connect` returned is echoed.
      handleProtocols: (_offered, request) => headerOf(this.handshakeResponses.get(request)?.headers, 'sec-websocket-protocol') ?? false,
    });
    this.sockets.on('headers', (headers, request) => {
      for (const [name, value] of Object.entries(this.handshakeResponses.get(request)?.headers ?? {})) {
        if (!HANDSHAKE_HEADERS.has(name.toLowerCase())) headers.push(`${name}: ${value}`);
      }
    });
    this.http = createServer((request, response) => {
      this.onRequest(request, response).catch((err: unknown) => {
        this.options.log(`error serving ${request.method} ${request.url}: ${err instanceof Error ? err.stack : String(err)}`);
        if (!response.headersSent) response.writeHead(500);
        response.end();
      });
    });
    this.http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.onUpgrade(request, socket, head).catch((err: unknown) => {
        this.options.log(`error during a handshake: ${err instanceof Error ? err.stack : String(err)}`);
        refuseHandshake(socket, 500, JSON.stringify({ message: 'Internal server error' }));
      });
    });
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** `ws://host:port/stage`, one per stage. */
  urls(): Array<{ stage: string; url: string; callbackUrl: string }> {
    return this.api.stages.map(({ stageName }) => ({
      stage: stageName,
      url: `ws://${this.options.host}:${this.port}/${stageName}`,
      callbackUrl: `http://${this.options.host}:${this.port}/${stageName}`,
    }));
  }

  /** Closes every connection with a close frame (1001, as API Gateway does when it goes away), runs their `$disconnect`, stops. */
  async close(): Promise<void> {
    this.closing = true;
    for (const connection of this.connections.values()) connection.close(1001, 'Going away');
    await Promise.race([Promise.allSettled(this.disconnected.values()), delay(3_000)]);
    for (const client of this.sockets.clients) client.terminate();
    this.sockets.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private stageOf(pathname: string): StageModel | undefined {
    const name = decodeURIComponent(pathname.replace(/^\/+|\/+$/g, ''));
    return this.api.stages.find((stage) => stage.stageName === name);
  }

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const management = /^\/([^/]+)\/(?:@|%40)connections\/(.+)$/i.exec(url.pathname);
    if (management && this.stageOf(management[1])) {
      return serveConnectionsApi(request, response, decodeURIComponent(management[2]), {
        find: (connectionId) => this.connections.get(connectionId),
      }, (line) => this.options.log(`${this.api.name}/${management[1]} ${line}`));
    }
    if (this.stageOf(url.pathname)) {
      // The WebSocket endpoint answers plain HTTP with 426, as API Gateway does.
      return sendJson(response, 426, { message: 'Upgrade Required' }, { Upgrade: 'websocket' });
    }
    if (this.options.webDirectory && (request.method === 'GET' || request.method === 'HEAD') && this.serveStatic(url.pathname, response)) return;
    return sendJson(response, 403, { message: 'Forbidden' }, { 'x-amzn-ErrorType': 'ForbiddenException' });
  }

  private serveStatic(pathname: string, response: ServerResponse): boolean {
    const root = this.options.webDirectory!;
    const file = normalize(join(root, decodeURIComponent(pathname.endsWith('/') ? `${pathname}index.html` : pathname)));
    if (!file.startsWith(normalize(root + sep))) return false;
    try {
      if (!statSync(file).isFile()) return false;
    } catch {
      return false;
    }
    response.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    createReadStream(file).pipe(response);
    return true;
  }

  private async onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const stage = this.stageOf(url.pathname);
    if (!stage || this.closing) return refuseHandshake(socket, 403, JSON.stringify({ message: 'Forbidden' }));
    // An upgrade to anything but a WebSocket (h2c, say) is a plain request to the endpoint: 426, as API Gateway answers.
    if (String(request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return refuseHandshake(socket, 426, JSON.stringify({ message: 'Upgrade Required' }), ['Upgrade: websocket']);
    }

    const sourceIp = (request.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const identity: ConnectionIdentity = {
      connectionId: awsStyleId(),
      connectedAt: Date.now(),
      sourceIp,
      userAgent: String(request.headers['user-agent'] ?? ''),
    };
    // The client reached the API's default endpoint, so `domainName` is its execute-api host, as deployed:
    // functions that build the @connections URL from it reach this gateway (the function workers route it here).
    const endpoint: ApiEndpoint = { apiId: this.api.apiId, stage: stage.stageName, domainName: executeApiHost(this.api) };
    const handshake = handshakeRequest(request, url, sourceIp);
    const where = `${this.api.name}/${stage.stageName}`;
    const refuse = (statusCode: number, why: string, body = JSON.stringify({ message: STATUS_CODES[statusCode] ?? 'Error' })) => {
      this.options.log(`connect    ${where} refused ${statusCode}: ${why}`);
      refuseHandshake(socket, statusCode, body);
    };

    const route = this.api.routes.get('$connect');
    if (route) {
      const denied = await this.authorize(route, stage, endpoint, identity, handshake);
      if (denied) return refuse(denied.statusCode, denied.reason);
      if (route.integration) {
        const context = requestContext(endpoint, identity, '$connect', 'CONNECT');
        let result: IntegrationResult;
        try {
          result = await callIntegration(route.integration, {
            event: {
              headers: handshake.headers,
              multiValueHeaders: handshake.multiValueHeaders,
              ...queryOf(handshake),
              requestContext: context,
              isBase64Encoded: false,
            },
            requestContext: context,
            handshake,
            stageVariables: stage.stageVariables,
          }, this.options.functions);
        } catch (err) {
          return refuse(502, `the $connect integration failed: ${err instanceof Error ? err.message : String(err)}`, JSON.stringify({ message: 'Internal server error' }));
        }
        if (result.statusCode < 200 || result.statusCode > 299) {
          return refuse(result.statusCode, `the $connect integration answered ${result.statusCode}`, result.body ?? '');
        }
        this.handshakeResponses.set(request, result);
      }
    }

    if (socket.destroyed || !socket.writable || !socket.readable) {
      // `$connect` succeeded (it may have registered the connection), so `$disconnect` runs, as for any connection that ends.
      this.options.log(`connect    ${where} ${identity.connectionId} abandoned: the client left during $connect`);
      socket.destroy(); // half-open otherwise: the HTTP server let go of it at the upgrade
      if (route?.integration) await this.runDisconnect(endpoint, identity, stage, { statusCode: 1006, reason: 'Connection closed abnormally' });
      return;
    }
    this.sockets.handleUpgrade(request, socket, head, (ws) => this.onOpen(ws, socket, identity, endpoint, stage));
  }

  /** Runs the route's authorization; returns why the connection is refused, or undefined to go on. */
  private async authorize(
    route: RouteModel,
    stage: StageModel,
    endpoint: ApiEndpoint,
    identity: ConnectionIdentity,
    handshake: HandshakeRequest,
  ): Promise<{ statusCode: number; reason: string } | undefined> {
    if (route.authorizationType === 'AWS_IAM') {
      // Signed with SigV4 (header or presigned URL); the signature itself is not verified locally.
      const signed = /^AWS4-HMAC-SHA256 /.test(Object.entries(handshake.headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1] ?? '')
        || handshake.queryStringParameters?.['X-Amz-Signature'] !== undefined;
      return signed ? undefined : { statusCode: 403, reason: 'the route uses AWS_IAM and the request is not signed' };
    }
    const authorizer = route.authorizer;
    if (route.authorizationType !== 'CUSTOM' || !authorizer) return undefined;

    const context = requestContext(endpoint, identity, '$connect', 'CONNECT');
    const missing = missingIdentitySource(authorizer, handshake, stage.stageVariables, context);
    if (missing) return { statusCode: 401, reason: `identity source ${missing} is missing or empty (the authorizer was not called)` };

    const runner = authorizer.functionArn ? this.options.functions(authorizer.functionArn) : undefined;
    if (!runner) return { statusCode: 500, reason: `the authorizer ${authorizer.name} invokes no function of this assembly` };
    const methodArn = `arn:aws:execute-api:${this.api.region}:${this.api.accountId}:${this.api.apiId}/${stage.stageName}/$connect`;
    const started = Date.now();
    let result: unknown;
    let error: unknown;
    try {
      result = await runner.invoke({
        type: 'REQUEST',
        methodArn,
        headers: handshake.headers,
        multiValueHeaders: handshake.multiValueHeaders,
        ...queryOf(handshake),
        stageVariables: stage.stageVariables,
        requestContext: context,
      });
    } catch (err) {
      error = err;
    }
    const outcome = authorizationOutcome(methodArn, result, error, Date.now() - started);
    if (!outcome.allowed) return { statusCode: outcome.statusCode, reason: outcome.reason };
    identity.authorizer = outcome.authorizer;
    return undefined;
  }

  private onOpen(ws: WebSocket, socket: Socket, identity: ConnectionIdentity, endpoint: ApiEndpoint, stage: StageModel): void {
    const connection = new LocalConnection(identity, endpoint, ws, this.options.limits);
    this.connections.set(connection.connectionId, connection);
    const user = connection.authorizer?.principalId;
    this.options.log(`connect    ${this.api.name}/${endpoint.stage} ${connection.connectionId}${user ? ` user=${String(user)}` : ''} from ${connection.sourceIp}`);

    let resolveDisconnected: () => void = () => undefined;
    this.disconnected.set(connection.connectionId, new Promise((resolve) => (resolveDisconnected = resolve)));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.onMessage(connection, stage, data, isBinary).catch((err: unknown) => {
        this.options.log(`message    ${this.api.name}/${endpoint.stage} ${connection.connectionId} error: ${err instanceof Error ? err.stack : String(err)}`);
      });
    });
    watchFrameSizes(socket, () => {
      this.options.log(`message    ${this.api.name}/${endpoint.stage} ${connection.connectionId} frame over ${MAX_FRAME_BYTES} bytes: closing with 1009`);
      connection.close(1009, 'Message too big');
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already sent the close frame with the matching code; record it for `$disconnect`.
      const [statusCode, reason] = CLOSE_CODES[err.code ?? ''] ?? [1002, 'Protocol error'];
      connection.close(statusCode, reason);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const info = connection.closeInfo(code, reason.toString('utf8'));
      void this.onClose(connection, stage, info).finally(() => {
        this.disconnected.delete(connection.connectionId);
        resolveDisconnected();
      });
    });
  }

  private async onMessage(connection: LocalConnection, stage: StageModel, data: Buffer, isBinary: boolean): Promise<void> {
    const where = `${this.api.name}/${connection.endpoint.stage} ${connection.connectionId}`;
    // A message that completes after the gateway started closing (a frame over 32 KB, say) is dropped.
    if (!connection.isOpen()) return;
    if (isBinary) {
      this.options.log(`message    ${where} binary frame: closing with 1003`);
      connection.close(1003, 'Binary frames are not supported');
      return;
    }
    connection.touch();
    const body = data.toString('utf8');
    const selectedKey = selectRouteKey(this.api.routeSelectionExpression, body);
    const chosen = chooseRoute(this.api.routes, selectedKey);
    const context = requestContext(connection.endpoint, connection, chosen?.routeKey ?? selectedKey ?? '$default', 'MESSAGE', { messageId: awsStyleId() });
    const requestId = String(context.requestId);
    if (!chosen) {
      this.options.log(`message    ${where} ${data.length} B: no route for ${JSON.stringify(selectedKey ?? null)} and no $default: Forbidden`);
      this.sendStatusFrame(connection, 'Forbidden', requestId);
      return;
    }
    const started = Date.now();
    try {
      if (!chosen.route.integration) throw new IntegrationError(`route ${chosen.routeKey} has no integration`);
      const result = await callIntegration(chosen.route.integration, {
        event: { requestContext: context, body, isBase64Encoded: false },
        requestContext: context,
        body,
        stageVariables: stage.stageVariables,
      }, this.options.functions);
      // Only a route with a route response sends what the integration returned.
      if (chosen.route.returnResponse && result.body !== undefined && connection.isOpen()) connection.send(Buffer.from(result.body, 'utf8'));
      this.options.log(`message    ${where} ${data.length} B -> ${chosen.routeKey} ${result.statusCode} (${Date.now() - started} ms)`);
    } catch (err) {
      this.options.log(`message    ${where} ${data.length} B -> ${chosen.routeKey} failed: ${err instanceof Error ? err.message : String(err)}`);
      this.sendStatusFrame(connection, 'Internal server error', requestId);
    }
  }

  /** API Gateway's own frames, byte for byte (note the space after the first colon only). */
  private sendStatusFrame(connection: LocalConnection, message: string, requestId: string): void {
    if (!connection.isOpen()) return;
    connection.send(Buffer.from(`{"message": "${message}", "connectionId":"${connection.connectionId}", "requestId":"${requestId}"}`, 'utf8'));
  }

  private async onClose(connection: LocalConnection, stage: StageModel, info: CloseInfo): Promise<void> {
    connection.stopClocks();
    this.connections.delete(connection.connectionId);
    this.options.log(`disconnect ${this.api.name}/${connection.endpoint.stage} ${connection.connectionId} ${info.statusCode}${info.reason ? ` ${JSON.stringify(info.reason)}` : ''}`);
    await this.runDisconnect(connection.endpoint, connection, stage, info);
  }

  /** The `$disconnect` route of a connection that ended, when the API has one. */
  private async runDisconnect(endpoint: ApiEndpoint, connection: ConnectionIdentity, stage: StageModel, info: CloseInfo): Promise<void> {
    const route = this.api.routes.get('$disconnect');
    if (!route?.integration) return;
    const headers = disconnectHeaders(endpoint.domainName);
    const context = requestContext(endpoint, connection, '$disconnect', 'DISCONNECT', {
      disconnectStatusCode: info.statusCode,
      disconnectReason: info.reason,
    });
    try {
      // Best effort, as in API Gateway: the response is ignored.
      await callIntegration(route.integration, {
        event: { ...headers, requestContext: context, isBase64Encoded: false },
        requestContext: context,
        stageVariables: stage.stageVariables,
      }, this.options.functions);
    } catch (err) {
      this.options.log(`disconnect ${this.api.name}/${endpoint.stage} ${connection.connectionId} $disconnect failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

function queryOf(handshake: HandshakeRequest): Record<string, unknown> {
  return handshake.queryStringParameters
    ? { queryStringParameters: handshake.queryStringParameters, multiValueQueryStringParameters: handshake.multiValueQueryStringParameters }
    : {};
}

function headerOf(headers: Readonly<Record<string, string>> | undefined, name: string): string | undefined {
  return Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1];
}

function refuseHandshake(socket: Socket, statusCode: number, body: string, extraHeaders: readonly string[] = []): void {
  if (socket.destroyed) return;
  socket.end([
    `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Error'}`,
    ...extraHeaders,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-amzn-RequestId: ${awsStyleId()}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n'));
}

function sendJson(response: ServerResponse, statusCode: number, payload: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(payload);
  response.writeHead(statusCode, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** ws's error codes and the close code each one sent (the same codes API Gateway closes with). */
const CLOSE_CODES: Record<string, [number, string]> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: [1009, 'Message too big'],
  WS_ERR_INVALID_UTF8: [1007, 'Invalid frame payload data'],
};

/** `{apiId}.execute-api.{region}.amazonaws.com`: the API's default endpoint, as `domainName` names it. */
export function executeApiHost(api: WebSocketApiModel): string {
  return `${api.apiId}.execute-api.${api.region}.amazonaws.com${api.region.startsWith('cn-') ? '.cn' : ''}`;
}

/**
 * API Gateway limits each frame to 32 KB but a message to 128 KB: a message sent as several frames
 * (a text frame and continuations) of at most 32 KB each is accepted. ws only knows a message limit,
 * so this reads the frame headers of the client's byte stream and calls `tooBig` at the first
 * frame whose payload is over 32 KB.
 */
export function watchFrameSizes(socket: Socket, tooBig: () => void): void {
  let header = Buffer.alloc(0);
  let skip = 0; // payload bytes of the current frame still to pass
  let done = false;
  socket.prependListener('data', (chunk: Buffer) => {
    let offset = 0;
    while (!done && offset < chunk.length) {
      if (skip > 0) {
        const step = Math.min(skip, chunk.length - offset);
        skip -= step;
        offset += step;
        continue;
      }
      // A frame header is 2 to 14 bytes and may span chunks.
      const before = header.length;
      const taken = chunk.subarray(offset, offset + 14 - before);
      header = Buffer.concat([header, taken]);
      const parsed = frameHeader(header);
      if (!parsed) {
        offset += taken.length;
        continue;
      }
      offset += parsed.headerLength - before;
      header = Buffer.alloc(0);
      if (parsed.payloadLength > MAX_FRAME_BYTES) {
        done = true;
        tooBig();
        return;
      }
      skip = parsed.payloadLength;
    }
  });
}

/** The length of a frame's header and payload, or undefined when `bytes` does not hold the whole header yet. */
function frameHeader(bytes: Buffer): { headerLength: number; payloadLength: number } | undefined {
  if (bytes.length < 2) return undefined;
  // The second byte: the mask bit (128), then a 7-bit length (126: 16-bit length follows; 127: 64-bit).
  const masked = bytes[1] >= 0x80;
  const length7 = bytes[1] % 0x80;
  const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
  if (bytes.length < headerLength) return undefined;
  const payloadLength = length7 === 126 ? bytes.readUInt16BE(2) : length7 === 127 ? Number(bytes.readBigUInt64BE(2)) : length7;
  return { headerLength, payloadLength };
}
