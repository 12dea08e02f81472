import { createHash, createHmac } from 'node:crypto';

/** What a request is signed with: the SDK's credential identity, or any object of its shape. */
export interface SigV4Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** One request to sign: a body-carrying request with no query string, as a POST to @connections is. */
export interface SigV4Request {
  readonly method: string;
  /** `host[:port]`, as sent in the Host header. */
  readonly host: string;
  /** The canonical URI (`canonicalPath(path)`), given by callers that compute it more cheaply. */
  readonly canonicalPath: string;
  /** Sent and signed as given: no line breaks or runs of blanks to canonicalize. */
  readonly contentType: string;
  readonly contentLength: number;
  /** Hex SHA-256 of the body, sent as `x-amz-content-sha256` and used as the payload hash. */
  readonly payloadHash: string;
}

/** The headers to send with a signed request (the signed ones plus `authorization`). */
export interface SignedHeaders {
  readonly [name: string]: string;
}

/**
 * SigV4 (`AWS4-HMAC-SHA256`) for one narrow request shape: a request with a body and no query string,
 * signing `content-length`, `content-type`, `host`, `x-amz-content-sha256`, `x-amz-date` and, with
 * temporary credentials, `x-amz-security-token`: the same headers, canonical request and signature
 * `@smithy/signature-v4` produces for such a request (a test holds the two equal).
 *
 * Why not the SDK's signer: per request it builds generic request copies and a chain of promises, and
 * HMACs the credentials just to look up its signing-key cache; here the derived key and the
 * credential scope are kept per (secret, date) and a request costs one SHA-256 and one HMAC.
 */
export class SigV4Signer {
  private key?: { credentials: SigV4Credentials; shortDate: string; signingKey: Buffer; credential: string; token?: string };
  private date?: { second: number; longDate: string };

  constructor(private readonly region: string, private readonly service: string) {}

  /** Signs `request` as made at `now` (epoch milliseconds). */
  sign(request: SigV4Request, credentials: SigV4Credentials, now: number): SignedHeaders {
    const longDate = this.longDate(now);
    const key = this.signingKey(credentials, longDate.slice(0, 8));
    const token = key.token;
    const contentLength = String(request.contentLength);
    const signedHeaders = token === undefined ? SIGNED_HEADERS : SIGNED_HEADERS_WITH_TOKEN;
    const canonicalRequest = `${request.method}\n${request.canonicalPath}\n\n`
      + `content-length:${contentLength}\ncontent-type:${request.contentType}\nhost:${request.host}\n`
      + `x-amz-content-sha256:${request.payloadHash}\nx-amz-date:${longDate}\n`
      + (token === undefined ? '' : `x-amz-security-token:${token}\n`)
      + `\n${signedHeaders}\n${request.payloadHash}`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${key.credential}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', key.signingKey).update(stringToSign).digest('hex');
    const headers: Record<string, string> = {
      'host': request.host,
      'content-type': request.contentType,
      'content-length': contentLength,
      'x-amz-content-sha256': request.payloadHash,
      'x-amz-date': longDate,
      'authorization': `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${key.credential}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    };
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    return headers;
  }

  /** `YYYYMMDDTHHMMSSZ`, recomputed once a second. */
  private longDate(now: number): string {
    const second = Math.floor(now / 1000);
    if (this.date?.second !== second) {
      this.date = { second, longDate: new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '') };
    }
    return this.date.longDate;
  }

  /**
   * The key derived from the secret for (date, region, service), and the credential scope, kept until
   * the credentials or the date change.
   */
  private signingKey(credentials: SigV4Credentials, shortDate: string) {
    const key = this.key;
    if (key && key.shortDate === shortDate && sameCredentials(key.credentials, credentials)) return key;
    let signingKey = createHmac('sha256', `AWS4${credentials.secretAccessKey}`).update(shortDate).digest();
    for (const part of [this.region, this.service, 'aws4_request']) signingKey = createHmac('sha256', signingKey).update(part).digest();
    this.key = {
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
      shortDate,
      token: credentials.sessionToken ? normalizeValue(credentials.sessionToken) : undefined,
      signingKey,
      credential: `${shortDate}/${this.region}/${this.service}/aws4_request`,
    };
    return this.key;
  }
}

const SIGNED_HEADERS = 'content-length;content-type;host;x-amz-content-sha256;x-amz-date';
const SIGNED_HEADERS_WITH_TOKEN = `${SIGNED_HEADERS};x-amz-security-token`;

/** RFC 3986 encoding, as SigV4 wants it: `encodeURIComponent` plus `!'()*`. */
export function escapeUri(text: string): string {
  const encoded = encodeURIComponent(text);
  return /[!'()*]/.test(encoded) ? encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : encoded;
}

/**
 * The canonical URI of `path` for every service but S3, as the SDK's signer computes it: empty and
 * `.` segments dropped, `..` resolved, then the path URI-encoded again with its slashes kept.
 */
export function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

function sameCredentials(a: SigV4Credentials, b: SigV4Credentials): boolean {
  return a.secretAccessKey === b.secretAccessKey && a.accessKeyId === b.accessKeyId && a.sessionToken === b.sessionToken;
}

/** A header value as SigV4 canonicalizes it: line breaks to spaces, runs of blanks to one, trimmed. */
function normalizeValue(value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}
