import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { canonicalPath, escapeUri, SigV4Signer } from './sigv4';

/** What the @connections API answered to one POST. */
export interface PostResponse {
  /** The HTTP status: 200 delivered, 410 gone, 413 too large, 429 throttled, 5xx failed. */
  readonly status: number;
  /** `x-amzn-ErrorType` without its `:<url>` suffix, e.g. `GoneException`; absent on success. */
  readonly errorType?: string;
}

/** Posts one payload to one connection. The fan-out engine talks to @connections through this only. */
export interface ConnectionsTransport {
  /**
   * POSTs `data` to `connectionId`. Resolves with the answer, whatever its status; rejects on a
   * network error, or with a `PostTimeoutError` when no complete answer came within `timeoutMs`
   * (the request is then destroyed, not left open).
   */
  post(connectionId: string, data: Buffer, timeoutMs: number): Promise<PostResponse>;
}

/** A post abandoned at its timeout. */
export class PostTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`No answer within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

export interface SignedConnectionsClientOptions {
  /** `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` (or a local `http://` endpoint). */
  readonly endpoint: string;
  readonly region: string;
  /** Sockets kept open to the endpoint; at least the fan-out's concurrency. @default 100 */
  readonly maxSockets?: number;
  /** @default the SDK's default credential chain (Lambda: the function role's environment variables) */
  readonly credentials?: AwsCredentialIdentityProvider;
}

/**
 * A @connections client that signs every request with SigV4 and sends it over a keep-alive
 * http(s) agent.
 *
 * Why not `ApiGatewayManagementApiClient` on the hot path: measured on this project's benchmark, its
 * middleware stack (endpoint resolution, retry, serde, logging, checksum and user-agent middleware
 * around each command) costs about 400 us of CPU per post, which makes a 10,000-recipient broadcast
 * CPU-bound long before the @connections API is. A POST to @connections has no request shape to
 * serialize and an empty response, so what remains needed is the signature. Not the SDK's
 * `@smithy/signature-v4` either (it was ~64 us per post plus the garbage of its per-request objects
 * and promises): `SigV4Signer` signs this one request shape with the derived key kept per day, and a
 * test holds its Authorization header equal to the SDK signer's. The payload's SHA-256 is computed
 * once per payload, not once per recipient. Each request is bounded by a plain timer rather than an
 * `AbortSignal.timeout` per request (~20 us of CPU with the signal's listener). Credentials come from
 * the SDK's provider chain and are fetched again within 5 minutes of their expiry.
 * Retries and throttling are the fan-out engine's job, not this client's.
 */
export class SignedConnectionsClient implements ConnectionsTransport {
  private readonly hostname: string;
  private readonly port?: string;
  private readonly host: string;
  private readonly basePath: string;
  /** The canonical URI of `${basePath}/@connections/`, to which each id's is appended. */
  private readonly canonicalBase: string;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly signer: SigV4Signer;
  private readonly provider: AwsCredentialIdentityProvider;
  private credentials?: AwsCredentialIdentity;
  private refreshing?: Promise<AwsCredentialIdentity>;
  private lastPayload?: { data: Buffer; hash: string };

  constructor(options: SignedConnectionsClientOptions) {
    const url = new URL(options.endpoint);
    this.hostname = url.hostname;
    this.port = url.port || undefined;
    this.host = url.host;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.canonicalBase = canonicalPath(`${this.basePath}/@connections/x`).slice(0, -1);
    const secure = url.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 100, keepAliveMsecs: 1_000 };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.request = secure ? https.request : http.request;
    this.signer = new SigV4Signer(options.region, 'execute-api');
    this.provider = options.credentials ?? defaultProvider();
  }

  post(connectionId: string, data: Buffer, timeoutMs: number): Promise<PostResponse> {
    const credentials = this.freshCredentials();
    if (credentials) return this.send(connectionId, data, timeoutMs, credentials);
    // The timeout bounds the whole attempt, the wait for credentials included.
    const started = Date.now();
    return this.refreshCredentials().then((fetched) => {
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) throw new PostTimeoutError(timeoutMs);
      return this.send(connectionId, data, left, fetched);
    });
  }

  /** Closes the kept-alive sockets. */
  destroy(): void {
    this.agent.destroy();
  }

  private send(connectionId: string, data: Buffer, timeoutMs: number, credentials: AwsCredentialIdentity): Promise<PostResponse> {
    return new Promise<PostResponse>((resolve, reject) => {
      const id = encodeURIComponent(connectionId);
      const path = `${this.basePath}/@connections/${id}`;
      const headers = this.signer.sign({
        method: 'POST',
        host: this.host,
        // The id is one segment: encoded again, appended to the base's canonical URI. An id that
        // the path normalization would drop or resolve ('', '.', '..') takes the long way.
        canonicalPath: id === '' || id === '.' || id === '..' ? canonicalPath(path) : this.canonicalBase + escapeUri(id),
        contentType: 'application/json',
        contentLength: data.length,
        payloadHash: this.payloadHash(data),
      }, credentials, Date.now());
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: unknown) => {
        clearTimeout(timer);
        reject(timedOut ? new PostTimeoutError(timeoutMs) : err);
      };
      const req = this.request({ agent: this.agent, method: 'POST', hostname: this.hostname, port: this.port, path, headers }, (res) => {
        res.resume(); // the body is empty or a short JSON message: drain it so the socket is reused
        res.on('end', () => {
          clearTimeout(timer);
          const errorType = res.headers['x-amzn-errortype'];
          resolve({
            status: res.statusCode ?? 0,
            errorType: typeof errorType === 'string' ? errorType.split(':')[0] : undefined,
          });
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error('The response was cut off'));
        });
      });
      // A hung post is destroyed at the timeout: its socket is closed, not left open.
      timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new PostTimeoutError(timeoutMs));
      }, timeoutMs);
      req.on('error', fail);
      req.end(data);
    });
  }

  /** The credentials in hand, unless they expire within 5 minutes. */
  private freshCredentials(): AwsCredentialIdentity | undefined {
    const credentials = this.credentials;
    if (credentials && (!credentials.expiration || credentials.expiration.getTime() - Date.now() > 5 * 60_000)) return credentials;
    return undefined;
  }

  /** Fetches credentials from the provider, once for every post waiting on them; a failure is not kept. */
  private refreshCredentials(): Promise<AwsCredentialIdentity> {
    this.refreshing ??= this.provider().then((credentials) => {
      if (typeof credentials?.accessKeyId !== 'string' || typeof credentials.secretAccessKey !== 'string') {
        throw new Error('Resolved credential object is not valid');
      }
      this.credentials = credentials;
      return credentials;
    }).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private payloadHash(data: Buffer): string {
    if (this.lastPayload?.data !== data) {
      this.lastPayload = { data, hash: createHash('sha256').update(data).digest('hex') };
    }
    return this.lastPayload.hash;
  }
}
