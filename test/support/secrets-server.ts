import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGV4_AUTHORIZATION } from './aws-environment';

/**
 * Secrets Manager's JSON protocol, GetSecretValue only: POST `/` with
 * `X-Amz-Target: secretsmanager.GetSecretValue`, answered in `application/x-amz-json-1.1`.
 * Counts calls so tests can prove the authorizer caches the secret.
 */
export class SecretsServer {
  static async start(): Promise<SecretsServer> {
    const server = new SecretsServer();
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** GetSecretValue calls received, answered or not. */
  calls = 0;
  /** SecretIds asked for, in order. */
  readonly requestedIds: string[] = [];
  /** Authorization headers received, in order. */
  readonly authorizations: (string | undefined)[] = [];

  private readonly http = createServer((req, res) => this.handle(req, res));
  private readonly secrets = new Map<string, string>();
  private outage = false;

  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_SECRETS_MANAGER. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Stores a secret under its ARN and returns the ARN. */
  put(name: string, secretString: string): string {
    const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
    this.secrets.set(arn, secretString);
    return arn;
  }

  /** While on, every call fails with a 5xx (the SDK's own retries included), as during an outage. */
  setOutage(on: boolean): void {
    this.outage = on;
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') {
        return reply(res, 400, { __type: 'UnknownOperationException', message: 'Unsupported operation' });
      }
      this.calls += 1;
      this.authorizations.push(req.headers.authorization);
      if (!SIGV4_AUTHORIZATION.test(req.headers.authorization ?? '')) {
        return reply(res, 400, { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
      }
      const { SecretId } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId: string };
      this.requestedIds.push(SecretId);
      if (this.outage) {
        return reply(res, 500, { __type: 'InternalServiceError', message: 'Injected by the test' });
      }
      const secretString = this.secrets.get(SecretId);
      if (secretString === undefined) {
        return reply(res, 400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
      }
      reply(res, 200, { ARN: SecretId, Name: SecretId.split(':').pop(), SecretString: secretString, VersionId: 'v1', VersionStages: ['AWSCURRENT'] });
    });
  }
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(body));
}
