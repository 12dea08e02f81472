import { callAwsJson } from './aws-json-call';
import type { PresenceChange } from './channel-store';
import { Environment, optionalSetting } from './configuration';
import { Env, ObservabilityEnv } from './environment';
import { errorName, logEvent } from './log';

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
      const apiId = optionalSetting(this.env, ObservabilityEnv.API_ID);
      const body = JSON.stringify({
        Entries: [{
          Source: LIFECYCLE_SOURCE,
          DetailType: detailType,
          Detail: JSON.stringify({ ...(apiId ? { apiId } : {}), ...detail }),
          EventBusName: this.busName,
        }],
      });
      const { status, text } = await callAwsJson(this.env, {
        service: 'events',
        hostPrefix: 'events',
        endpointVariable: 'AWS_ENDPOINT_URL_EVENTBRIDGE',
        target: 'AWSEvents.PutEvents',
        body,
        timeoutMs: this.timeoutMs,
      });
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
