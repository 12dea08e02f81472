import type { IncomingMessage, ServerResponse } from 'node:http';
import { awsStyleId } from './events';

/**
 * The @connections management API at `/{stage}/@connections/{connectionId}`, answering as API
 * Gateway does, so the AWS SDK v3 names errors correctly: every error carries `x-amzn-ErrorType`
 * and a JSON body (a non-JSON error body makes the SDK throw a parse error instead).
 */

/** The largest message API Gateway sends to a connection: 128 KB. */
export const MAX_POST_BYTES = 128 * 1024;

/** A connection as the management API sees it. */
export interface ManagedConnection {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
  readonly lastActiveAt: number;
  /** True once `$connect` succeeded and until the connection closes. */
  isOpen(): boolean;
  /** Sends a text message; false when the client is not reading fast enough (429). */
  send(data: Buffer): boolean;
  /** Closes the connection as DeleteConnection does. */
  disconnect(): void;
}

export interface ConnectionDirectory {
  find(connectionId: string): ManagedConnection | undefined;
}

/** Handles one @connections request for `connectionId` (already URL-decoded). */
export async function serveConnectionsApi(
  request: IncomingMessage,
  response: ServerResponse,
  connectionId: string,
  directory: ConnectionDirectory,
  log: (line: string) => void,
): Promise<void> {
  const requestId = awsStyleId();
  const body = await readBody(request, MAX_POST_BYTES + 1);
  const method = request.method ?? 'GET';
  const reply = (statusCode: number, payload?: unknown, errorType?: string) => {
    const text = payload === undefined ? '' : JSON.stringify(payload);
    response.writeHead(statusCode, {
      'x-amzn-RequestId': requestId,
      ...(errorType ? { 'x-amzn-ErrorType': errorType } : {}),
      ...(text ? { 'Content-Type': 'application/json' } : {}),
      'Content-Length': Buffer.byteLength(text),
    });
    response.end(text);
    // A broadcast is one successful POST per recipient: logging each would flood the terminal and,
    // written synchronously, slow the gateway; the route's message line already sums them up.
    if (method !== 'POST' || statusCode >= 300) {
      log(`@connections ${method} ${connectionId} -> ${statusCode}${errorType ? ` ${errorType}` : ''}`);
    }
  };

  // Requests must be signed (SigV4). The signature is not verified: the credentials are dummies.
  const authorization = request.headers.authorization ?? '';
  const presigned = new URL(request.url ?? '/', 'http://localhost').searchParams.has('X-Amz-Signature');
  if (!authorization.startsWith('AWS4-HMAC-SHA256 ') && !presigned) {
    return reply(403, { message: 'Missing Authentication Token' }, 'MissingAuthenticationTokenException');
  }

  if (!['POST', 'GET', 'DELETE'].includes(method)) {
    return reply(403, { message: `No method found matching route @connections/{connectionId} for http method ${method}.` }, 'ForbiddenException');
  }

  const connection = directory.find(connectionId);
  if (!connection || !connection.isOpen()) {
    return reply(410, { message: `Connection ${connectionId} is gone` }, 'GoneException');
  }

  switch (method) {
    case 'POST':
      if (body.length > MAX_POST_BYTES) {
        return reply(413, { message: `Request entity too large: the message is over ${MAX_POST_BYTES} bytes` }, 'PayloadTooLargeException');
      }
      if (!connection.send(body)) {
        return reply(429, { message: 'The client is not reading its messages fast enough' }, 'LimitExceededException');
      }
      return reply(200);
    case 'GET':
      return reply(200, {
        connectedAt: new Date(connection.connectedAt).toISOString(),
        identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
        lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
      });
    default:
      connection.disconnect();
      return reply(204);
  }
}

/** Reads the body, keeping at most `limit` bytes (enough to know it is too large). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk);
      size += chunk.length;
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
