import { ApiGatewayManagementApiClient, DeleteConnectionCommand, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import {
  AttributeValue, ConditionalCheckFailedException, DeleteItemCommand, DynamoDBClient, GetItemCommand, ScanCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { Environment, requiredSetting } from './configuration';
import { ApiLocation, callbackUrl, connectionsApiClient } from './connections-api';
import { Env, Registry } from './environment';

/** What a reauth proved: who, until when, with which claims. */
export interface ReauthenticatedUser {
  readonly userId: string;
  /** Epoch seconds: a reauth always moves the expiry to a definite time. */
  readonly expiresAt: number;
  readonly claims: Readonly<Record<string, string>>;
}

/** A reauth token names another user than the connection's, or the connection is not registered. */
export class ReauthRefusedError extends Error {
  constructor(readonly reason: 'OTHER_USER' | 'UNKNOWN_CONNECTION') {
    super(`Reauth refused: ${reason}`);
    this.name = 'ReauthRefusedError';
  }
}

export interface ConnectionExpiryOptions {
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly connections: ApiGatewayManagementApiClient;
  /** Milliseconds a close (or its notice) may take. @default 3000 */
  readonly closeTimeoutMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** How closing a connection went. */
export type CloseOutcome = 'closed' | 'gone' | 'failed';

/**
 * A connection must not outlive its token. The registry row's `expiresAt` is the truth: the
 * authorizer context keeps the `$connect` token's expiry for the connection's whole life, but a
 * `reauth` moves the row's. This reads it, moves it (for the same user only), finds rows past it,
 * and closes their connections through @connections (DeleteConnection).
 */
export class ConnectionExpiry {
  /** The container's instance for `location`'s @connections endpoint, from the construct's environment. */
  static fromEnvironment(location: ApiLocation, env: Environment): ConnectionExpiry {
    const endpoint = callbackUrl(location, env);
    let expiry = instances.get(endpoint);
    if (!expiry) {
      expiry = new ConnectionExpiry({
        dynamo: new DynamoDBClient({}),
        tableName: requiredSetting(env, Env.TABLE_NAME),
        connections: connectionsApiClient(location, env),
      });
      instances.set(endpoint, expiry);
    }
    return expiry;
  }

  private readonly dynamo: DynamoDBClient;
  private readonly tableName: string;
  private readonly connections: ApiGatewayManagementApiClient;
  private readonly closeTimeoutMs: number;
  private readonly now: () => number;

  constructor(options: ConnectionExpiryOptions) {
    this.dynamo = options.dynamo;
    this.tableName = options.tableName;
    this.connections = options.connections;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 3_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Whether the connection's token has expired. The registry row decides, since a reauth may have
   * moved its expiry either way (later, or earlier: a shorter-lived token stops the connection
   * sooner); without a row, or a row without an expiry, `contextExpiresAt` (the `$connect` token's
   * `exp`) does. One consistent GetItem per message.
   */
  async hasExpired(connectionId: string, contextExpiresAt: number | undefined): Promise<boolean> {
    const nowSeconds = this.now() / 1000;
    const { Item } = await this.dynamo.send(new GetItemCommand({
      TableName: this.tableName,
      Key: { [Registry.PARTITION_KEY]: { S: connectionId } },
      ProjectionExpression: '#exp',
      ExpressionAttributeNames: { '#exp': Registry.EXPIRES_AT },
      ConsistentRead: true,
    }));
    const registered = Item?.[Registry.EXPIRES_AT]?.N;
    const expiresAt = registered !== undefined ? Number(registered) : contextExpiresAt;
    return expiresAt !== undefined && !(expiresAt >= nowSeconds);
  }

  /**
   * Moves the connection's expiry (and claims) to those of a fresh token of the same user. A token
   * of another user, or a connection the registry does not hold, is refused: the row is untouched.
   */
  async extend(connectionId: string, user: ReauthenticatedUser): Promise<void> {
    try {
      await this.dynamo.send(new UpdateItemCommand({
        TableName: this.tableName,
        Key: { [Registry.PARTITION_KEY]: { S: connectionId } },
        UpdateExpression: 'SET #exp = :exp, #claims = :claims',
        ConditionExpression: '#user = :user',
        ExpressionAttributeNames: { '#user': Registry.USER_ID, '#exp': Registry.EXPIRES_AT, '#claims': Registry.CLAIMS },
        ExpressionAttributeValues: { ':user': { S: user.userId }, ':exp': { N: String(user.expiresAt) }, ':claims': { M: claimsAttribute(user.claims) } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }));
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      throw new ReauthRefusedError(err.Item ? 'OTHER_USER' : 'UNKNOWN_CONNECTION');
    }
  }

  /** Ids of connections whose token has expired, read a page at a time. */
  async *expired(pageSize = 500): AsyncGenerator<string> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.dynamo.send(new ScanCommand({
        TableName: this.tableName,
        Limit: pageSize,
        ExclusiveStartKey: startKey,
        ProjectionExpression: '#id',
        FilterExpression: '#exp < :now',
        ExpressionAttributeNames: { '#id': Registry.PARTITION_KEY, '#exp': Registry.EXPIRES_AT },
        ExpressionAttributeValues: { ':now': { N: String(Math.floor(this.now() / 1000)) } },
      }));
      for (const item of page.Items ?? []) {
        const id = item[Registry.PARTITION_KEY]?.S;
        if (id) yield id;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /**
   * Closes a connection (DeleteConnection; its `$disconnect` follows with 1000), after sending it
   * `notice` when given, and deletes its row, since `$disconnect` is delivered best effort.
   */
  async close(connectionId: string, notice?: string): Promise<CloseOutcome> {
    if (notice !== undefined) {
      // Best effort: the close below matters, the notice is a courtesy.
      await this.connections.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(notice) }),
        { abortSignal: AbortSignal.timeout(this.closeTimeoutMs) }).catch(() => undefined);
    }
    let outcome: CloseOutcome;
    try {
      await this.connections.send(new DeleteConnectionCommand({ ConnectionId: connectionId }),
        { abortSignal: AbortSignal.timeout(this.closeTimeoutMs) });
      outcome = 'closed';
    } catch (err) {
      outcome = isGone(err) ? 'gone' : 'failed';
    }
    if (outcome !== 'failed') {
      await this.dynamo.send(new DeleteItemCommand({ TableName: this.tableName, Key: { [Registry.PARTITION_KEY]: { S: connectionId } } }));
    }
    return outcome;
  }
}

const instances = new Map<string, ConnectionExpiry>();

function claimsAttribute(claims: Readonly<Record<string, string>>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(claims).map(([name, value]) => [name, { S: value }]));
}

/** SDK v3 errors carry no `statusCode`: a gone connection is named, or has status 410. */
function isGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'GoneException' || e?.$metadata?.httpStatusCode === 410;
}
