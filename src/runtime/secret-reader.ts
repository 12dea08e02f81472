import { AwsCallError, callAwsJson } from './aws-json-call';
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
  let status: number;
  let text: string;
  try {
    ({ status, text } = await callAwsJson(options.env, {
      service: 'secretsmanager',
      hostPrefix: 'secretsmanager',
      endpointVariable: 'AWS_ENDPOINT_URL_SECRETS_MANAGER',
      target: 'secretsmanager.GetSecretValue',
      body: JSON.stringify({ SecretId: secretId }),
      timeoutMs: options.timeoutMs ?? 3_000,
    }));
  } catch (err) {
    throw err instanceof AwsCallError ? new KeyUnavailableError(err.code) : err;
  }
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

export { signedHeaders } from './aws-json-call';
