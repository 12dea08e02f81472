import { createHash, createHmac, Hash, Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, SourceData } from '@smithy/types';
import { PostTimeoutError, SignedConnectionsClient } from '../../src/runtime/signed-connections-client';
import { canonicalPath, SigV4Credentials, SigV4Signer } from '../../src/runtime/sigv4';
import { SIGV4_AUTHORIZATION, useDummyAwsEnvironment } from '../support/aws-environment';
import { ConnectionsServer } from '../support/connections-server';
import { expectedSignature, parseAuthorization } from '../support/sigv4';

const LONG_TERM: SigV4Credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const TEMPORARY: SigV4Credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'c2VjcmV0L3dpdGgrc2xhc2hlcz0=',
  sessionToken: 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+plus=',
};

beforeAll(() => useDummyAwsEnvironment());

describe('SigV4Signer signs exactly as @smithy/signature-v4 does', () => {
  const cases: Array<[string, string, SigV4Credentials, string, number]> = [
    ['a long-term key', 'L0SM9cOFvHcCIhw=', LONG_TERM, 'abc123.execute-api.eu-west-1.amazonaws.com', Date.UTC(2026, 10, 23, 1, 2, 3, 456)],
    ['a session token', 'ab+cd/efGHijkl0=', TEMPORARY, 'abc123.execute-api.eu-west-1.amazonaws.com', Date.UTC(2026, 0, 1, 0, 0, 0)],
    ['a local endpoint with a port', 'x!y*z(1)\'=+/', TEMPORARY, '127.0.0.1:4510', Date.UTC(2025, 11, 31, 23, 59, 59, 999)],
    ['a plain id', 'plainId01234567', LONG_TERM, 'abc123.execute-api.eu-west-1.amazonaws.com', Date.UTC(2026, 5, 15, 12, 0, 0)],
  ];

  test.each(cases)('with %s', async (_, connectionId, credentials, host, now) => {
    const body = Buffer.from(JSON.stringify({ message: 'Grüße', id: connectionId }));
    const payloadHash = createHash('sha256').update(body).digest('hex');
    const path = `/production/@connections/${encodeURIComponent(connectionId)}`;
    const ours = new SigV4Signer('eu-west-1', 'execute-api').sign({
      method: 'POST',
      host,
      canonicalPath: canonicalPath(path),
      contentType: 'application/json',
      contentLength: body.length,
      payloadHash,
    }, credentials, now);

    const [hostname, port] = host.split(':');
    const sdk = await new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Sha256 }).sign({
      method: 'POST',
      protocol: 'https:',
      hostname,
      port: port ? Number(port) : undefined,
      path,
      headers: { 'host': host, 'content-type': 'application/json', 'content-length': String(body.length), 'x-amz-content-sha256': payloadHash },
      query: {},
      body,
    }, { signingDate: new Date(now) });

    expect(ours.authorization).toBe(sdk.headers.authorization);
    expect(ours).toEqual(sdk.headers);
  });

  test('the derived key follows the date and the credentials', async () => {
    const signer = new SigV4Signer('us-east-1', 'execute-api');
    const request = { method: 'POST', host: 'h', canonicalPath: '/s/%40connections/a', contentType: 'application/json', contentLength: 1, payloadHash: 'e'.repeat(64) };
    const day = Date.UTC(2026, 10, 23, 23, 59, 59);
    const signatures = [
      signer.sign(request, LONG_TERM, day).authorization,
      signer.sign(request, LONG_TERM, day + 1_000).authorization, // the next day
      signer.sign(request, { ...LONG_TERM, secretAccessKey: 'rotated' }, day + 1_000).authorization,
      signer.sign(request, LONG_TERM, day).authorization, // back to the first: same as the first
    ];
    expect(new Set(signatures).size).toBe(3);
    expect(signatures[3]).toBe(signatures[0]);
    expect(signatures[1]).toContain('/20261124/us-east-1/execute-api/aws4_request');
  });
});

describe('SignedConnectionsClient', () => {
  let server: ConnectionsServer;
  beforeEach(async () => {
    server = await ConnectionsServer.start({ postLatencyMs: 1 });
  });
  afterEach(async () => {
    await server.stop();
  });

  test('with temporary credentials, sends the session token and a signature recomputed from the wire', async () => {
    const client = new SignedConnectionsClient({ endpoint: server.callbackUrl, region: 'us-east-1', credentials: async () => TEMPORARY });
    const ids = ['L0SM9cOFvHcCIhw=', 'ab+cd/efGHijkl0='];
    ids.forEach((id) => server.connect(id));
    for (const id of ids) expect(await client.post(id, Buffer.from('{"m":1}'), 1_000)).toEqual({ status: 200, errorType: undefined });
    client.destroy();
    expect(server.requests.map((r) => r.connectionId)).toEqual(ids);
    for (const request of server.requests) {
      expect(request.headers['x-amz-security-token']).toBe(TEMPORARY.sessionToken);
      expect(parseAuthorization(request.authorization!).signedHeaders).toContain('x-amz-security-token');
      expect(request.authorization).toMatch(SIGV4_AUTHORIZATION);
      const recomputed = expectedSignature({ ...request, body: request.body! }, TEMPORARY.secretAccessKey);
      expect(parseAuthorization(request.authorization!).signature).toBe(recomputed);
    }
  });

  test('fetches credentials once, and again when they come within 5 minutes of expiring', async () => {
    const fetched: AwsCredentialIdentity[] = [];
    const client = new SignedConnectionsClient({
      endpoint: server.callbackUrl,
      region: 'us-east-1',
      credentials: async () => {
        const credentials = { ...TEMPORARY, sessionToken: `token-${fetched.length}`, expiration: new Date(Date.now() + 60 * 60_000) };
        fetched.push(credentials);
        return credentials;
      },
    });
    server.connect('a');
    await Promise.all([1, 2, 3].map(() => client.post('a', Buffer.from('x'), 1_000)));
    expect(fetched).toHaveLength(1); // concurrent posts share one fetch
    await client.post('a', Buffer.from('x'), 1_000); // valid for an hour: no fetch
    expect(fetched).toHaveLength(1);
    fetched[0].expiration!.setTime(Date.now() + 4 * 60_000);
    await client.post('a', Buffer.from('x'), 1_000);
    expect(fetched).toHaveLength(2);
    client.destroy();
    expect(server.requests.map((r) => r.headers['x-amz-security-token'])).toEqual(['token-0', 'token-0', 'token-0', 'token-0', 'token-1']);
  });

  test('a credential failure rejects the post, and the next post asks again', async () => {
    let calls = 0;
    const client = new SignedConnectionsClient({
      endpoint: server.callbackUrl,
      region: 'us-east-1',
      credentials: async () => {
        calls += 1;
        if (calls === 1) throw new Error('CredentialsProviderError');
        return LONG_TERM;
      },
    });
    server.connect('a');
    await expect(client.post('a', Buffer.from('x'), 1_000)).rejects.toThrow('CredentialsProviderError');
    expect(await client.post('a', Buffer.from('x'), 1_000)).toEqual({ status: 200, errorType: undefined });
    client.destroy();
  });

  test('a hung post is destroyed at its timeout and rejects with PostTimeoutError', async () => {
    const client = new SignedConnectionsClient({ endpoint: server.callbackUrl, region: 'us-east-1' });
    server.connect('a');
    server.inject('a', 'hang', 1);
    const started = Date.now();
    const err = await client.post('a', Buffer.from('x'), 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PostTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    await server.idle();
    expect(server.postsAbandoned).toBe(1);
    expect(await client.post('a', Buffer.from('x'), 1_000)).toEqual({ status: 200, errorType: undefined });
    client.destroy();
  });
});

/** node:crypto's SHA-256 and HMAC-SHA-256 in the shape the SDK signer takes. */
class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256')
      : createHmac('sha256', typeof secret === 'string' ? secret : Buffer.from(ArrayBuffer.isView(secret) ? secret.buffer.slice(secret.byteOffset, secret.byteOffset + secret.byteLength) : secret));
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}
