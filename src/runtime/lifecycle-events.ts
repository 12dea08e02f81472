import type { PresenceChange } from './channel-store';
import type { LifecycleSink } from './channels';
import { Environment } from './configuration';

/** No lifecycle bus configured yet: presence changes reach the channel's members only. */
export function lifecycleSinkFromEnvironment(_env: Environment): LifecycleSink | undefined {
  return undefined;
}

export type { PresenceChange };
