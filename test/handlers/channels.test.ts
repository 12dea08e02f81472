import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { ChannelsConfig, ChannelRuleConfig } from '../../src/runtime/channel-policy';
import { connectionRow, ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults, Env, ObservabilityEnv } from '../../src/runtime/environment';
import { WebSocketEvent } from '../../src/runtime/websocket-event';
import { SIGV4_AUTHORIZATION } from '../support/aws-environment';
import { channelsTableInput } from '../support/channels-table';
import { ConnectionsServer } from '../support/connections-server';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { useLocalDynamo } from '../support/dynalite';
import { LambdaServer } from '../support/lambda-server';
import { SqsServer } from '../support/sqs-server';
import { authorizedAs, newConnectionId, routeEvent } from '../support/websocket-events';

type Handler = (event: WebSocketEvent) => Promise<{ statusCode: number }>;
type Publisher = (event: unknown) => Promise<Record<string, any>>;

const dynamo = useLocalDynamo();
let server: ConnectionsServer;
let output: CapturedConsole;
let tables = 0;

beforeEach(async () => {
  server = await ConnectionsServer.start({ postLatencyMs: 1 });
  output = captureConsole();
});

afterEach(async () => {
  output.restore();
  await server.stop();
});

const open = { kind: 'authenticated' } as const;
const rule = (pattern: string, extra: Partial<ChannelRuleConfig> = {}): ChannelRuleConfig => ({ pattern, subscribe: open, publish: open, ...extra });

const CHAT_RULES: ChannelRuleConfig[] = [
  rule('rooms/*', { presence: true, history: { size: 5, maxAgeSeconds: 3600 }, wildcardSubscriptions: true }),
  rule('users/${userId}', { publish: { kind: 'none' } }),
  rule('tenants/${claim:tenant}/*', { publish: { kind: 'claim', claim: 'role', values: ['admin'] } }),
];

/**
 * An API with fresh registry and channels tables and freshly loaded message and connection handlers
 * (new Lambda containers), configured the way the construct configures them.
 */
class Api {
  static async start(config: Partial<ChannelsConfig> = {}, settings: Record<string, string> = {}): Promise<Api> {
    const n = ++tables;
    const registry = await dynamo.createRegistryTable(`registry-${n}`);
    const channels = `channels-${n}`;
    await dynamo.client.send(new CreateTableCommand(channelsTableInput(channels)));
    Object.assign(process.env, {
      [Env.TABLE_NAME]: registry,
      [Env.USER_INDEX_NAME]: 'byUser',
      [Env.CHANNELS_TABLE_NAME]: channels,
      [Env.CHANNELS_CONFIG]: JSON.stringify({ rules: CHAT_RULES, ...config }),
      [Env.CALLBACK_URL]: server.callbackUrl,
      [Env.FANOUT_CONCURRENCY]: '20',
      [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
      [Env.CLIENT_FANOUT_RATE_LIMIT]: '100',
      ...settings,
    });
    let message: Handler | undefined;
    let connection: Handler | undefined;
    let publisher: Publisher | undefined;
    jest.isolateModules(() => {
      message = jest.requireActual('../../src/handlers/message.lambda').handler;
      connection = jest.requireActual('../../src/handlers/connection.lambda').handler;
      publisher = jest.requireActual('../../src/handlers/publisher.lambda').handler;
    });
    return new Api(registry, channels, message!, connection!, publisher!);
  }

  private readonly store: ConnectionStore;
  private readonly users = new Map<string, { userId: string; claims: Record<string, string> }>();

  private constructor(
    readonly registry: string, readonly channels: string,
    private readonly message: Handler, private readonly connection: Handler, readonly publish: Publisher,
  ) {
    this.store = new ConnectionStore({ client: dynamo.client, tableName: registry });
  }

  /** A connection of `userId` with these verified claims: its registry row and its live socket. */
  async connect(userId: string, claims: Record<string, string> = {}): Promise<string> {
    const connectionId = newConnectionId();
    await this.store.register(connectionRow({ connectionId, connectedAt: Date.now() }, { userId, claims }, Defaults.CONNECTION_TTL_SECONDS));
    server.connect(connectionId);
    this.users.set(connectionId, { userId, claims });
    return connectionId;
  }

  /** A frame from `connectionId`; `context` overrides what the authorizer context says (the registry stays). */
  async frame(connectionId: string, frame: object | string, context: Record<string, string> = {}): Promise<void> {
    const user = this.users.get(connectionId)!;
    const body = typeof frame === 'string' ? frame : JSON.stringify(frame);
    expect(await this.message(routeEvent('MESSAGE', connectionId, authorizedAs(user.userId, { ...user.claims, ...context }), body))).toEqual({ statusCode: 200 });
  }

  /** A `$connect` or `$disconnect` as API Gateway delivers it, after the authorizer allowed `userId`. */
  async connectionEvent(type: 'CONNECT' | 'DISCONNECT', connectionId: string, userId: string): Promise<{ statusCode: number }> {
    if (type === 'CONNECT') this.users.set(connectionId, { userId, claims: {} });
    return this.connection(routeEvent(type, connectionId, authorizedAs(userId)));
  }

  async disconnect(connectionId: string): Promise<void> {
    server.disconnect(connectionId);
    const user = this.users.get(connectionId)!;
    expect(await this.connection(routeEvent('DISCONNECT', connectionId, authorizedAs(user.userId)))).toEqual({ statusCode: 200 });
  }

  async subscriptionItems(connectionId: string): Promise<number> {
    const { Items } = await dynamo.client.send(new QueryCommand({
      TableName: this.channels, IndexName: 'byConnection', KeyConditionExpression: 'connectionId = :c', ExpressionAttributeValues: { ':c': { S: connectionId } },
    }));
    return Items?.length ?? 0;
  }
}

const frames = (connectionId: string) => server.received(connectionId).map((frame) => JSON.parse(frame));
/** The frames but presence events. */
const answers = (connectionId: string) => frames(connectionId).filter((f) => !('presence' in f && 'channel' in f && !('action' in f)));
const take = (connectionId: string) => {
  const seen = frames(connectionId);
  server.received(connectionId).length = 0;
  return seen;
};

describe('subscribe, publish, unsubscribe', () => {
  test('subscribers of a room receive its messages with increasing ids; another room hears nothing', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    const bob = await api.connect('bob');
    const carol = await api.connect('carol');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/lobby', requestId: 'r1' });
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/lobby' });
    await api.frame(carol, { action: 'subscribe', channel: 'rooms/other' });
    expect(take(alice)[0]).toEqual({ action: 'subscribed', channel: 'rooms/lobby', requestId: 'r1' });
    expect(take(bob)[0]).toEqual({ action: 'subscribed', channel: 'rooms/lobby' });
    take(carol);

    await api.frame(bob, { action: 'publish', channel: 'rooms/lobby', message: { text: 'hi' }, requestId: 'p1' });
    await api.frame(alice, { action: 'publish', channel: 'rooms/lobby', message: 'second' });

    expect(frames(alice).filter((f) => 'message' in f)).toEqual([
      { channel: 'rooms/lobby', message: { text: 'hi' }, sender: 'bob', id: 1 },
      { channel: 'rooms/lobby', message: 'second', sender: 'alice', id: 2 },
    ]);
    expect(frames(bob)).toContainEqual({ action: 'published', channel: 'rooms/lobby', id: 1, requestId: 'p1' });
    // The publisher hears the id before the fan-out runs, so before its own copy of the message.
    expect(frames(bob).findIndex((f) => f.action === 'published')).toBeLessThan(frames(bob).findIndex((f) => f.id === 1 && 'message' in f));
    expect(frames(bob)).toContainEqual({ channel: 'rooms/lobby', message: 'second', sender: 'alice', id: 2 });
    expect(frames(carol)).toEqual([]);
  });

  test('subscribing twice is idempotent: acked again, one delivery per message', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(alice, { action: 'publish', channel: 'rooms/a', message: 1 });
    expect(frames(alice).filter((f) => f.action === 'subscribed')).toHaveLength(2);
    expect(frames(alice).filter((f) => f.id === 1 && 'message' in f)).toHaveLength(1);
  });

  test('after unsubscribe, nothing more arrives', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    const bob = await api.connect('bob');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(alice, { action: 'unsubscribe', channel: 'rooms/a', requestId: 'u1' });
    expect(frames(alice)).toContainEqual({ action: 'unsubscribed', channel: 'rooms/a', requestId: 'u1' });
    take(alice);
    await api.frame(bob, { action: 'publish', channel: 'rooms/a', message: 'hello?' });
    expect(frames(alice)).toEqual([]);
  });

  test('a wildcard subscription receives every room of its rule, not other rules\' channels', async () => {
    const api = await Api.start();
    const watcher = await api.connect('watcher', { tenant: 'acme' });
    const bob = await api.connect('bob', { tenant: 'acme', role: 'admin' });
    await api.frame(watcher, { action: 'subscribe', channel: 'rooms/*', requestId: 'w' });
    expect(take(watcher)).toEqual([{ action: 'subscribed', channel: 'rooms/*', requestId: 'w' }]);
    await api.frame(bob, { action: 'publish', channel: 'rooms/a', message: 'a' });
    await api.frame(bob, { action: 'publish', channel: 'rooms/b', message: 'b' });
    await api.frame(bob, { action: 'publish', channel: 'tenants/acme/news', message: 'not for rooms/*' });
    expect(frames(watcher)).toEqual([
      { channel: 'rooms/a', message: 'a', sender: 'bob', id: 1 },
      { channel: 'rooms/b', message: 'b', sender: 'bob', id: 1 },
    ]);
  });
});

describe('authorization', () => {
  test('a private feed: its owner subscribes, nobody (owner included) may publish, another user is refused', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    const bob = await api.connect('bob');
    await api.frame(alice, { action: 'subscribe', channel: 'users/alice' });
    expect(take(alice)).toEqual([{ action: 'subscribed', channel: 'users/alice' }]);
    await api.frame(bob, { action: 'subscribe', channel: 'users/alice', requestId: 'r7' });
    expect(take(bob)).toEqual([{ error: { code: 'Forbidden', message: expect.stringMatching(/No channel rule/) }, action: 'subscribe', channel: 'users/alice', requestId: 'r7' }]);
    await api.frame(alice, { action: 'publish', channel: 'users/alice', message: 'x' });
    expect(take(alice)[0].error.code).toBe('Forbidden');
  });

  test.each([
    ['a dot-dot escape', 'rooms/../users/bob', 'BadRequest'],
    ['a wildcard over other users\' feeds', 'users/*', 'Forbidden'],
    ['an encoded slash', 'users%2Fbob', 'BadRequest'],
  ])('%s is refused with an error frame', async (_case, channel, code) => {
    const api = await Api.start();
    const mallory = await api.connect('mallory');
    await api.frame(mallory, { action: 'subscribe', channel, requestId: 'x' });
    expect(take(mallory)).toEqual([{ error: { code, message: expect.any(String) }, action: 'subscribe', channel, requestId: 'x' }]);
  });

  test('claims come from the registry, not from what the request context or the frame says', async () => {
    const api = await Api.start();
    const mallory = await api.connect('mallory', { tenant: 'evil' });
    await api.frame(mallory, { action: 'subscribe', channel: 'tenants/acme/feed', claims: { tenant: 'acme' } }, { tenant: 'acme' });
    expect(take(mallory)[0].error.code).toBe('Forbidden');
    await api.frame(mallory, { action: 'subscribe', channel: 'tenants/evil/feed' });
    expect(take(mallory)[0].action).toBe('subscribed');
  });

  test('a crafted claim value holding a slash matches no tenant channel', async () => {
    const api = await Api.start();
    const mallory = await api.connect('mallory', { tenant: 'acme/feed' });
    await api.frame(mallory, { action: 'subscribe', channel: 'tenants/acme/feed' });
    expect(take(mallory)[0].error.code).toBe('Forbidden');
  });

  test('publish needs the claim the rule names', async () => {
    const api = await Api.start();
    const admin = await api.connect('admin', { tenant: 'acme', role: 'admin' });
    const member = await api.connect('member', { tenant: 'acme', role: 'member' });
    await api.frame(admin, { action: 'subscribe', channel: 'tenants/acme/news' });
    await api.frame(member, { action: 'publish', channel: 'tenants/acme/news', message: 'no', requestId: 'm' });
    expect(take(member)).toEqual([{ error: { code: 'Forbidden', message: expect.any(String) }, action: 'publish', channel: 'tenants/acme/news', requestId: 'm' }]);
    await api.frame(admin, { action: 'publish', channel: 'tenants/acme/news', message: 'yes' });
    expect(frames(admin)).toContainEqual({ channel: 'tenants/acme/news', message: 'yes', sender: 'admin', id: 1 });
  });

  test('a channel no rule matches is refused', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'publish', channel: 'secret/plans', message: 'x' });
    expect(take(alice)[0]).toMatchObject({ error: { code: 'Forbidden' }, action: 'publish', channel: 'secret/plans' });
  });

  test('broadcast and send follow their action policies; without policies both stay open', async () => {
    const api = await Api.start({ actions: { broadcast: { kind: 'claim', claim: 'role', values: ['admin'] }, send: { kind: 'none' } } });
    const admin = await api.connect('admin', { role: 'admin' });
    const user = await api.connect('user', { role: 'member' });
    await api.frame(user, { action: 'broadcast', message: 'spam', requestId: 'b' });
    expect(take(user)).toEqual([{ error: { code: 'Forbidden', message: 'This connection may not broadcast.' }, requestId: 'b' }]);
    expect(frames(admin)).toEqual([]);
    await api.frame(admin, { action: 'broadcast', message: 'notice' });
    expect(take(user)).toEqual([{ message: 'notice', sender: 'admin' }]);
    take(admin);
    await api.frame(admin, { action: 'send', to: 'user', message: 'dm' });
    expect(take(admin)[0].error.code).toBe('Forbidden');
    expect(frames(user)).toEqual([]);

    const openApi = await Api.start({ actions: undefined });
    const a = await openApi.connect('a');
    const b = await openApi.connect('b');
    await openApi.frame(a, { action: 'send', to: 'b', message: 'hi' });
    expect(frames(b)).toEqual([{ message: 'hi', sender: 'a' }]);
  });
});

describe('presence', () => {
  test('a user with three tabs joins once and leaves when the last tab goes; members lists users', async () => {
    const api = await Api.start();
    const watcher = await api.connect('watcher');
    await api.frame(watcher, { action: 'subscribe', channel: 'rooms/lobby' });
    const tabs = [await api.connect('alice'), await api.connect('alice'), await api.connect('alice')];
    for (const tab of tabs) await api.frame(tab, { action: 'subscribe', channel: 'rooms/lobby' });
    const events = () => frames(watcher).filter((f) => 'presence' in f).map((f) => f.presence);
    expect(events()).toEqual([{ event: 'joined', userId: 'watcher' }, { event: 'joined', userId: 'alice' }]);

    await api.frame(watcher, { action: 'presence', channel: 'rooms/lobby', requestId: 'p' });
    const page = frames(watcher).find((f) => f.action === 'presence');
    expect(page).toEqual({ action: 'presence', channel: 'rooms/lobby', members: expect.any(Array), cursor: null, requestId: 'p' });
    expect([...page.members].sort()).toEqual(['alice', 'watcher']);

    await api.disconnect(tabs[0]);
    await api.frame(tabs[1], { action: 'unsubscribe', channel: 'rooms/lobby' });
    expect(events()).toHaveLength(2);
    await api.disconnect(tabs[2]);
    expect(events()).toEqual([{ event: 'joined', userId: 'watcher' }, { event: 'joined', userId: 'alice' }, { event: 'left', userId: 'alice' }]);
    take(watcher);
    await api.frame(watcher, { action: 'presence', channel: 'rooms/lobby' });
    expect(take(watcher)).toEqual([{ action: 'presence', channel: 'rooms/lobby', members: ['watcher'], cursor: null }]);
  });

  test('members come in bounded pages with a cursor', async () => {
    const api = await Api.start();
    const ids: string[] = [];
    for (let i = 0; i < 105; i++) {
      const id = await api.connect(`u${String(i).padStart(3, '0')}`);
      await api.frame(id, { action: 'subscribe', channel: 'rooms/big' });
      ids.push(id);
    }
    const asker = ids[0];
    take(asker);
    await api.frame(asker, { action: 'presence', channel: 'rooms/big' });
    const first = take(asker)[0];
    expect(first.members).toHaveLength(100);
    expect(typeof first.cursor).toBe('string');
    await api.frame(asker, { action: 'presence', channel: 'rooms/big', cursor: first.cursor });
    const second = take(asker)[0];
    expect(second.members).toHaveLength(5);
    expect(second.cursor).toBeNull();
    expect(new Set([...first.members, ...second.members]).size).toBe(105);
  }, 30_000);

  test('presence on a channel whose rule keeps none is a BadRequest', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'presence', channel: 'users/alice', requestId: 'q' });
    expect(take(alice)).toEqual([{ error: { code: 'BadRequest', message: expect.any(String) }, action: 'presence', channel: 'users/alice', requestId: 'q' }]);
  });
});

describe('history and replay', () => {
  test('subscribe with since replays what was missed, oldest first, after the ack, marked replay', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    for (const n of [1, 2, 3, 4]) await api.frame(alice, { action: 'publish', channel: 'rooms/log', message: n });
    const bob = await api.connect('bob');
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/log', since: 1, requestId: 's' });
    expect(answers(bob)).toEqual([
      { action: 'subscribed', channel: 'rooms/log', requestId: 's' },
      { channel: 'rooms/log', message: 2, sender: 'alice', id: 2, replay: true },
      { channel: 'rooms/log', message: 3, sender: 'alice', id: 3, replay: true },
      { channel: 'rooms/log', message: 4, sender: 'alice', id: 4, replay: true },
    ]);
  });

  test('when history no longer reaches back, the ack says gap and the kept ones follow', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    for (let n = 1; n <= 8; n++) await api.frame(alice, { action: 'publish', channel: 'rooms/log', message: n });
    const bob = await api.connect('bob');
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/log', since: 1 });
    const seen = answers(bob);
    expect(seen[0]).toEqual({ action: 'subscribed', channel: 'rooms/log', gap: true });
    expect(seen.slice(1).map((f) => f.id)).toEqual([4, 5, 6, 7, 8]); // the last 5
  });

  test('a client that saw everything gets no replay and no gap', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'publish', channel: 'rooms/log', message: 1 });
    const bob = await api.connect('bob');
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/log', since: 1 });
    expect(answers(bob)).toEqual([{ action: 'subscribed', channel: 'rooms/log' }]);
  });

  test('a since above the channel\'s last id (its ids restarted) is acked with reset, and the new history replays from its start', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    for (const n of [1, 2]) await api.frame(alice, { action: 'publish', channel: 'rooms/log', message: n });
    const bob = await api.connect('bob');
    // bob saw id 40 before the channel's table was recreated: ids 1 and 2 are new to him.
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/log', since: 40, requestId: 's' });
    expect(answers(bob)).toEqual([
      { action: 'subscribed', channel: 'rooms/log', reset: true, requestId: 's' },
      { channel: 'rooms/log', message: 1, sender: 'alice', id: 1, replay: true },
      { channel: 'rooms/log', message: 2, sender: 'alice', id: 2, replay: true },
    ]);
    take(bob);
    // A channel without history says reset too.
    await api.frame(bob, { action: 'subscribe', channel: 'users/bob', since: 3 });
    expect(answers(bob)).toEqual([{ action: 'subscribed', channel: 'users/bob', reset: true }]);
    take(bob);
    // An up-to-date since is no reset.
    await api.frame(bob, { action: 'subscribe', channel: 'rooms/log', since: 2 });
    expect(answers(bob)).toEqual([{ action: 'subscribed', channel: 'rooms/log' }]);
  });

  test('since on a wildcard subscription is a BadRequest', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/*', since: 3 });
    expect(take(alice)[0]).toMatchObject({ error: { code: 'BadRequest' }, action: 'subscribe', channel: 'rooms/*' });
  });
});

describe('cleanup', () => {
  test('$disconnect removes every subscription of the connection', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/b' });
    await api.frame(alice, { action: 'subscribe', channel: 'users/alice' });
    expect(await api.subscriptionItems(alice)).toBe(3);
    await api.disconnect(alice);
    expect(await api.subscriptionItems(alice)).toBe(0);
  });

  test('a subscriber found gone (410) while publishing loses its subscriptions and leaves presence', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    const ghost = await api.connect('ghost');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(ghost, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(ghost, { action: 'subscribe', channel: 'rooms/b' });
    server.disconnect(ghost); // gone without a $disconnect
    await api.frame(alice, { action: 'publish', channel: 'rooms/a', message: 'anyone?' });
    expect(await api.subscriptionItems(ghost)).toBe(0);
    expect(frames(alice).filter((f) => 'presence' in f).map((f) => f.presence)).toContainEqual({ event: 'left', userId: 'ghost' });
  });
});

describe('rate limit', () => {
  test('over the per-user limit, publish and broadcast get RateLimited, across connections of the user', async () => {
    const api = await Api.start({}, { [Env.CLIENT_FANOUT_RATE_LIMIT]: '3', [Env.CLIENT_FANOUT_RATE_WINDOW_SECONDS]: '60' });
    const tab1 = await api.connect('alice');
    const tab2 = await api.connect('alice');
    await api.frame(tab1, { action: 'publish', channel: 'rooms/a', message: 1 });
    await api.frame(tab2, { action: 'broadcast', message: 2 });
    await api.frame(tab1, { action: 'publish', channel: 'rooms/a', message: 3 });
    take(tab1);
    take(tab2);
    await api.frame(tab2, { action: 'publish', channel: 'rooms/a', message: 4, requestId: 'r' });
    expect(take(tab2)).toEqual([{ error: { code: 'RateLimited', message: expect.stringMatching(/3 broadcast and publish/) }, action: 'publish', channel: 'rooms/a', requestId: 'r' }]);
    await api.frame(tab1, { action: 'broadcast', message: 5 });
    expect(take(tab1)).toEqual([{ error: { code: 'RateLimited', message: expect.any(String) } }]);
    const bob = await api.connect('bob'); // another user has a budget of its own
    await api.frame(bob, { action: 'publish', channel: 'rooms/a', message: 6 });
    expect(frames(bob)[0]).toMatchObject({ action: 'published' });
  });
});

describe('requestId', () => {
  test('pong and error frames echo it; answers to requests without one carry none', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'ping', requestId: 'p1' });
    await api.frame(alice, { action: 'ping' });
    await api.frame(alice, { action: 'dance', requestId: 'd1' });
    await api.frame(alice, { action: 'ping', requestId: 'x'.repeat(65) });
    const seen = frames(alice);
    expect(seen.slice(0, 3)).toEqual([
      { action: 'pong', requestId: 'p1' },
      { action: 'pong' },
      { error: { code: 'UnknownAction', message: expect.any(String) }, requestId: 'd1' },
    ]);
    expect(seen[3]).toEqual({ error: { code: 'BadRequest', message: expect.stringMatching(/requestId/) } });
  });
});

describe('backends (the publisher)', () => {
  test('publishes to a channel: subscribers and wildcard subscribers receive it with the next id, kept for replay', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    const watcher = await api.connect('watcher');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    await api.frame(watcher, { action: 'subscribe', channel: 'rooms/*' });
    await api.frame(alice, { action: 'publish', channel: 'rooms/a', message: 'first' });
    take(alice);
    take(watcher);

    expect(await api.publish({ to: { channel: 'rooms/a' }, message: { order: 42 } }))
      .toEqual({ delivered: 2, gone: 0, failed: 0, retried: 0, throttled: 0, id: 2 });
    expect(take(alice)).toEqual([{ channel: 'rooms/a', message: { order: 42 }, id: 2 }]);
    expect(take(watcher)).toEqual([{ channel: 'rooms/a', message: { order: 42 }, id: 2 }]);
    expect((await api.publish({ to: { channel: 'users/alice' }, message: 'private', sender: 'billing' })).id).toBe(1);

    const late = await api.connect('late');
    await api.frame(late, { action: 'subscribe', channel: 'rooms/a', since: 0 });
    expect(answers(late).map((f) => f.id)).toEqual([undefined, 1, 2]);
  });

  test('the members of a presence channel, a page at a time', async () => {
    const api = await Api.start();
    for (const user of ['alice', 'bob']) await api.frame(await api.connect(user), { action: 'subscribe', channel: 'rooms/a' });
    const page = await api.publish({ presence: { channel: 'rooms/a' } });
    expect({ ...page, members: [...page.members].sort() }).toEqual({ members: ['alice', 'bob'], cursor: null });
  });

  test.each([
    ['a channel no rule matches', { to: { channel: 'secret/x' }, message: 1 }, /No channel rule matches/],
    ['a wildcard channel', { to: { channel: 'rooms/*' }, message: 1 }, /subscriptions only/],
    ['a dot-dot channel', { to: { channel: 'rooms/..' }, message: 1 }, /"\.\."/],
    ['a presence query without channel', { presence: {} }, /non-empty string/],
  ])('refuses %s with BadRequest', async (_case, request, message) => {
    const api = await Api.start();
    expect(await api.publish(request)).toEqual({ error: { code: 'BadRequest', message: expect.stringMatching(message) } });
  });
});

describe('a rule\'s authorizer function (onSubscribe/onPublish)', () => {
  let lambda: LambdaServer;
  const asked: unknown[] = [];
  let failing = false;

  beforeAll(async () => {
    lambda = await LambdaServer.start({
      'orders-auth': async (event) => {
        asked.push(event);
        if (failing) throw new Error('down');
        const request = event as { action: string; channel: string; userId: string; claims: Record<string, string> };
        // Users read their own orders; only the "shop" role publishes.
        if (request.action === 'subscribe') return { allow: request.channel === `orders/${request.userId}` };
        return { allow: request.claims.role === 'shop' };
      },
    });
    process.env.AWS_ENDPOINT_URL_LAMBDA = lambda.endpoint;
  });

  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL_LAMBDA;
    await lambda.stop();
  });

  beforeEach(() => {
    asked.length = 0;
    failing = false;
  });

  const withHook = (cacheSeconds: number) => ({ rules: [rule('orders/*', { subscribe: { kind: 'function' }, publish: { kind: 'function' }, authorizer: 'orders-auth', authorizerCacheSeconds: cacheSeconds })] });

  test('is asked with the action, channel, user and registry claims, and its answer decides', async () => {
    const api = await Api.start(withHook(0));
    const alice = await api.connect('alice', { role: 'customer' });
    const shop = await api.connect('shop-1', { role: 'shop' });
    await api.frame(alice, { action: 'subscribe', channel: 'orders/alice' });
    await api.frame(alice, { action: 'subscribe', channel: 'orders/bob', requestId: 'b' });
    expect(take(alice)).toEqual([
      { action: 'subscribed', channel: 'orders/alice' },
      { error: { code: 'Forbidden', message: expect.any(String) }, action: 'subscribe', channel: 'orders/bob', requestId: 'b' },
    ]);
    expect(asked[0]).toEqual({ action: 'subscribe', channel: 'orders/alice', userId: 'alice', claims: { role: 'customer' } });

    await api.frame(alice, { action: 'publish', channel: 'orders/alice', message: 'fake shipped' });
    expect(take(alice)[0].error.code).toBe('Forbidden');
    await api.frame(shop, { action: 'publish', channel: 'orders/alice', message: 'shipped' });
    expect(frames(alice)).toEqual([{ channel: 'orders/alice', message: 'shipped', sender: 'shop-1', id: 1 }]);
  });

  test('a failing authorizer refuses', async () => {
    const api = await Api.start(withHook(0));
    const alice = await api.connect('alice');
    failing = true;
    await api.frame(alice, { action: 'subscribe', channel: 'orders/alice' });
    expect(take(alice)[0].error.code).toBe('Forbidden');
  });

  test('decisions are kept by the container for the cache time, and asked every time without it', async () => {
    const cached = await Api.start(withHook(60));
    const alice = await cached.connect('alice');
    for (let i = 0; i < 3; i++) await cached.frame(alice, { action: 'subscribe', channel: 'orders/alice' });
    expect(asked).toHaveLength(1);

    asked.length = 0;
    const uncached = await Api.start(withHook(0));
    const bob = await uncached.connect('bob');
    for (let i = 0; i < 3; i++) await uncached.frame(bob, { action: 'subscribe', channel: 'orders/bob' });
    expect(asked).toHaveLength(3);
  });
});

describe('lifecycle events on EventBridge', () => {
  /** EventBridge's PutEvents (AWS JSON 1.1, SigV4 for `events`), recording the entries it accepted. */
  let bus: Server;
  const received: Array<{ target?: string; service?: string; entries: Array<Record<string, string>> }> = [];

  beforeAll(async () => {
    bus = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const auth = SIGV4_AUTHORIZATION.exec(req.headers.authorization ?? '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Entries: Array<Record<string, string>> };
        received.push({ target: req.headers['x-amz-target'] as string, service: auth?.groups?.service, entries: body.Entries });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ FailedEntryCount: 0, Entries: [{ EventId: '1' }] }));
      });
    });
    await new Promise<void>((resolve) => bus.listen(0, '127.0.0.1', resolve));
    process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = `http://127.0.0.1:${(bus.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
    delete process.env[Env.LIFECYCLE_EVENT_BUS_NAME];
    bus.closeAllConnections();
    await new Promise((resolve) => bus.close(resolve));
  });

  test('connect, join, leave and disconnect reach the bus, signed, with the user and channel', async () => {
    const api = await Api.start({}, { [Env.LIFECYCLE_EVENT_BUS_NAME]: 'app-bus', [ObservabilityEnv.API_ID]: 'api-1', [Env.AUTH_CONTEXT_CLAIMS]: '' });
    const connectionId = newConnectionId();
    server.connect(connectionId);
    expect(await api.connectionEvent('CONNECT', connectionId, 'alice')).toEqual({ statusCode: 200 });
    await api.frame(connectionId, { action: 'subscribe', channel: 'rooms/a' });
    await api.disconnect(connectionId);

    expect(received.every((r) => r.target === 'AWSEvents.PutEvents' && r.service === 'events')).toBe(true);
    expect(received.flatMap((r) => r.entries).map((e) => ({ ...e, Detail: JSON.parse(e.Detail) }))).toEqual([
      { Source: 'authenticated-websocket-api', DetailType: 'Connected', EventBusName: 'app-bus', Detail: { apiId: 'api-1', connectionId, userId: 'alice' } },
      { Source: 'authenticated-websocket-api', DetailType: 'Joined', EventBusName: 'app-bus', Detail: { apiId: 'api-1', channel: 'rooms/a', userId: 'alice' } },
      { Source: 'authenticated-websocket-api', DetailType: 'Left', EventBusName: 'app-bus', Detail: { apiId: 'api-1', channel: 'rooms/a', userId: 'alice' } },
      { Source: 'authenticated-websocket-api', DetailType: 'Disconnected', EventBusName: 'app-bus', Detail: { apiId: 'api-1', connectionId, userId: 'alice' } },
    ]);
  });

  test('a bus that fails never fails the connect', async () => {
    const api = await Api.start({}, { [Env.LIFECYCLE_EVENT_BUS_NAME]: 'app-bus' });
    process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = 'http://127.0.0.1:1';
    try {
      const connectionId = newConnectionId();
      expect(await api.connectionEvent('CONNECT', connectionId, 'bob')).toEqual({ statusCode: 200 });
      expect(output.logs()).toContainEqual(expect.objectContaining({ event: 'lifecycle_event_failed', detailType: 'Connected' }));
    } finally {
      process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = `http://127.0.0.1:${(bus.address() as AddressInfo).port}`;
    }
  });
});

describe('queue mode (FanOut.queue())', () => {
  let sqs: SqsServer;
  let queues = 0;

  beforeAll(async () => {
    sqs = await SqsServer.start();
    process.env.AWS_ENDPOINT_URL_SQS = sqs.endpoint;
  });

  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL_SQS;
    delete process.env[Env.FANOUT_QUEUE_URL];
    delete process.env[Env.FANOUT_DLQ_URL];
    delete process.env[Env.CHANNEL_SHARDS];
    await sqs.stop();
  });

  test('a publish becomes one task per shard (and wildcard shard); the workers reach every subscriber once', async () => {
    const n = ++queues;
    const api = await Api.start({}, {
      [Env.FANOUT_QUEUE_URL]: sqs.queueUrl(`channel-tasks-${n}`),
      [Env.FANOUT_DLQ_URL]: sqs.queueUrl(`channel-dlq-${n}`),
      [Env.CHANNEL_SHARDS]: '3',
    });
    let worker: ((event: SQSEvent, context: Context) => Promise<SQSBatchResponse>) | undefined;
    jest.isolateModules(() => { worker = jest.requireActual('../../src/handlers/fan-out-worker.lambda').handler; });
    const subscribers = [];
    for (let i = 0; i < 30; i++) {
      const id = await api.connect(`user-${i}`);
      await api.frame(id, { action: 'subscribe', channel: i % 10 === 0 ? 'rooms/*' : 'rooms/big' });
      subscribers.push(id);
    }
    for (const id of subscribers) take(id);
    const publisher = subscribers[1];
    await api.frame(publisher, { action: 'publish', channel: 'rooms/big', message: 'queued', requestId: 'q' });
    expect(take(publisher)).toEqual([{ action: 'published', channel: 'rooms/big', id: 1, requestId: 'q' }]);

    const tasks = sqs.drain(`channel-tasks-${n}`);
    const described = tasks.map((t) => JSON.parse(t.body)).map((task) => ({ channel: task.channel, shard: task.shard, rule: task.rule }));
    expect(described.sort((a, b) => a.shard - b.shard || a.channel.localeCompare(b.channel)))
      .toEqual([0, 1, 2].flatMap((shard) => [{ channel: 'rooms/*', shard, rule: 0 }, { channel: 'rooms/big', shard, rule: undefined }]));
    for (const task of tasks) {
      const event = { Records: [{ messageId: task.messageId, body: task.body } as SQSEvent['Records'][number]] };
      const answer = await worker!(event, { getRemainingTimeInMillis: () => 120_000 } as Context);
      expect(answer).toEqual({ batchItemFailures: [] });
    }
    for (const id of subscribers) expect(frames(id)).toEqual([{ channel: 'rooms/big', message: 'queued', sender: 'user-1', id: 1 }]);
  });
});

describe('message size', () => {
  test('a publish whose channel frame would pass 128 KB is refused as TooLarge, naming the request, and spends no id', async () => {
    const api = await Api.start();
    const alice = await api.connect('alice');
    await api.frame(alice, { action: 'subscribe', channel: 'rooms/a' });
    take(alice);
    const overhead = JSON.stringify({ action: 'publish', channel: 'rooms/a', message: '', requestId: 'big' }).length;
    await api.frame(alice, { action: 'publish', channel: 'rooms/a', message: 'x'.repeat(Defaults.MAX_MESSAGE_BYTES - overhead), requestId: 'big' });
    expect(take(alice)).toEqual([{ error: { code: 'TooLarge', message: expect.any(String) }, action: 'publish', channel: 'rooms/a', requestId: 'big' }]);
    await api.frame(alice, { action: 'publish', channel: 'rooms/a', message: 'small' });
    expect(frames(alice)).toContainEqual({ channel: 'rooms/a', message: 'small', sender: 'alice', id: 1 });
  });
});
