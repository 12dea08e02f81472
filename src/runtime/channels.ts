import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { lambdaDecider } from './channel-authorizer';
import { ChannelName, coveringWildcard } from './channel-names';
import {
  AccessPolicy, ChannelRuleConfig, ChannelsConfig, ChannelUser, evaluate, matchRule, MatchedRule, parseChannelsConfig,
} from './channel-policy';
import { ChannelStore, PresenceChange, SubscriptionCursor } from './channel-store';
import { Environment, optionalSetting, positiveIntegerSetting, requiredSetting } from './configuration';
import { ApiLocation, callbackUrl } from './connections-api';
import type { DeliveryResult } from './delivery';
import {
  channelMessageFrame, MessageRejectedError, presenceEventFrame, presenceFrame, publishedFrame, replayFrame, subscribedFrame, unsubscribedFrame,
} from './envelope';
import { ChannelsTable, Env, Registry } from './environment';
import { FanOut, FanOutResult, fanOutSettings } from './fan-out';
import { LifecycleSink, lifecycleSinkFromEnvironment } from './lifecycle-events';
import { logEvent } from './log';
import { SignedConnectionsClient } from './signed-connections-client';
import { DynamoStaleConnections } from './stale-connections';

/** Asks a rule's authorizer function; answers whether the action is allowed. */
export type ChannelDecider = (functionName: string, request: ChannelDecisionRequest) => Promise<boolean>;

/** What a rule's authorizer function is invoked with. */
export interface ChannelDecisionRequest {
  readonly action: 'subscribe' | 'publish';
  readonly channel: string;
  readonly userId: string;
  readonly claims: Readonly<Record<string, string>>;
}

/** Where presence changes go besides the channel's members (e.g. EventBridge). */
export type { LifecycleSink } from './lifecycle-events';

export interface ChannelServiceOptions {
  readonly config: ChannelsConfig;
  readonly store: ChannelStore;
  /** Posts answers and channel messages (its stale-connection handling removes registry rows). */
  readonly fanOut: FanOut;
  /** The connection registry, where the verified claims are read. */
  readonly registry: { readonly client: DynamoDBClient; readonly tableName: string };
  /** Most client broadcast + publish requests per user per window; 0: no limit. */
  readonly rateLimit: number;
  readonly rateWindowSeconds: number;
  /** @default every `function` policy is refused */
  readonly decide?: ChannelDecider;
  readonly lifecycle?: LifecycleSink;
  /** Queue mode (`FanOut.queue()`): channel publishes become one task per subscription shard, served by the fan-out workers. */
  readonly queue?: { readonly client: SQSClient; readonly queueUrl: string; readonly deadLetterUrl?: string };
}

/** A queue task: one shard of a channel's subscriptions (from a cursor), for the fan-out worker. */
export interface ChannelTask {
  readonly kind: 'channel';
  /** The subscription key: a concrete channel, or the wildcard covering it. */
  readonly channel: string;
  readonly shard: number;
  /** For wildcard subscribers: only those allowed by this rule. */
  readonly rule?: number;
  readonly startKey?: SubscriptionCursor;
  /** The frame, base64. */
  readonly payload: string;
}

/** Whether a queue message body is a channel task. */
export function isChannelTask(body: string): boolean {
  try {
    const task = JSON.parse(body) as Partial<ChannelTask>;
    return task.kind === 'channel' && typeof task.channel === 'string' && Number.isInteger(task.shard) && typeof task.payload === 'string';
  } catch {
    return false;
  }
}

/** A client request about one channel, with the `requestId` its answers echo. */
export interface ChannelRequestContext {
  readonly connectionId: string;
  readonly requestId?: string;
  /** Epoch milliseconds after which no more recipients are pulled. */
  readonly deadline?: number;
}

/**
 * The channel actions of the message handler and the publisher: subscribe (with replay),
 * unsubscribe, publish, presence, and the policies of the built-in broadcast and send. Every
 * decision reads the caller's user id and claims from the registry, never from the frame.
 */
export class ChannelService {
  private readonly config: ChannelsConfig;
  readonly store: ChannelStore;
  private readonly fanOut: FanOut;
  private readonly registry: { readonly client: DynamoDBClient; readonly tableName: string };
  private readonly rateLimit: number;
  private readonly rateWindowSeconds: number;
  private readonly decide?: ChannelDecider;
  private readonly lifecycle?: LifecycleSink;
  private readonly queue?: ChannelServiceOptions['queue'];

  constructor(options: ChannelServiceOptions) {
    this.config = options.config;
    this.store = options.store;
    this.fanOut = options.fanOut;
    this.registry = options.registry;
    this.rateLimit = options.rateLimit;
    this.rateWindowSeconds = options.rateWindowSeconds;
    this.decide = options.decide;
    this.lifecycle = options.lifecycle;
    this.queue = options.queue;
  }

  /** The connection's user and claims, as the registry holds them (undefined: not registered). */
  async userOf(connectionId: string): Promise<(ChannelUser & { ttl: number }) | undefined> {
    const { Item } = await this.registry.client.send(new GetItemCommand({
      TableName: this.registry.tableName,
      Key: { [Registry.PARTITION_KEY]: { S: connectionId } },
      ProjectionExpression: '#u, #c, #t',
      ExpressionAttributeNames: { '#u': Registry.USER_ID, '#c': Registry.CLAIMS, '#t': Registry.TTL },
      ConsistentRead: true,
    }));
    const userId = Item?.[Registry.USER_ID]?.S;
    if (!userId) return undefined;
    const claims = Object.fromEntries(Object.entries(Item?.[Registry.CLAIMS]?.M ?? {})
      .filter(([, value]) => value.S !== undefined).map(([name, value]) => [name, value.S as string]));
    return { userId, claims, ttl: Number(Item?.[Registry.TTL]?.N ?? 0) };
  }

  /**
   * Refuses a broadcast or send the action policies do not allow (claims read from the registry),
   * and a broadcast over the user's rate.
   */
  async checkAction(action: 'broadcast' | 'send', connectionId: string, userId: string, requestId?: string): Promise<void> {
    const context = requestIdOnly(requestId);
    const policy = this.config.actions[action];
    if (policy.kind !== 'authenticated') {
      const user = await this.requireUser(connectionId, context);
      if (evaluate(policy, user) !== 'allow') {
        logEvent('info', 'action_refused', { action });
        throw new MessageRejectedError('Forbidden', `This connection may not ${action}.`, context);
      }
    }
    if (action === 'broadcast') await this.checkRate(userId, context);
  }

  async subscribe(request: ChannelRequestContext, channel: ChannelName, since?: number): Promise<void> {
    const context = { requestId: request.requestId, action: 'subscribe', channel: channel.name };
    const user = await this.requireUser(request.connectionId, context);
    const matched = await this.authorize('subscribe', channel, user, context);
    const presence = matched.rule.presence === true && !channel.wildcard;
    const joined = await this.store.subscribe({
      connectionId: request.connectionId, userId: user.userId, channel: channel.name, rule: matched.index, presence, ttl: user.ttl,
    });
    const history = matched.rule.history;
    // A `since` above the channel's last id cannot come from this channel's ids: they restarted (its
    // table was emptied or recreated, as a restarted `authws local` does). The ack says `reset`, so the
    // client accepts the new ids, and the replay starts from the beginning of the new history.
    const reset = since !== undefined && since > await this.store.lastId(channel.name);
    if (since === undefined || !history) {
      await this.reply(request.connectionId, subscribedFrame(channel.name, request.requestId, false, reset));
    } else {
      const { entries, gap } = await this.store.replay(channel.name, reset ? 0 : since, history.size);
      await this.reply(request.connectionId, subscribedFrame(channel.name, request.requestId, gap, reset));
      // In order, one at a time: the client sees the missed messages oldest first.
      for (const entry of entries) await this.reply(request.connectionId, replayFrame(entry.frame));
    }
    if (joined) await this.announce(joined, request.deadline);
    logEvent('info', 'subscribed', { channel: channel.name, replay: since !== undefined });
  }

  async unsubscribe(request: ChannelRequestContext, channel: ChannelName): Promise<void> {
    const left = await this.store.unsubscribe(request.connectionId, channel.name);
    await this.reply(request.connectionId, unsubscribedFrame(channel.name, request.requestId));
    if (left) await this.announce(left, request.deadline);
  }

  /** A client publishes: authorized, rate limited, numbered, kept when the rule keeps history, fanned out. */
  async publishFromClient(request: ChannelRequestContext, channel: ChannelName, messageJson: string): Promise<DeliveryResult> {
    const context = { requestId: request.requestId, action: 'publish', channel: channel.name };
    const user = await this.requireUser(request.connectionId, context);
    const matched = await this.authorize('publish', channel, user, context);
    await this.checkRate(user.userId, context);
    try {
      // The publisher hears its message's id as soon as it has one, before the fan-out runs.
      const { result } = await this.publish(channel, matched, messageJson, user.userId, request.deadline,
        (id) => this.reply(request.connectionId, publishedFrame(channel.name, id, request.requestId)));
      return result;
    } catch (err) {
      if (err instanceof MessageRejectedError) throw new MessageRejectedError(err.code, err.message, context);
      throw err;
    }
  }

  /**
   * Publishes to a channel without a policy check (a backend with a grant). The channel must match a
   * rule: its rule says whether history is kept and which wildcard subscribers receive it.
   */
  async publishFromBackend(
    channel: ChannelName, messageJson: string, sender: string | undefined, deadline?: number,
  ): Promise<{ id: number; result: DeliveryResult }> {
    const matched = this.ruleOfChannel(channel);
    if (!matched) throw new MessageRejectedError('BadRequest', `No channel rule matches "${channel.name}".`);
    return this.publish(channel, matched, messageJson, sender, deadline);
  }

  /** A page of a presence channel's members. */
  async presence(request: ChannelRequestContext, channel: ChannelName, cursor?: string): Promise<void> {
    const context = { requestId: request.requestId, action: 'presence', channel: channel.name };
    const user = await this.requireUser(request.connectionId, context);
    const matched = await this.authorize('subscribe', channel, user, context);
    if (!matched.rule.presence) throw new MessageRejectedError('BadRequest', `The channel "${channel.name}" keeps no presence.`, context);
    let page;
    try {
      page = await this.store.members(channel.name, cursor);
    } catch (err) {
      if (err instanceof RangeError) throw new MessageRejectedError('BadRequest', '"cursor" is not a cursor of this channel.', context);
      throw err;
    }
    await this.reply(request.connectionId, presenceFrame(channel.name, page.members, page.cursor, request.requestId));
  }

  /** A backend reads a page of members (no policy: the grant is the permission). */
  async members(channel: ChannelName, cursor?: string): Promise<{ members: string[]; cursor: string | null }> {
    return this.store.members(channel.name, cursor);
  }

  /** `$disconnect` (or a 410): drops the connection's subscriptions and tells the channels it left. */
  async disconnect(connectionId: string): Promise<void> {
    const changes = await this.store.removeConnection(connectionId);
    for (const change of changes) await this.announce(change);
  }

  private async publish(
    channel: ChannelName, matched: MatchedRule, messageJson: string, sender: string | undefined, deadline?: number,
    numbered?: (id: number) => Promise<void>,
  ): Promise<{ id: number; result: DeliveryResult }> {
    // An oversized message is refused before it spends an id (a skipped id would read as a gap on replay).
    channelMessageFrame(channel.name, messageJson, sender, Number.MAX_SAFE_INTEGER);
    const id = await this.store.nextId(channel.name);
    const frame = channelMessageFrame(channel.name, messageJson, sender, id);
    const history = matched.rule.history;
    if (history) await this.store.remember(channel.name, { id, frame }, history.size, history.maxAgeSeconds);
    await numbered?.(id);
    if (this.queue) {
      const queued = await this.enqueueShards(channel, matched, frame);
      logEvent('info', 'channel_published', { channel: channel.name, id, queued });
      return { id, result: { delivered: 0, gone: 0, failed: 0, retried: 0, throttled: 0, queued } };
    }
    const result = await this.fanOut.send(this.recipients(channel, matched), frame, { deadline });
    if (!result.complete) logEvent('error', 'fan_out_incomplete', { channel: channel.name, delivered: result.delivered, hint: 'use FanOut.queue() for channels this large' });
    logEvent('info', 'channel_published', { channel: channel.name, id, delivered: result.delivered, gone: result.gone, failed: result.failed });
    return { id, result: counts(result) };
  }

  /**
   * Queue mode: serves one shard of a channel until `deadline`. What is left is enqueued again from
   * the page it stopped in; recipients that failed go to the dead-letter queue as a `connections`
   * task (the format the worker already redrives).
   */
  async serveTask(task: ChannelTask, deadline: number): Promise<FanOutResult> {
    let resumeAt: SubscriptionCursor | undefined;
    const store = this.store;
    async function* recipients(): AsyncGenerator<string> {
      for await (const page of store.subscriberPages(task.channel, task.shard, task.rule, task.startKey)) {
        resumeAt = page.startKey;
        yield* page.ids;
      }
    }
    const failed: string[] = [];
    const result = await this.fanOut.send(recipients(), Buffer.from(task.payload, 'base64'), { deadline, onFailed: (id) => failed.push(id) });
    if (!result.complete) {
      await this.requireQueue().client.send(new SendMessageCommand({
        QueueUrl: this.requireQueue().queueUrl, MessageBody: JSON.stringify({ ...task, startKey: resumeAt }),
      }));
      logEvent('info', 'fan_out_continued', { channel: task.channel, shard: task.shard, delivered: result.delivered });
    }
    const deadLetterUrl = this.queue?.deadLetterUrl;
    for (let i = 0; deadLetterUrl && i < failed.length; i += 1_000) {
      await this.requireQueue().client.send(new SendMessageCommand({
        QueueUrl: deadLetterUrl, MessageBody: JSON.stringify({ kind: 'connections', connectionIds: failed.slice(i, i + 1_000), payload: task.payload }),
      }));
    }
    return result;
  }

  private async enqueueShards(channel: ChannelName, matched: MatchedRule, frame: string): Promise<number> {
    const payload = Buffer.from(frame, 'utf8').toString('base64');
    const wildcard = matched.rule.wildcardSubscriptions ? coveringWildcard(channel) : undefined;
    const tasks: ChannelTask[] = [];
    for (let shard = 0; shard < this.store.shards; shard++) {
      tasks.push({ kind: 'channel', channel: channel.name, shard, payload });
      if (wildcard) tasks.push({ kind: 'channel', channel: wildcard, shard, rule: matched.index, payload });
    }
    const queue = this.requireQueue();
    for (let i = 0; i < tasks.length; i += 10) {
      const entries = tasks.slice(i, i + 10).map((task, n) => ({ Id: String(i + n), MessageBody: JSON.stringify(task) }));
      const answer = await queue.client.send(new SendMessageBatchCommand({ QueueUrl: queue.queueUrl, Entries: entries }));
      if (answer.Failed && answer.Failed.length > 0) throw new Error(`${answer.Failed.length} channel fan-out tasks were not enqueued: ${answer.Failed[0].Code}`);
    }
    return tasks.length;
  }

  private requireQueue(): NonNullable<ChannelServiceOptions['queue']> {
    if (!this.queue) throw new Error('Channel tasks need FANOUT_QUEUE_URL');
    return this.queue;
  }

  /**
   * The channel's subscribers, and the wildcard subscribers allowed by the same rule (read only when
   * the rule allows wildcard subscriptions): every shard, read in parallel.
   */
  private recipients(channel: ChannelName, matched: MatchedRule): AsyncIterable<string> {
    const sources: AsyncIterator<string[]>[] = [];
    const wildcard = matched.rule.wildcardSubscriptions ? coveringWildcard(channel) : undefined;
    for (let shard = 0; shard < this.store.shards; shard++) {
      sources.push(this.store.subscribers(channel.name, shard)[Symbol.asyncIterator]());
      if (wildcard) sources.push(this.store.subscribers(wildcard, shard, matched.index)[Symbol.asyncIterator]());
    }
    return merge(sources);
  }

  private async announce(change: PresenceChange, deadline?: number): Promise<void> {
    const frame = presenceEventFrame(change.channel, change.event, change.userId);
    const recipients = merge(Array.from({ length: this.store.shards },
      (_, shard) => this.store.subscribers(change.channel, shard)[Symbol.asyncIterator]()));
    await this.fanOut.send(recipients, frame, { deadline });
    await this.lifecycle?.presence(change).catch((err: unknown) => logEvent('warn', 'lifecycle_event_failed', { error: String(err) }));
  }

  private ruleOfChannel(channel: ChannelName): MatchedRule | undefined {
    // Backends have no user: a rule with placeholders matches any value there.
    const index = this.config.rules.findIndex((rule) => {
      const pattern = rule.pattern.split('/');
      return pattern.length === channel.segments.length
        && pattern.every((expected, i) => expected === '*' || expected.startsWith('${') || expected === channel.segments[i]);
    });
    return index < 0 ? undefined : { rule: this.config.rules[index], index };
  }

  private async authorize(action: 'subscribe' | 'publish', channel: ChannelName, user: ChannelUser, context: object): Promise<MatchedRule> {
    const matched = matchRule(this.config.rules, channel, user);
    if (!matched) {
      logEvent('info', 'channel_refused', { action, reason: 'NO_RULE' });
      throw new MessageRejectedError('Forbidden', `No channel rule lets this connection ${action} to "${channel.name}".`, context);
    }
    const policy: AccessPolicy = matched.rule[action];
    let decision = evaluate(policy, user);
    if (decision === 'ask') decision = await this.ask(matched.rule, action, channel, user) ? 'allow' : 'deny';
    if (decision !== 'allow') {
      logEvent('info', 'channel_refused', { action, reason: 'POLICY', rule: matched.index });
      throw new MessageRejectedError('Forbidden', `This connection may not ${action} to "${channel.name}".`, context);
    }
    return matched;
  }

  private async ask(rule: ChannelRuleConfig, action: 'subscribe' | 'publish', channel: ChannelName, user: ChannelUser): Promise<boolean> {
    if (!rule.authorizer || !this.decide) return false;
    try {
      return await this.decide(rule.authorizer, { action, channel: channel.name, userId: user.userId, claims: user.claims });
    } catch (err) {
      // A failing hook refuses: never open a channel because its authorizer is down.
      logEvent('error', 'channel_authorizer_failed', { error: String(err) });
      return false;
    }
  }

  private async checkRate(userId: string, context: object): Promise<void> {
    if (this.rateLimit <= 0) return;
    if (!await this.store.withinRate(userId, this.rateLimit, this.rateWindowSeconds)) {
      logEvent('warn', 'rate_limited', { userId });
      throw new MessageRejectedError('RateLimited',
        `Over ${this.rateLimit} broadcast and publish requests per ${this.rateWindowSeconds} seconds; slow down.`, context);
    }
  }

  private async requireUser(connectionId: string, context: object): Promise<ChannelUser & { ttl: number }> {
    const user = await this.userOf(connectionId);
    if (!user) throw new MessageRejectedError('Forbidden', 'This connection is not registered.', context);
    return user;
  }

  private async reply(connectionId: string, frame: string): Promise<void> {
    await this.fanOut.sendTo(connectionId, frame);
  }
}

function counts(result: FanOutResult): DeliveryResult {
  return {
    delivered: result.delivered,
    gone: result.gone,
    failed: result.failed,
    retried: result.retried,
    throttled: result.throttled,
    ...(result.payloadTooLarge ? { payloadTooLarge: true } : {}),
    ...(result.complete ? {} : { complete: false }),
  };
}

function requestIdOnly(requestId: string | undefined): { requestId?: string } {
  return requestId === undefined ? {} : { requestId };
}

/** The ids of several paged async iterators, page by page as they come (each read one page ahead), until all are done. */
export async function* merge(sources: AsyncIterator<string[]>[]): AsyncGenerator<string> {
  const pending = new Map<number, Promise<{ index: number; item: IteratorResult<string[]> }>>();
  const pull = (index: number) => {
    const next = sources[index].next().then((item) => ({ index, item }));
    next.catch(() => undefined);
    pending.set(index, next);
  };
  sources.forEach((_, index) => pull(index));
  while (pending.size > 0) {
    const { index, item } = await Promise.race(pending.values());
    if (item.done) {
      pending.delete(index);
      continue;
    }
    pull(index);
    yield* item.value;
  }
}

const services = new Map<string, ChannelService>();

/**
 * The container's channel service for `location`'s @connections endpoint, from the construct's
 * environment; undefined when the API has no channels table (a handler deployed without it).
 */
export function channelServiceFromEnvironment(location: ApiLocation, env: Environment): ChannelService | undefined {
  const tableName = optionalSetting(env, Env.CHANNELS_TABLE_NAME);
  if (!tableName) return undefined;
  const endpoint = callbackUrl(location, env);
  let service = services.get(endpoint);
  if (service) return service;
  const dynamo = new DynamoDBClient({});
  const registryTable = requiredSetting(env, Env.TABLE_NAME);
  const config = parseChannelsConfig(optionalSetting(env, Env.CHANNELS_CONFIG));
  const store = new ChannelStore({ client: dynamo, tableName, shards: positiveIntegerSetting(env, Env.CHANNEL_SHARDS, ChannelsTable.SHARDS) });
  const registryStale = new DynamoStaleConnections(dynamo, registryTable);
  let late: ChannelService | undefined;
  const { concurrency, postTimeoutMs } = fanOutSettings(env);
  // A worker posts at its share of maxSendRate, as for broadcasts.
  const maxSendRate = optionalSetting(env, Env.FANOUT_MAX_SEND_RATE) ? positiveIntegerSetting(env, Env.FANOUT_MAX_SEND_RATE, 1) : undefined;
  const queueUrl = optionalSetting(env, Env.FANOUT_QUEUE_URL);
  const fanOut = new FanOut({
    transport: new SignedConnectionsClient({ endpoint, region: requiredSetting(env, 'AWS_REGION'), maxSockets: concurrency }),
    // A recipient found gone (410) loses its registry row and its subscriptions (telling presence channels it left).
    staleConnections: {
      async removeAll(connectionIds: readonly string[]): Promise<void> {
        await registryStale.removeAll(connectionIds);
        for (const id of connectionIds) await late?.disconnect(id);
      },
    },
    concurrency,
    postTimeoutMs,
    maxSendRate,
  });
  const cacheSeconds = new Map(config.rules.filter((rule) => rule.authorizer).map((rule) => [rule.authorizer!, rule.authorizerCacheSeconds ?? 0]));
  const rateLimitText = optionalSetting(env, Env.CLIENT_FANOUT_RATE_LIMIT);
  service = new ChannelService({
    config,
    store,
    fanOut,
    registry: { client: dynamo, tableName: registryTable },
    rateLimit: rateLimitText === '0' ? 0 : positiveIntegerSetting(env, Env.CLIENT_FANOUT_RATE_LIMIT, ChannelsTable.CLIENT_FANOUT_RATE_LIMIT),
    rateWindowSeconds: positiveIntegerSetting(env, Env.CLIENT_FANOUT_RATE_WINDOW_SECONDS, ChannelsTable.CLIENT_FANOUT_RATE_WINDOW_SECONDS),
    decide: cacheSeconds.size > 0 ? lambdaDecider(new LambdaClient({}), (name) => cacheSeconds.get(name) ?? 0) : undefined,
    lifecycle: lifecycleSinkFromEnvironment(env),
    queue: queueUrl ? { client: new SQSClient({}), queueUrl, deadLetterUrl: optionalSetting(env, Env.FANOUT_DLQ_URL) } : undefined,
  });
  late = service;
  services.set(endpoint, service);
  return service;
}
