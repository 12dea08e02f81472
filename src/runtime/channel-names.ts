/**
 * Channel names: `rooms/lobby`, `tenants/acme/feed`. 1-128 characters of `/`-separated segments
 * of `[A-Za-z0-9_\-.:@=]`, at most 8 segments, none empty, `.` or `..`. A subscription may end in a
 * `*` segment (`rooms/*`: exactly one more segment) where a rule allows it.
 */

export const MAX_CHANNEL_LENGTH = 128;
export const MAX_CHANNEL_SEGMENTS = 8;
export const WILDCARD = '*';

const SEGMENT = /^[A-Za-z0-9_\-.:@=]+$/;

/** Whether `value` may stand as one whole segment of a channel name. */
export function isSegment(value: string): boolean {
  return SEGMENT.test(value) && value !== '.' && value !== '..';
}

/** A channel name is refused; the message says what to change. */
export class ChannelNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelNameError';
  }
}

/** A checked channel name (concrete, or a subscription ending in `*`). */
export interface ChannelName {
  readonly name: string;
  readonly segments: readonly string[];
  /** Ends in `*`. */
  readonly wildcard: boolean;
}

/**
 * Checks `value` as a channel name; with `allowWildcard`, a last segment `*` is accepted (a
 * subscription). Throws ChannelNameError saying what is wrong.
 */
export function parseChannelName(value: unknown, allowWildcard = false): ChannelName {
  if (typeof value !== 'string' || value.length === 0) throw new ChannelNameError('"channel" must be a non-empty string, e.g. "rooms/lobby".');
  if (value.length > MAX_CHANNEL_LENGTH) throw new ChannelNameError(`The channel name is ${value.length} characters; the limit is ${MAX_CHANNEL_LENGTH}.`);
  const segments = value.split('/');
  if (segments.length > MAX_CHANNEL_SEGMENTS) throw new ChannelNameError(`The channel name has ${segments.length} segments; the limit is ${MAX_CHANNEL_SEGMENTS}.`);
  segments.forEach((segment, index) => {
    if (segment === WILDCARD) {
      if (!allowWildcard) throw new ChannelNameError('"*" is allowed in subscriptions only, not in a channel one publishes to or asks about.');
      if (index !== segments.length - 1) throw new ChannelNameError('"*" is allowed as the last segment only, e.g. "rooms/*".');
      if (index === 0) throw new ChannelNameError('A subscription to "*" alone is not allowed; name at least one segment before it, e.g. "rooms/*".');
      return;
    }
    if (segment.length === 0) throw new ChannelNameError('The channel name has an empty segment (a leading, trailing or doubled "/").');
    if (segment === '.' || segment === '..') throw new ChannelNameError('The channel name may not have a "." or ".." segment.');
    if (!SEGMENT.test(segment)) throw new ChannelNameError('Channel segments are letters, digits and _ - . : @ = only.');
  });
  return { name: value, segments, wildcard: segments[segments.length - 1] === WILDCARD };
}

/**
 * The wildcard subscription that covers a concrete channel (`rooms/a` -> `rooms/*`), or undefined
 * for a one-segment channel (no subscription to `*` alone exists).
 */
export function coveringWildcard(channel: ChannelName): string | undefined {
  if (channel.wildcard || channel.segments.length < 2) return undefined;
  return [...channel.segments.slice(0, -1), WILDCARD].join('/');
}
