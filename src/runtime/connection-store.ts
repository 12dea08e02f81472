import { AttributeValue, DeleteItemCommand, DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { Environment, optionalSetting, requiredSetting } from './configuration';
import { Env, Registry } from './environment';

/** One row of the connection registry. */
export interface ConnectionRow {
  readonly connectionId: string;
  readonly userId: string;
  /** Epoch milliseconds, as API Gateway reports it. */
  readonly connectedAt: number;
  /** Epoch seconds after which DynamoDB TTL may delete the row. */
  readonly ttl: number;
  /** The token's `exp`, in epoch seconds, when it has one. */
  readonly expiresAt?: number;
  /** The configured claims from the authorizer context. */
  readonly claims?: Readonly<Record<string, string>>;
}

/**
 * The row for a connection that just opened. `ttl` counts from now, not from `connectedAt`, so a
 * retried `$connect` never writes a row that is already due for deletion.
 */
export function connectionRow(
  connection: { readonly connectionId: string; readonly connectedAt: number },
  user: { readonly userId: string; readonly expiresAt?: number; readonly claims: Readonly<Record<string, string>> },
  ttlSeconds: number,
  nowMs: number = Date.now(),
): ConnectionRow {
  return {
    connectionId: connection.connectionId,
    userId: user.userId,
    connectedAt: connection.connectedAt,
    ttl: Math.floor(nowMs / 1000) + ttlSeconds,
    expiresAt: user.expiresAt,
    claims: user.claims,
  };
}

export interface ConnectionStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** @default Registry.USER_INDEX */
  readonly userIndexName?: string;
  /** Most rows read per Scan or Query page, so one page never holds the whole audience. @default 500 */
  readonly pageSize?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Where a scan resumes: DynamoDB's `LastEvaluatedKey` (the registry's key only). */
export type ScanCursor = Record<string, AttributeValue>;

/** One page of recipients from a scan segment. */
export interface RecipientPage {
  /** The live connection ids of the page (expired rows skipped). */
  readonly ids: readonly string[];
  /** The cursor this page was read from; undefined for the segment's first page. */
  readonly startKey?: ScanCursor;
  /** The cursor of the next page; undefined after the last. */
  readonly nextKey?: ScanCursor;
}

/** The attributes a reader needs: who to post to and whether the row is still live. */
const READ_PROJECTION = {
  ProjectionExpression: '#id, #ttl, #exp',
  // `ttl` is a DynamoDB reserved word, so every attribute goes through a placeholder.
  ExpressionAttributeNames: { '#id': Registry.PARTITION_KEY, '#ttl': Registry.TTL, '#exp': Registry.EXPIRES_AT },
};

/**
 * The connection registry: one DynamoDB item per open connection, with a GSI on the user id.
 * Writes are idempotent (API Gateway may deliver `$connect`/`$disconnect` more than once), and
 * reads skip rows whose `ttl` or `expiresAt` has passed because TTL deletion lags by up to days.
 */
export class ConnectionStore {
  static fromEnvironment(env: Environment): ConnectionStore {
    return new ConnectionStore({
      client: new DynamoDBClient({}),
      tableName: requiredSetting(env, Env.TABLE_NAME),
      userIndexName: optionalSetting(env, Env.USER_INDEX_NAME),
    });
  }

  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly userIndexName: string;
  private readonly pageSize: number;
  private readonly now: () => number;

  constructor(options: ConnectionStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.userIndexName = options.userIndexName ?? Registry.USER_INDEX;
    this.pageSize = options.pageSize ?? 500;
    this.now = options.now ?? Date.now;
  }

  /** Records a connection; registering the same id again replaces the row. */
  async register(row: ConnectionRow): Promise<void> {
    const item: Record<string, AttributeValue> = {
      [Registry.PARTITION_KEY]: { S: row.connectionId },
      [Registry.USER_ID]: { S: row.userId },
      [Registry.CONNECTED_AT]: { N: String(row.connectedAt) },
      [Registry.TTL]: { N: String(row.ttl) },
    };
    if (row.expiresAt !== undefined) item[Registry.EXPIRES_AT] = { N: String(row.expiresAt) };
    if (row.claims && Object.keys(row.claims).length > 0) {
      item[Registry.CLAIMS] = { M: Object.fromEntries(Object.entries(row.claims).map(([name, value]) => [name, { S: value }])) };
    }
    await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: item }));
  }

  /** Forgets a connection; removing an unknown id is not an error. */
  async remove(connectionId: string): Promise<void> {
    await this.client.send(new DeleteItemCommand({
      TableName: this.tableName,
      Key: { [Registry.PARTITION_KEY]: { S: connectionId } },
    }));
  }

  /**
   * The ids of every live connection, read a page at a time. With `segments` > 1 the table is read
   * by that many parallel scan segments, merged as their pages arrive; at most two pages per
   * segment are held at once (the one being drained and the next, read ahead).
   */
  async *all(segments = 1): AsyncGenerator<string> {
    if (segments <= 1) {
      for await (const page of this.segment(0, 1)) yield* page.ids;
      return;
    }
    const readers = Array.from({ length: segments }, (_, s) => this.segment(s, segments)[Symbol.asyncIterator]());
    const pending = new Map<number, Promise<{ segment: number; page: IteratorResult<RecipientPage> }>>();
    const readAhead = (segment: number): void => {
      const read = readers[segment].next().then((page) => ({ segment, page }));
      read.catch(() => undefined); // the race below reports it; no unhandled rejection meanwhile
      pending.set(segment, read);
    };
    readers.forEach((_, segment) => readAhead(segment));
    while (pending.size > 0) {
      const { segment, page } = await Promise.race(pending.values());
      if (page.done) {
        pending.delete(segment);
        continue;
      }
      readAhead(segment);
      yield* page.value.ids;
    }
  }

  /**
   * One segment of a parallel scan, page by page, from `startKey` (a cursor a previous reader
   * stopped at) when given. Each page carries the key it started at, so a reader cut off mid-page can
   * resume there (re-reading that page: its recipients before the cut may be posted twice).
   */
  async *segment(segment: number, totalSegments: number, startKey?: ScanCursor): AsyncGenerator<RecipientPage> {
    let key: Record<string, AttributeValue> | undefined = startKey;
    do {
      const page = await this.client.send(new ScanCommand({
        TableName: this.tableName,
        Limit: this.pageSize,
        ExclusiveStartKey: key,
        ...(totalSegments > 1 ? { Segment: segment, TotalSegments: totalSegments } : {}),
        ...READ_PROJECTION,
      }));
      yield { ids: this.liveIds(page.Items), startKey: key, nextKey: page.LastEvaluatedKey };
      key = page.LastEvaluatedKey;
    } while (key);
  }

  /** The ids of the live connections of one user, read a page at a time from the `byUser` index. */
  async *ofUser(userId: string): AsyncGenerator<string> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new QueryCommand({
        TableName: this.tableName,
        IndexName: this.userIndexName,
        KeyConditionExpression: '#user = :user',
        ExpressionAttributeValues: { ':user': { S: userId } },
        Limit: this.pageSize,
        ExclusiveStartKey: startKey,
        ...READ_PROJECTION,
        ExpressionAttributeNames: { ...READ_PROJECTION.ExpressionAttributeNames, '#user': Registry.USER_ID },
      }));
      yield* this.liveIds(page.Items);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /**
   * Whether a connection's row is live (`live`), past its `ttl` or token expiry (`expired`), or
   * absent (`unknown`). A Query on the key with a consistent read rather than GetItem, so that
   * senders need no permission beyond the Query they already have.
   */
  async state(connectionId: string): Promise<'live' | 'expired' | 'unknown'> {
    const page = await this.client.send(new QueryCommand({
      TableName: this.tableName,
      KeyConditionExpression: '#id = :id',
      ExpressionAttributeValues: { ':id': { S: connectionId } },
      ConsistentRead: true,
      ...READ_PROJECTION,
    }));
    if (!page.Items || page.Items.length === 0) return 'unknown';
    return this.liveIds(page.Items).length > 0 ? 'live' : 'expired';
  }

  private liveIds(items: Record<string, AttributeValue>[] = []): string[] {
    const nowSeconds = this.now() / 1000;
    const ids: string[] = [];
    for (const item of items) {
      const id = item[Registry.PARTITION_KEY]?.S;
      if (!id) continue;
      if (isPast(item[Registry.TTL], nowSeconds) || isPast(item[Registry.EXPIRES_AT], nowSeconds)) continue;
      ids.push(id);
    }
    return ids;
  }
}

function isPast(epochSeconds: AttributeValue | undefined, nowSeconds: number): boolean {
  const value = Number(epochSeconds?.N);
  return epochSeconds?.N !== undefined && Number.isFinite(value) && value < nowSeconds;
}
