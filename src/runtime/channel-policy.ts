import { ChannelName, isSegment, WILDCARD } from './channel-names';

/**
 * Who may do something, as the construct's `Access` factories describe it. Decided from the
 * connection's verified user id and claims only.
 */
export type AccessPolicy =
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'none' }
  /** The claim has one of the values. */
  | { readonly kind: 'claim'; readonly claim: string; readonly values: readonly string[] }
  /** The rule's authorizer function decides. */
  | { readonly kind: 'function' };

/** What a rule keeps of a channel's messages. */
export interface HistoryConfig {
  /** The last this many messages. */
  readonly size: number;
  /** Kept at most this long. */
  readonly maxAgeSeconds: number;
}

/** One channel rule as the construct passes it to the handlers. */
export interface ChannelRuleConfig {
  /** `rooms/*`, `users/${userId}`, `tenants/${claim:tenant}/*`: whole-segment placeholders only. */
  readonly pattern: string;
  readonly subscribe: AccessPolicy;
  readonly publish: AccessPolicy;
  /** Members get joined/left events and may ask for the member list. */
  readonly presence?: boolean;
  readonly history?: HistoryConfig;
  /** Subscriptions to `<prefix>/*` are allowed where the pattern has a `*` there. */
  readonly wildcardSubscriptions?: boolean;
  /** Name or ARN of the function that decides `function` policies. */
  readonly authorizer?: string;
  /** Seconds a decision of the authorizer function is kept by the container. */
  readonly authorizerCacheSeconds?: number;
}

/** Everything the handlers know about channels and the built-in actions. */
export interface ChannelsConfig {
  readonly rules: readonly ChannelRuleConfig[];
  /** Policies of the built-in client actions. */
  readonly actions: { readonly broadcast: AccessPolicy; readonly send: AccessPolicy };
}

/** The caller, as the registry knows it. */
export interface ChannelUser {
  readonly userId: string;
  readonly claims: Readonly<Record<string, string>>;
}

/** A rule that matched, and its position (the id wildcard subscriptions are checked against). */
export interface MatchedRule {
  readonly rule: ChannelRuleConfig;
  readonly index: number;
}

const USER_ID = '${userId}';
const CLAIM = /^\$\{claim:([A-Za-z0-9_:.-]+)\}$/;

/** A config with no rules and open built-in actions: the behaviour without any channel props. */
export const OPEN_CONFIG: ChannelsConfig = { rules: [], actions: { broadcast: { kind: 'authenticated' }, send: { kind: 'authenticated' } } };

/**
 * Checks a rule pattern: each segment a channel segment, `*`, `${userId}` or `${claim:name}`.
 * Returns what is wrong, or undefined. Shared with the construct, which refuses bad patterns at synth.
 */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.length > 128) return 'a pattern is 1 to 128 characters';
  const segments = pattern.split('/');
  if (segments.length > 8) return 'a pattern has at most 8 segments';
  for (const segment of segments) {
    if (segment === WILDCARD || segment === USER_ID || CLAIM.test(segment) || isSegment(segment)) continue;
    if (segment.includes('${')) return `"${segment}" is not a placeholder; use a whole segment \${userId} or \${claim:<name>}`;
    return `"${segment}" is not a valid segment; segments are letters, digits and _ - . : @ =, "*", \${userId} or \${claim:<name>}`;
  }
  return undefined;
}

/**
 * The first rule whose pattern matches `channel` for `user`, or undefined (nothing matches: refused).
 *
 * Placeholders are substituted with the caller's own values and compared as whole literal segments,
 * so a value that is not itself a valid segment (one holding `/`, `*`, `..`, `${`, or empty) matches
 * nothing: a crafted claim can never widen a pattern. A subscription's `*` matches only a `*` of the
 * pattern, and only when the rule allows wildcard subscriptions.
 */
export function matchRule(rules: readonly ChannelRuleConfig[], channel: ChannelName, user: ChannelUser): MatchedRule | undefined {
  for (let index = 0; index < rules.length; index++) {
    if (matches(rules[index], channel, user)) return { rule: rules[index], index };
  }
  return undefined;
}

function matches(rule: ChannelRuleConfig, channel: ChannelName, user: ChannelUser): boolean {
  const pattern = rule.pattern.split('/');
  if (pattern.length !== channel.segments.length) return false;
  return pattern.every((expected, i) => {
    const actual = channel.segments[i];
    if (actual === WILDCARD) return expected === WILDCARD && rule.wildcardSubscriptions === true;
    if (expected === WILDCARD) return true;
    const substitute = substitution(expected, user);
    if (substitute !== undefined) return substitute !== null && isSegment(substitute) && actual === substitute;
    return actual === expected;
  });
}

/** The caller's value for a placeholder segment (null: the caller has none), or undefined for a literal. */
function substitution(segment: string, user: ChannelUser): string | null | undefined {
  if (segment === USER_ID) return user.userId;
  const claim = CLAIM.exec(segment);
  if (claim) return Object.prototype.hasOwnProperty.call(user.claims, claim[1]) ? user.claims[claim[1]] : null;
  return undefined;
}

/** Whether `policy` lets `user` act; `function` policies answer 'ask' (the caller asks the rule's function). */
export function evaluate(policy: AccessPolicy, user: ChannelUser): 'allow' | 'deny' | 'ask' {
  switch (policy.kind) {
    case 'authenticated':
      return 'allow';
    case 'none':
      return 'deny';
    case 'claim': {
      const has = Object.prototype.hasOwnProperty.call(user.claims, policy.claim);
      return has && policy.values.includes(user.claims[policy.claim]) ? 'allow' : 'deny';
    }
    case 'function':
      return 'ask';
  }
}

/** Parses the CHANNELS_CONFIG setting (JSON the construct wrote). */
export function parseChannelsConfig(text: string | undefined): ChannelsConfig {
  if (!text) return OPEN_CONFIG;
  const parsed = JSON.parse(text) as Partial<ChannelsConfig>;
  return {
    rules: parsed.rules ?? [],
    actions: { ...OPEN_CONFIG.actions, ...(parsed.actions ?? {}) },
  };
}
