import { coveringWildcard, parseChannelName } from '../../src/runtime/channel-names';
import { ChannelRuleConfig, ChannelUser, evaluate, matchRule, patternProblem } from '../../src/runtime/channel-policy';

const open = { kind: 'authenticated' } as const;
const rule = (pattern: string, extra: Partial<ChannelRuleConfig> = {}): ChannelRuleConfig => ({ pattern, subscribe: open, publish: open, ...extra });
const alice: ChannelUser = { userId: 'alice', claims: { tenant: 'acme', role: 'admin' } };

function nameProblem(value: unknown, wildcard = false): string | undefined {
  try {
    parseChannelName(value, wildcard);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('channel names', () => {
  test.each(['rooms/lobby', 'a', 'tenants/acme/feed', 'x_y-z.1:2@3=4/b', 'a/b/c/d/e/f/g/h', 'r'.repeat(128)])('accepts %s', (name) => {
    expect(nameProblem(name)).toBeUndefined();
  });

  test.each([
    ['empty', '', /non-empty/],
    ['not a string', 42, /non-empty string/],
    ['129 characters', 'r'.repeat(129), /129 characters/],
    ['nine segments', 'a/b/c/d/e/f/g/h/i', /9 segments/],
    ['an empty segment', 'rooms//a', /empty segment/],
    ['a leading slash', '/rooms', /empty segment/],
    ['a trailing slash', 'rooms/', /empty segment/],
    ['a dot-dot segment', 'rooms/../users/bob', /"\.\."/],
    ['a dot segment', 'rooms/./a', /"\."/],
    ['a space', 'rooms/a b', /letters, digits/],
    ['a placeholder', 'users/${userId}', /letters, digits/],
    ['a wildcard in a publish', 'rooms/*', /subscriptions only/],
  ])('refuses %s', (_case, name, problem) => {
    expect(nameProblem(name)).toMatch(problem);
  });

  test('a subscription may end in * but not have it elsewhere or alone', () => {
    expect(parseChannelName('rooms/*', true)).toEqual({ name: 'rooms/*', segments: ['rooms', '*'], wildcard: true });
    expect(nameProblem('*/a', true)).toMatch(/last segment/);
    expect(nameProblem('*', true)).toMatch(/"\*" alone/);
    expect(nameProblem('rooms/a*', true)).toMatch(/letters, digits/);
  });

  test('the wildcard covering a channel replaces its last segment', () => {
    expect(coveringWildcard(parseChannelName('rooms/a'))).toBe('rooms/*');
    expect(coveringWildcard(parseChannelName('rooms'))).toBeUndefined();
  });
});

describe('rule patterns', () => {
  test.each(['rooms/*', 'users/${userId}', 'tenants/${claim:tenant}/*', 'orders/*/items'])('accepts %s', (pattern) => {
    expect(patternProblem(pattern)).toBeUndefined();
  });
  test.each([
    ['a partial placeholder', 'users/u-${userId}', /not a placeholder/],
    ['an unknown placeholder', 'users/${user}', /not a placeholder/],
    ['an empty segment', 'rooms//a', /not a valid segment/],
    ['a dot-dot segment', 'rooms/..', /not a valid segment/],
    ['too deep', 'a/b/c/d/e/f/g/h/i', /8 segments/],
  ])('refuses %s', (_case, pattern, problem) => {
    expect(patternProblem(pattern)).toMatch(problem);
  });
});

describe('matchRule', () => {
  const rules = [
    rule('users/${userId}'),
    rule('tenants/${claim:tenant}/*', { wildcardSubscriptions: true }),
    rule('rooms/*'),
  ];
  const match = (channel: string, user = alice, wildcard = false) => matchRule(rules, parseChannelName(channel, wildcard), user)?.index;

  test('literal segments and * match one segment each', () => {
    expect(match('rooms/lobby')).toBe(2);
    expect(match('rooms/lobby/extra')).toBeUndefined();
    expect(match('rooms')).toBeUndefined();
  });

  test('${userId} matches the caller\'s own id only', () => {
    expect(match('users/alice')).toBe(0);
    expect(match('users/bob')).toBeUndefined();
  });

  test('${claim:x} matches the caller\'s claim value only, and nothing when the claim is missing', () => {
    expect(match('tenants/acme/feed')).toBe(1);
    expect(match('tenants/globex/feed')).toBeUndefined();
    expect(match('tenants/acme/feed', { userId: 'carol', claims: {} })).toBeUndefined();
  });

  test.each([
    ['a slash', 'acme/feed'],
    ['a star', '*'],
    ['dot-dot', '..'],
    ['a placeholder', '${userId}'],
    ['empty', ''],
  ])('a claim value holding %s never matches or widens', (_case, tenant) => {
    const crafted = { userId: 'mallory', claims: { tenant } };
    for (const channel of ['tenants/acme/feed', 'tenants/acme/*', 'tenants/x/feed']) {
      expect(matchRule(rules.slice(0, 2), parseChannelName(channel, true), crafted)).toBeUndefined();
    }
  });

  test('a crafted user id cannot reach another user\'s feed', () => {
    for (const userId of ['bob/..', '*', 'users/bob', '..']) {
      expect(match('users/bob', { userId, claims: {} })).toBeUndefined();
    }
  });

  test('a wildcard subscription matches only a rule that allows it', () => {
    expect(match('tenants/acme/*', alice, true)).toBe(1);
    expect(match('rooms/*', alice, true)).toBeUndefined(); // rooms/* does not allow wildcard subscriptions
    expect(match('users/*', alice, true)).toBeUndefined(); // ${userId} never matches *
  });

  test('the first matching rule decides', () => {
    const ordered = [rule('rooms/secret', { subscribe: { kind: 'none' } }), rule('rooms/*')];
    expect(matchRule(ordered, parseChannelName('rooms/secret'), alice)?.index).toBe(0);
    expect(matchRule(ordered, parseChannelName('rooms/open'), alice)?.index).toBe(1);
  });
});

describe('evaluate', () => {
  test('authenticated allows, none denies, function asks', () => {
    expect(evaluate({ kind: 'authenticated' }, alice)).toBe('allow');
    expect(evaluate({ kind: 'none' }, alice)).toBe('deny');
    expect(evaluate({ kind: 'function' }, alice)).toBe('ask');
  });
  test('claim allows one of the values only', () => {
    expect(evaluate({ kind: 'claim', claim: 'role', values: ['admin', 'ops'] }, alice)).toBe('allow');
    expect(evaluate({ kind: 'claim', claim: 'role', values: ['ops'] }, alice)).toBe('deny');
    expect(evaluate({ kind: 'claim', claim: 'missing', values: ['admin'] }, alice)).toBe('deny');
    expect(evaluate({ kind: 'claim', claim: 'toString', values: ['admin'] }, { userId: 'x', claims: {} })).toBe('deny');
  });
});
