import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ConfigurationError, Environment, optionalSetting, requiredSetting } from './configuration';
import { Env } from './environment';

/** The fields of a WebSocket event's requestContext that locate its API. */
export interface ApiLocation {
  readonly apiId?: string;
  readonly stage?: string;
}

/**
 * The @connections endpoint: CALLBACK_URL when the construct set it, else built from the API id,
 * region and stage. Never from `domainName`: behind a custom domain with a different base path,
 * `https://{domainName}/{stage}` answers 403 or "No method found".
 */
export function callbackUrl(location: ApiLocation, env: Environment): string {
  const configured = optionalSetting(env, Env.CALLBACK_URL);
  if (configured) return configured;
  if (!location.apiId || !location.stage) throw new ConfigurationError('The event has no apiId or stage to build the @connections endpoint from');
  const region = requiredSetting(env, 'AWS_REGION');
  return `https://${location.apiId}.execute-api.${region}.amazonaws.com/${location.stage}`;
}

const clients = new Map<string, ApiGatewayManagementApiClient>();

/**
 * The container's SDK client for the @connections endpoint of `location`, created on first use
 * (the fan-out posts with its own signed transport; this client serves GET and DELETE).
 * @param maxSockets sockets the client may open at once, when it is created: the SDK's default agent
 * stops at 50, which would silently cap callers that run more requests at once.
 */
export function connectionsApiClient(location: ApiLocation, env: Environment, maxSockets?: number): ApiGatewayManagementApiClient {
  const endpoint = callbackUrl(location, env);
  let client = clients.get(endpoint);
  if (!client) {
    client = new ApiGatewayManagementApiClient({
      endpoint,
      ...(maxSockets !== undefined ? { requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } } } : {}),
    });
    clients.set(endpoint, client);
  }
  return client;
}
