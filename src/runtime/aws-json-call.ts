import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Environment } from './configuration';

/**
 * One call to an AWS JSON 1.1 API (`POST /` with `X-Amz-Target`), SigV4-signed with the function
 * role's credentials from the environment, as Lambda provides them. The endpoint honours
 * `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL` like the SDK does (the local gateway relies on it).
 *
 * For the handlers' single calls (the authorizer's `GetSecretValue`, lifecycle `PutEvents`), where an
 * SDK client would add hundreds of KB to a bundle and its load time to every cold start.
 */
export interface AwsJsonCall {
  /** The signing name, e.g. `secretsmanager`, `events`. */
  readonly service: string;
  /** The endpoint's host prefix, e.g. `secretsmanager`, `events`. */
  readonly hostPrefix: string;
  /** The SDK's endpoint variable for the service, e.g. `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  readonly endpointVariable: string;
  /** `X-Amz-Target`, e.g. `secretsmanager.GetSecretValue`. */
  readonly target: string;
  readonly body: string;
  /** Milliseconds the request may take. */
  readonly timeoutMs: number;
}

/** A call that got no answer: `NO_CREDENTIALS`, `TIMEOUT` or `FETCH_FAILED`. */
export class AwsCallError extends Error {
  constructor(readonly code: 'NO_CREDENTIALS' | 'TIMEOUT' | 'FETCH_FAILED') {
    super(code);
    this.name = 'AwsCallError';
  }
}

/** Sends the call and answers the status and body text, whatever the status; rejects with AwsCallError. */
export async function callAwsJson(env: Environment, call: AwsJsonCall): Promise<{ status: number; text: string }> {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!region || !accessKeyId || !secretAccessKey) throw new AwsCallError('NO_CREDENTIALS');
  const endpoint = new URL(env[call.endpointVariable] ?? env.AWS_ENDPOINT_URL ?? `https://${call.hostPrefix}.${region}.amazonaws.com`);
  const headers = signedHeaders({
    method: 'POST',
    host: endpoint.host,
    path: endpoint.pathname || '/',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': call.target },
    body: call.body,
    service: call.service,
    region,
    credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN },
    now: new Date(),
  });
  return post(endpoint, headers, call.body, call.timeoutMs);
}

function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  // node:https (and TLS) loads on the first https call, not with the module: a JWKS authorizer never needs it for this.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const send: typeof httpRequest = url.protocol === 'https:' ? require('node:https').request : httpRequest;
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const request = send(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', () => reject(new AwsCallError(signal.aborted ? 'TIMEOUT' : 'FETCH_FAILED')));
    request.end(body);
  });
}

/** What a request needs to be signed. */
export interface SigningInput {
  readonly method: string;
  /** `host[:port]`, as sent in the Host header. */
  readonly host: string;
  /** The path, already URI-encoded (for an AWS JSON API: `/`). No query string. */
  readonly path: string;
  /** Headers to sign besides host and x-amz-date, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly service: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  readonly now: Date;
}

/**
 * AWS Signature Version 4 for a request without a query string: the headers to send (the given
 * ones, host, x-amz-date, x-amz-security-token for temporary credentials, authorization). Checked
 * against the SDK's signer (`@smithy/signature-v4`) in test/runtime/hmac-key-source.test.ts.
 */
export function signedHeaders(input: SigningInput): Record<string, string> {
  const amzDate = input.now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = { ...input.headers, 'host': input.host, 'x-amz-date': amzDate };
  if (input.credentials.sessionToken) headers['x-amz-security-token'] = input.credentials.sessionToken;
  const names = Object.keys(headers).map((name) => name.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value.trim().replace(/\s+/g, ' ')]));
  const canonical = [
    input.method,
    input.path,
    '',
    ...names.map((name) => `${name}:${lower[name]}`),
    '',
    names.join(';'),
    sha256Hex(input.body),
  ].join('\n');
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key: Buffer = hmac(`AWS4${input.credentials.secretAccessKey}`, date);
  for (const part of [input.region, input.service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  };
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}
