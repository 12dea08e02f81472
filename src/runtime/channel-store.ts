import { createHash } from 'node:crypto';
import {
  AttributeValue, BatchWriteItemCommand, ConditionalCheckFailedException, DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand,
  QueryCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { ChannelsTable } from './environment';

/**
 * The channels table: one DynamoDB table, partition key `pk`, sort key `sk`, and a sparse GSI
 * `byConnection` on `connectionId` (subscription items only). Item kinds:
 *
 * | item          | pk                          | sk               | serves                                   |
 * |---------------|-----------------------------|------------------|------------------------------------------|
 * | subscription  | `sub#<channel>#<shard>`     | connection id    | publish (Query per shard), unsubscribe   |
 * | presence      | `presence#<channel>`        | user id          | member list; `n` = the user's connections |
 * | counter       | `channel#<channel>`         | `seq`            | message ids (UpdateItem ADD)             |
 * | history       | `history#<channel>`         | 16-digit id      | replay `since` (Query sk > since)        |
 * | rate window   | `rate#<userId>`             | window start     | per-user client fan-out limit            |
 *
 * A channel's subscriptions are spread over `shards` partitions by a hash of the connection id,
 * so a large channel is read by several readers in parallel (or by several workers), never by one
 * Query chain. Everything works on dynalite: no transactions or streams; TTL (`ttl`) is only a
 * backstop, so readers skip items whose `ttl` has passed.
 */
export interface ChannelStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** @default ChannelsTable.SHARDS */
  readonly shards?: number;
  /** Items read per Query page. @default 500 */
  readonly pageSize?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A connection's subscription, as the store keeps it. */
export interface Subscription {
  readonly connectionId: string;
  readonly userId: string;
  /** The channel subscribed to: concrete, or ending in `*`. */
  readonly channel: string;
  /** Position of the rule that allowed it (wildcard subscriptions receive only channels of that rule). */
  readonly rule: number;
  /** The rule keeps presence (concrete channels only). */
  readonly presence: boolean;
  /** Epoch seconds: the connection's registry `ttl`. */
  readonly ttl: number;
}

/** A presence change the store observed: the user's first connection joined, or its last one left. */
export interface PresenceChange {
  readonly channel: string;
  readonly userId: string;
  readonly event: 'joined' | 'left';
}

/** A message kept for replay. */
export interface HistoryEntry {
  readonly id: number;
  /** The channel message frame as delivered live (without `replay`). */
  readonly frame: string;
}

/** A page of a channel's members. */
export interface MembersPage {
  readonly members: string[];
  /** Opaque: where the next page starts; null after the last. */
  readonly cursor: string | null;
}

/** Where a subscriber read resumes: DynamoDB's `LastEvaluatedKey` of the table's keys. */
export type SubscriptionCursor = Record<string, { S: string }>;

/** One page of a shard's subscribers. */
export interface SubscriberPage {
  readonly ids: string[];
  /** The key this page was read from (undefined for the first). */
  readonly startKey?: SubscriptionCursor;
}

const K = { PK: 'pk', SK: 'sk' } as const;
const MEMBERS_PAGE = 100;

export class ChannelStore {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  readonly shards: number;
  private readonly pageSize: number;
  private readonly now: () => number;

  constructor(options: ChannelStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.shards = options.shards ?? ChannelsTable.SHARDS;
    this.pageSize = options.pageSize ?? 500;
    this.now = options.now ?? Date.now;
  }

  /** The shard a connection's subscriptions live in (stable per connection). */
  shardOf(connectionId: string): number {
    return createHash('sha1').update(connectionId).digest().readUInt32BE(0) % this.shards;
  }

  /**
   * Subscribes; subscribing again is a no-op. Answers `joined` when this was the user's first
   * connection on a presence channel.
   */
  async subscribe(subscription: Subscription): Promise<PresenceChange | undefined> {
    try {
      await this.client.send(new PutItemCommand({
        TableName: this.tableName,
        Item: {
          [K.PK]: { S: subscriptionKey(subscription.channel, this.shardOf(subscription.connectionId)) },
          [K.SK]: { S: subscription.connectionId },
          [ChannelsTable.CONNECTION_ID]: { S: subscription.connectionId },
          userId: { S: subscription.userId },
          rule: { N: String(subscription.rule) },
          // Small items cost fewer read units per publish: the channel is in `pk`, presence only when kept.
          ...(subscription.presence ? { presence: { BOOL: true } } : {}),
          ttl: { N: String(subscription.ttl) },
        },
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': K.PK },
      }));
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined; // already subscribed
      throw err;
    }
    if (!subscription.presence) return undefined;
    // Every connection's ttl is its connect time plus the same lifetime, so the newest subscriber's is the latest.
    const answer = await this.client.send(new UpdateItemCommand({
      TableName: this.tableName,
      Key: presenceKey(subscription.channel, subscription.userId),
      UpdateExpression: 'ADD #n :one SET #ttl = :ttl',
      ExpressionAttributeNames: { '#n': 'n', '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':one': { N: '1' }, ':ttl': { N: String(subscription.ttl) } },
      ReturnValues: 'UPDATED_NEW',
    }));
    return Number(answer.Attributes?.n?.N) === 1 ? { channel: subscription.channel, userId: subscription.userId, event: 'joined' } : undefined;
  }

  /**
   * Unsubscribes; an unknown subscription is not an error. Answers `left` when this was the user's
   * last connection on a presence channel.
   */
  async unsubscribe(connectionId: string, channel: string): Promise<PresenceChange | undefined> {
    const answer = await this.client.send(new DeleteItemCommand({
      TableName: this.tableName,
      Key: { [K.PK]: { S: subscriptionKey(channel, this.shardOf(connectionId)) }, [K.SK]: { S: connectionId } },
      ReturnValues: 'ALL_OLD',
    }));
    const old = answer.Attributes;
    if (!old || old.presence?.BOOL !== true) return undefined;
    return this.leave(channel, old.userId?.S ?? '');
  }

  /** Every subscription of a connection (the `byConnection` index), e.g. on `$disconnect`. */
  async subscriptionsOf(connectionId: string): Promise<string[]> {
    const channels: string[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: ChannelsTable.CONNECTION_INDEX,
        KeyConditionExpression: '#c = :c',
        ExpressionAttributeNames: { '#c': ChannelsTable.CONNECTION_ID },
        ExpressionAttributeValues: { ':c': { S: connectionId } },
        ExclusiveStartKey: startKey,
      }));
      for (const item of page.Items ?? []) {
        const key = item[K.PK]?.S;
        if (key?.startsWith('sub#')) channels.push(key.slice('sub#'.length, key.lastIndexOf('#')));
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return channels;
  }

  /** Removes every subscription of a gone connection; answers the presence `left` changes. */
  async removeConnection(connectionId: string): Promise<PresenceChange[]> {
    const changes: PresenceChange[] = [];
    for (const channel of await this.subscriptionsOf(connectionId)) {
      const change = await this.unsubscribe(connectionId, channel);
      if (change) changes.push(change);
    }
    return changes;
  }

  /**
   * The live subscribers of one shard of a channel (concrete or `prefix/*`), a page of ids at a time.
   * With `rule`, only subscriptions allowed by that rule (for wildcard subscribers of a channel).
   */
  async *subscribers(channel: string, shard: number, rule?: number): AsyncGenerator<string[]> {
    for await (const page of this.subscriberPages(channel, shard, rule)) if (page.ids.length > 0) yield page.ids;
  }

  /**
   * The same, page by page from `startKey` (where a cut-off reader stopped), each page with the key it
   * started at, so a queue worker stopped by its deadline can hand the rest on.
   */
  async *subscriberPages(channel: string, shard: number, rule?: number, startKey?: SubscriptionCursor): AsyncGenerator<SubscriberPage> {
    let key: Record<string, AttributeValue> | undefined = startKey;
    const nowSeconds = this.now() / 1000;
    do {
      const page = await this.client.send(new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :pk',
        ProjectionExpression: '#sk, #ttl, #rule',
        ExpressionAttributeNames: { '#pk': K.PK, '#sk': K.SK, '#ttl': 'ttl', '#rule': 'rule' },
        ExpressionAttributeValues: { ':pk': { S: subscriptionKey(channel, shard) } },
        Limit: this.pageSize,
        ExclusiveStartKey: key,
      }));
      const ids: string[] = [];
      for (const item of page.Items ?? []) {
        if (Number(item.ttl?.N) < nowSeconds) continue;
        if (rule !== undefined && Number(item.rule?.N) !== rule) continue;
        const id = item[K.SK]?.S;
        if (id) ids.push(id);
      }
      yield { ids, startKey: key as SubscriptionCursor | undefined };
      key = page.LastEvaluatedKey;
    } while (key);
  }

  /** Whether a connection holds this subscription. */
  async isSubscribed(connectionId: string, channel: string): Promise<boolean> {
    const { Item } = await this.client.send(new GetItemCommand({
      TableName: this.tableName,
      Key: { [K.PK]: { S: subscriptionKey(channel, this.shardOf(connectionId)) }, [K.SK]: { S: connectionId } },
      ProjectionExpression: '#sk',
      ExpressionAttributeNames: { '#sk': K.SK },
      ConsistentRead: true,
    }));
    return Item !== undefined;
  }

  /** The channel's next message id: 1, 2, 3... (an atomic counter, kept without TTL so ids never restart). */
  async nextId(channel: string): Promise<number> {
    const answer = await this.client.send(new UpdateItemCommand({
      TableName: this.tableName,
      Key: { [K.PK]: { S: `channel#${channel}` }, [K.SK]: { S: 'seq' } },
      UpdateExpression: 'ADD #seq :one',
      ExpressionAttributeNames: { '#seq': 'seq' },
      ExpressionAttributeValues: { ':one': { N: '1' } },
      ReturnValues: 'UPDATED_NEW',
    }));
    return Number(answer.Attributes?.seq?.N);
  }

  /** The last id given out on a channel (0: none yet). */
  async lastId(channel: string): Promise<number> {
    const { Item } = await this.client.send(new GetItemCommand({
      TableName: this.tableName,
      Key: { [K.PK]: { S: `channel#${channel}` }, [K.SK]: { S: 'seq' } },
      ConsistentRead: true,
    }));
    return Number(Item?.seq?.N ?? 0);
  }

  /** Keeps a message for replay, and drops the one that fell out of the last `size`. */
  async remember(channel: string, entry: HistoryEntry, size: number, maxAgeSeconds: number): Promise<void> {
    await this.client.send(new PutItemCommand({
      TableName: this.tableName,
      Item: {
        [K.PK]: { S: `history#${channel}` },
        [K.SK]: { S: historySortKey(entry.id) },
        frame: { S: entry.frame },
        ttl: { N: String(Math.floor(this.now() / 1000) + maxAgeSeconds) },
      },
    }));
    if (entry.id > size) {
      await this.client.send(new DeleteItemCommand({
        TableName: this.tableName,
        Key: { [K.PK]: { S: `history#${channel}` }, [K.SK]: { S: historySortKey(entry.id - size) } },
      }));
    }
  }

  /**
   * The kept messages after `since`, oldest first, and whether some after `since` are no longer
   * kept (`gap`): the first kept one is past since + 1 while ids beyond `since` were given out.
   */
  async replay(channel: string, since: number, size: number): Promise<{ entries: HistoryEntry[]; gap: boolean }> {
    const nowSeconds = this.now() / 1000;
    const entries: HistoryEntry[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :pk AND #sk > :since',
        ExpressionAttributeNames: { '#pk': K.PK, '#sk': K.SK },
        ExpressionAttributeValues: { ':pk': { S: `history#${channel}` }, ':since': { S: historySortKey(since) } },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }));
      for (const item of page.Items ?? []) {
        const id = Number(item[K.SK]?.S);
        if (Number(item.ttl?.N) < nowSeconds || !item.frame?.S) continue;
        entries.push({ id, frame: item.frame.S });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && entries.length < size);
    const last = await this.lastId(channel);
    const firstKept = entries.length > 0 ? entries[0].id : last + 1;
    return { entries: entries.slice(0, size), gap: last > since && firstKept > since + 1 };
  }

  /** A page of the channel's members (users with at least one subscribed connection), by user id. */
  async members(channel: string, cursor?: string): Promise<MembersPage> {
    const nowSeconds = this.now() / 1000;
    const page = await this.client.send(new QueryCommand({
      TableName: this.tableName,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': K.PK },
      ExpressionAttributeValues: { ':pk': { S: `presence#${channel}` } },
      Limit: MEMBERS_PAGE,
      ExclusiveStartKey: cursor ? { [K.PK]: { S: `presence#${channel}` }, [K.SK]: { S: decodeCursor(cursor) } } : undefined,
    }));
    const members = (page.Items ?? [])
      .filter((item) => Number(item.n?.N) > 0 && !(Number(item.ttl?.N) < nowSeconds))
      .map((item) => item[K.SK]?.S ?? '');
    const next = page.LastEvaluatedKey?.[K.SK]?.S;
    return { members, cursor: next ? Buffer.from(next, 'utf8').toString('base64url') : null };
  }

  /**
   * Counts one client fan-out request of `userId` in the current fixed window; answers whether it is
   * within `limit`. One UpdateItem per request, shared by every container and connection of the user.
   */
  async withinRate(userId: string, limit: number, windowSeconds: number): Promise<boolean> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const window = nowSeconds - (nowSeconds % windowSeconds);
    const answer = await this.client.send(new UpdateItemCommand({
      TableName: this.tableName,
      Key: { [K.PK]: { S: `rate#${userId}` }, [K.SK]: { S: String(window) } },
      UpdateExpression: 'ADD #n :one SET #ttl = :ttl',
      ExpressionAttributeNames: { '#n': 'n', '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':one': { N: '1' }, ':ttl': { N: String(window + 2 * windowSeconds) } },
      ReturnValues: 'UPDATED_NEW',
    }));
    return Number(answer.Attributes?.n?.N) <= limit;
  }

  /** Deletes subscription items by exact key (a connection found gone while publishing), 25 at a time. */
  async removeSubscriptions(channel: string, connectionIds: readonly string[]): Promise<void> {
    for (let i = 0; i < connectionIds.length; i += 25) {
      const requests = connectionIds.slice(i, i + 25).map((id) => ({
        DeleteRequest: { Key: { [K.PK]: { S: subscriptionKey(channel, this.shardOf(id)) }, [K.SK]: { S: id } } },
      }));
      await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }));
    }
  }

  private async leave(channel: string, userId: string): Promise<PresenceChange | undefined> {
    const answer = await this.client.send(new UpdateItemCommand({
      TableName: this.tableName,
      Key: presenceKey(channel, userId),
      UpdateExpression: 'ADD #n :minus',
      ExpressionAttributeNames: { '#n': 'n' },
      ExpressionAttributeValues: { ':minus': { N: '-1' } },
      ReturnValues: 'UPDATED_NEW',
    }));
    if (Number(answer.Attributes?.n?.N) > 0) return undefined;
    // The last connection left: remove the member, unless another connection joined meanwhile.
    await this.client.send(new DeleteItemCommand({
      TableName: this.tableName,
      Key: presenceKey(channel, userId),
      ConditionExpression: '#n <= :zero',
      ExpressionAttributeNames: { '#n': 'n' },
      ExpressionAttributeValues: { ':zero': { N: '0' } },
    })).catch((err: unknown) => { if (!(err instanceof ConditionalCheckFailedException)) throw err; });
    return { channel, userId, event: 'left' };
  }
}

function subscriptionKey(channel: string, shard: number): string {
  return `sub#${channel}#${shard}`;
}

function presenceKey(channel: string, userId: string): Record<string, AttributeValue> {
  return { [K.PK]: { S: `presence#${channel}` }, [K.SK]: { S: userId } };
}

function historySortKey(id: number): string {
  return String(id).padStart(16, '0');
}

function decodeCursor(cursor: string): string {
  const value = Buffer.from(cursor, 'base64url').toString('utf8');
  if (value.length === 0 || value.length > 512) throw new RangeError('bad cursor');
  return value;
}
