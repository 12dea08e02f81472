import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecretModel } from './assembly';

/**
 * The one Secrets Manager call handlers make at runtime, `GetSecretValue`, over the service's JSON
 * protocol (`X-Amz-Target: secretsmanager.GetSecretValue`), so the AWS SDK works unchanged through
 * AWS_ENDPOINT_URL_SECRETS_MANAGER. Every secret has the same value: the gateway's `--secret`.
 */
export interface LocalSecretsManager {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function startSecretsManager(
  secrets: readonly SecretModel[],
  value: string,
  host: string,
  log: (line: string) => void,
): Promise<LocalSecretsManager> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const reply = (statusCode: number, payload: Record<string, unknown>) => {
        const text = JSON.stringify(payload);
        response.writeHead(statusCode, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(text) });
        response.end(text);
      };
      const target = String(request.headers['x-amz-target'] ?? '');
      if (target !== 'secretsmanager.GetSecretValue') {
        log(`secretsmanager: ${target || 'a request without X-Amz-Target'} is not served locally`);
        return reply(400, { __type: 'UnknownOperationException', message: `authws local serves GetSecretValue only, not ${target}` });
      }
      let secretId = '';
      try {
        secretId = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: unknown }).SecretId ?? '');
      } catch {
        return reply(400, { __type: 'SerializationException', message: 'The request body is not JSON' });
      }
      // A secret of the template by ARN or name; an imported secret is answered too, with the same value.
      const secret = secrets.find((candidate) => candidate.arn === secretId || candidate.name === secretId);
      if (!secret) log(`secretsmanager: ${secretId} is not a secret of the assembly; answering with the --secret value`);
      const name = secret?.name ?? secretId.replace(/^arn:[^:]+:secretsmanager:[^:]+:[^:]+:secret:/, '');
      const arn = secret?.arn ?? (secretId.startsWith('arn:') ? secretId : `arn:aws:secretsmanager:us-east-1:000000000000:secret:${secretId}`);
      return reply(200, {
        ARN: arn,
        Name: name,
        VersionId: '00000000-0000-0000-0000-000000000001',
        SecretString: value,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: Math.floor(Date.now() / 1000),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    endpoint: `http://${host}:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
