import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Environment } from './configuration';
import { KeyUnavailableError } from './key-source';

export interface SecretReaderOptions {
  /** The environment: region, credentials (Lambda puts the role's in it) and endpoint override. */
  readonly env: Environment;
  /** Milliseconds the request may take. @default 3000 */
  readonly timeoutMs?: number;
}

/**
 * Reads one secret's `SecretString` with a single SigV4-signed `GetSecretValue` call.
 *
 * Why not `@aws-sdk/client-secrets-manager`: the authorizer reads one secret once per container,
 * and bundling the SDK client made its bundle 500 KB, which took ~25 ms of every cold start just to
 * load (the SDK's signer alone pulls in 150 KB of @smithy/core). The request is signed with SigV4
 * here, in 40 lines of node:crypto checked against the SDK's signer; the credentials are the
 * function role's, from the environment as Lambda provides them; the endpoint
 * honours `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL` like the SDK does (the local gateway
 * relies on it). Failures reject with KeyUnavailableError named after the service's error type.
 */
export async function readSecretString(secretId: string, options: SecretReaderOptions): Promise<string> {
  const { env } = options;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!region || !accessKeyId || !secretAccessKey) throw new KeyUnavailableError('NO_CREDENTIALS');
  const endpoint = new URL(env.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? env.AWS_ENDPOINT_URL ?? `https://secretsmanager.${region}.amazonaws.com`);

  const body = JSON.stringify({ SecretId: secretId });
  const headers = signedHeaders({
    method: 'POST',
    host: endpoint.host,
    path: endpoint.pathname || '/',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
    body,
    service: 'secretsmanager',
    region,
    credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN },
    now: new Date(),
  });

  const { status, text } = await post(endpoint, headers, body, options.timeoutMs ?? 3_000);
  let answer: { SecretString?: unknown; __type?: unknown } = {};
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // An answer that is not JSON is named by its status below.
  }
  if (status !== 200) {
    const type = typeof answer.__type === 'string' ? answer.__type.split('#').pop()! : `HTTP_${status}`;
    throw new KeyUnavailableError(type);
  }
  if (typeof answer.SecretString !== 'string' || answer.SecretString.length === 0) throw new KeyUnavailableError('NO_SECRET_STRING');
  return answer.SecretString;
}

function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  // node:https (and TLS) loads on the first https read, not with the module: a JWKS authorizer never needs it for this.
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
    request.on('error', () => reject(new KeyUnavailableError(signal.aborted ? 'TIMEOUT' : 'FETCH_FAILED')));
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
