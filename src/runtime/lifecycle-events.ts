import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PresenceChange } from './channel-store';
import { Environment, optionalSetting } from './configuration';
import { Env, ObservabilityEnv } from './environment';
import { errorName, logEvent } from './log';
import { signedHeaders } from './secret-reader';

/** The `source` of every lifecycle event. */
export const LIFECYCLE_SOURCE = 'authenticated-websocket-api';

/** A connection opened or closed. */
export interface ConnectionChange {
  readonly event: 'connected' | 'disconnected';
  readonly connectionId: string;
  readonly userId?: string;
}

/** Where connection and presence changes go besides the channel's members. */
export interface LifecycleSink {
  presence(change: PresenceChange): Promise<void>;
  connection(change: ConnectionChange): Promise<void>;
}

/**
 * Puts lifecycle events on an EventBridge bus, so other services react without polling:
 * detail types `Connected`, `Disconnected` (`{apiId, connectionId, userId}`), `Joined` and `Left`
 * (`{apiId, channel, userId}`), source `authenticated-websocket-api`.
 *
 * One signed `PutEvents` request (SigV4 by the same 40 lines of node:crypto the authorizer uses,
 * checked against the SDK's signer) rather than the EventBridge SDK client, which would add about
 * 500 KB to the bundles of the connection and message handlers for one call. Best effort: a failure
 * is logged (`lifecycle_event_failed`) and never fails the connect, disconnect or subscribe.
 */
export class EventBridgeLifecycleSink implements LifecycleSink {
  constructor(private readonly busName: string, private readonly env: Environment, private readonly timeoutMs = 2_000) {}

  async presence(change: PresenceChange): Promise<void> {
    await this.put(change.event === 'joined' ? 'Joined' : 'Left', { channel: change.channel, userId: change.userId });
  }

  async connection(change: ConnectionChange): Promise<void> {
    await this.put(change.event === 'connected' ? 'Connected' : 'Disconnected', {
      connectionId: change.connectionId, ...(change.userId ? { userId: change.userId } : {}),
    });
  }

  private async put(detailType: string, detail: Record<string, string>): Promise<void> {
    try {
      const env = this.env;
      const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
      const accessKeyId = env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
      if (!region || !accessKeyId || !secretAccessKey) throw new Error('NO_CREDENTIALS');
      const endpoint = new URL(env.AWS_ENDPOINT_URL_EVENTBRIDGE ?? env.AWS_ENDPOINT_URL ?? `https://events.${region}.amazonaws.com`);
      const apiId = optionalSetting(env, ObservabilityEnv.API_ID);
      const body = JSON.stringify({
        Entries: [{
          Source: LIFECYCLE_SOURCE,
          DetailType: detailType,
          Detail: JSON.stringify({ ...(apiId ? { apiId } : {}), ...detail }),
          EventBusName: this.busName,
        }],
      });
      const headers = signedHeaders({
        method: 'POST',
        host: endpoint.host,
        path: endpoint.pathname || '/',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSEvents.PutEvents' },
        body,
        service: 'events',
        region,
        credentials: { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN },
        now: new Date(),
      });
      const { status, text } = await post(endpoint, headers, body, this.timeoutMs);
      const failed = status === 200 ? (JSON.parse(text) as { FailedEntryCount?: number }).FailedEntryCount ?? 0 : 1;
      if (status !== 200 || failed > 0) throw new Error(status !== 200 ? `HTTP_${status}` : 'FAILED_ENTRY');
    } catch (err) {
      logEvent('warn', 'lifecycle_event_failed', { detailType, error: err instanceof Error ? err.message : errorName(err) });
    }
  }
}

const sinks = new Map<string, LifecycleSink>();

/** The container's sink when the construct named a bus (`lifecycleEvents`), else undefined. */
export function lifecycleSinkFromEnvironment(env: Environment): LifecycleSink | undefined {
  const bus = optionalSetting(env, Env.LIFECYCLE_EVENT_BUS_NAME);
  if (!bus) return undefined;
  let sink = sinks.get(bus);
  if (!sink) {
    sink = new EventBridgeLifecycleSink(bus, env);
    sinks.set(bus, sink);
  }
  return sink;
}

function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const request = send(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', () => reject(new Error(signal.aborted ? 'TIMEOUT' : 'FETCH_FAILED')));
    request.end(body);
  });
}
