import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The parts of a SigV4 `Authorization` header. */
export interface SigV4Authorization {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

export function parseAuthorization(header: string): SigV4Authorization {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(header);
  if (!match) throw new Error(`Not a SigV4 Authorization header: ${header}`);
  const [, accessKeyId, date, region, service, signedHeaders, signature] = match;
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(';'), signature };
}

/**
 * Recomputes a request's SigV4 signature from what arrived on the wire, written from the AWS
 * specification (not with the signer under test): canonical request with each path segment
 * URI-encoded again (every service but S3), sorted signed headers, SHA-256 of the body; string to
 * sign; HMAC key chain `AWS4<secret>` > date > region > service > `aws4_request`.
 */
export function expectedSignature(
  request: { method: string; path: string; headers: IncomingHttpHeaders; body: Buffer },
  secretAccessKey: string,
): string {
  const auth = parseAuthorization(String(request.headers.authorization));
  const [pathname, query = ''] = request.path.split('?');
  const canonicalUri = pathname.split('/').map((segment) => rfc3986(segment)).join('/');
  const canonicalHeaders = auth.signedHeaders.map((name) => `${name}:${String(request.headers[name]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [
    request.method,
    canonicalUri,
    query,
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    createHash('sha256').update(request.body).digest('hex'),
  ].join('\n');
  const amzDate = String(request.headers['x-amz-date']);
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = Buffer.from(`AWS4${secretAccessKey}`, 'utf8');
  for (const part of [auth.date, auth.region, auth.service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
