import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { acknowledgeNag } from './nag-suppressions';
import { AccessPolicy, ChannelRuleConfig, ChannelsConfig, patternProblem } from './runtime/channel-policy';
import { ChannelsTable, Env } from './runtime/environment';

/**
 * Who may do something on a channel, or use a built-in action. Decided from the connection's
 * verified user id and claims (as the registry holds them), never from what a client sends.
 */
export class Access {
  /** Every connected (authenticated) user. */
  public static authenticated(): Access {
    return new Access({ kind: 'authenticated' });
  }

  /** Nobody: e.g. a feed only backends publish to. */
  public static none(): Access {
    return new Access({ kind: 'none' });
  }

  /**
   * Users whose claim `name` has one of `values`. The claim must be one of the auth's `contextClaims`,
   * so the registry keeps it.
   * @param name the claim, e.g. 'role'
   * @param values the accepted values, e.g. 'admin'
   */
  public static claim(name: string, ...values: string[]): Access {
    if (!Token.isUnresolved(name) && !/^[A-Za-z0-9_:.-]{1,128}$/.test(name)) {
      throw new Error(`Access.claim: claim name '${name}' is not valid; use letters, digits, '_', ':', '.' or '-'.`);
    }
    if (values.length === 0) throw new Error(`Access.claim('${name}'): name at least one accepted value, e.g. Access.claim('${name}', 'admin').`);
    return new Access({ kind: 'claim', claim: name, values });
  }

  /**
   * The rule's `authorizer` function decides (AppSync's onSubscribe/onPublish). It is invoked with
   * `{"action","channel","userId","claims"}` and answers `{"allow":true}` to allow; anything else,
   * or an error, refuses.
   */
  public static custom(): Access {
    return new Access({ kind: 'function' });
  }

  private constructor(
    /** @internal */ public readonly _policy: AccessPolicy,
  ) {}
}

/** Options of a channel rule. */
export interface ChannelRuleOptions {
  /**
   * Who may subscribe (and read presence).
   * @default Access.authenticated(), or Access.custom() when `authorizer` is set
   */
  readonly subscribe?: Access;

  /**
   * Who may publish from a client (backends publish with `grantSend`).
   * @default Access.authenticated(), or Access.custom() when `authorizer` is set
   */
  readonly publish?: Access;

  /**
   * Members receive `joined`/`left` events (per user, not per connection), and
   * `{"action":"presence","channel":...}` answers the members, a page at a time.
   * @default false
   */
  readonly presence?: boolean;

  /**
   * Keep the last this many messages of each channel, so `subscribe` with `since` replays what a
   * client missed (1 to 1000).
   * @default - no history
   */
  readonly historySize?: number;

  /**
   * How long a kept message may be replayed (it is deleted by TTL after that).
   * @default Duration.hours(24)
   */
  readonly historyMaxAge?: Duration;

  /**
   * Allow subscriptions to `<prefix>/*` where the pattern has `*` as its last segment (e.g. `rooms/*`
   * receives every room). A wildcard subscriber receives the channels this rule governs only.
   * @default false
   */
  readonly wildcardSubscriptions?: boolean;

  /**
   * A function that decides `Access.custom()` policies; the message handler may invoke it.
   * @default - none
   */
  readonly authorizer?: lambda.IFunction;

  /**
   * How long a message handler container keeps a decision of `authorizer` (per action, channel,
   * user and claims). Zero asks on every request.
   * @default Duration.seconds(0)
   */
  readonly authorizerCacheTtl?: Duration;
}

/**
 * A family of channels and who may use them. Patterns are `/`-separated segments: literal,
 * `*` (any one segment), `${userId}` (the caller's own user id) or `${claim:name}` (the caller's
 * claim), each a whole segment. The first rule matching a channel decides; no match refuses.
 */
export class ChannelRule {
  /**
   * Channels matching `pattern`, e.g. `rooms/*`, `users/${userId}`, `tenants/${claim:tenant}/*`.
   * @param pattern the channels this rule governs
   * @param options policies, presence, history
   */
  public static pattern(pattern: string, options: ChannelRuleOptions = {}): ChannelRule {
    const problem = patternProblem(pattern);
    if (problem) throw new Error(`ChannelRule.pattern('${pattern}'): ${problem}.`);
    const size = options.historySize;
    if (size !== undefined && !Token.isUnresolved(size) && !(Number.isInteger(size) && size >= 1 && size <= 1000)) {
      throw new Error(`ChannelRule.pattern('${pattern}'): historySize is ${size}; use a whole number from 1 to 1000, or leave it out for no history.`);
    }
    if (options.historyMaxAge && size === undefined) {
      throw new Error(`ChannelRule.pattern('${pattern}'): historyMaxAge needs historySize; set historySize (e.g. 50) or drop historyMaxAge.`);
    }
    const maxAge = options.historyMaxAge?.toSeconds();
    if (maxAge !== undefined && !Token.isUnresolved(maxAge) && maxAge < 1) {
      throw new Error(`ChannelRule.pattern('${pattern}'): historyMaxAge must be at least one second.`);
    }
    if (options.wildcardSubscriptions && !pattern.endsWith('/*')) {
      throw new Error(`ChannelRule.pattern('${pattern}'): wildcardSubscriptions needs a pattern ending in '/*', e.g. 'rooms/*'.`);
    }
    const custom = [options.subscribe, options.publish].some((access) => access?._policy.kind === 'function');
    if (custom && !options.authorizer) {
      throw new Error(`ChannelRule.pattern('${pattern}'): Access.custom() needs an authorizer function; set authorizer, or use another Access.`);
    }
    return new ChannelRule(pattern, options);
  }

  private constructor(
    /** The channels this rule governs. */
    public readonly channelPattern: string,
    private readonly options: ChannelRuleOptions,
  ) {}

  /** @internal */
  public get _authorizer(): lambda.IFunction | undefined {
    return this.options.authorizer;
  }

  /** @internal */
  public _config(): ChannelRuleConfig {
    const o = this.options;
    const fallback: AccessPolicy = o.authorizer ? { kind: 'function' } : { kind: 'authenticated' };
    return {
      pattern: this.channelPattern,
      subscribe: o.subscribe?._policy ?? fallback,
      publish: o.publish?._policy ?? fallback,
      ...(o.presence ? { presence: true } : {}),
      ...(o.historySize ? { history: { size: o.historySize, maxAgeSeconds: (o.historyMaxAge ?? Duration.hours(24)).toSeconds() } } : {}),
      ...(o.wildcardSubscriptions ? { wildcardSubscriptions: true } : {}),
      ...(o.authorizer ? { authorizer: o.authorizer.functionName, authorizerCacheSeconds: o.authorizerCacheTtl?.toSeconds() ?? 0 } : {}),
    };
  }
}

/** Policies of the built-in client actions. */
export interface ActionPolicies {
  /**
   * Who may `broadcast` to every connection.
   * @default Access.authenticated()
   */
  readonly broadcast?: Access;

  /**
   * Who may `send` to one user.
   * @default Access.authenticated()
   */
  readonly send?: Access;
}

/** Properties of `Channels`. */
export interface ChannelsProps {
  /**
   * The channel rules, first match wins.
   * @default - no channels: every subscribe and publish is refused
   */
  readonly rules?: ChannelRule[];

  /**
   * Policies of broadcast and send.
   * @default - both open to every connected user
   */
  readonly actions?: ActionPolicies;

  /**
   * Most client `broadcast` and `publish` requests one user may make per 10 seconds, across all of
   * its connections; over it, a `RateLimited` error frame. 0 turns the limit off.
   * @default 100
   */
  readonly clientFanOutRateLimit?: number;

  /**
   * The claims the registry keeps (the auth's `contextClaims`): every claim a rule or policy names
   * must be one of them, or it could never match.
   * @default - not checked
   */
  readonly contextClaims?: string[];

  /**
   * Partitions each channel's subscriptions are spread over: publishing reads them in parallel
   * (inline), or hands one to each fan-out worker (queue mode). Changing it strands existing
   * subscriptions until their connections reconnect.
   * @default 4
   */
  readonly subscriptionShards?: number;

  /**
   * Put `Connected`, `Disconnected`, `Joined` and `Left` events (source `authenticated-websocket-api`)
   * on the account's default EventBridge bus, or on `lifecycleEventBus`.
   * @default false
   */
  readonly lifecycleEvents?: boolean;

  /**
   * The bus lifecycle events go to; setting it turns `lifecycleEvents` on.
   * @default - the account's default bus, when `lifecycleEvents` is true
   */
  readonly lifecycleEventBus?: events.IEventBus;

  /**
   * Encrypt the channels table with this key.
   * @default - an AWS managed key
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * Keep continuous backups of the channels table.
   * @default false
   */
  readonly pointInTimeRecovery?: boolean;

  /**
   * What happens to the channels table when it leaves the stack.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** The largest CHANNELS_CONFIG the handlers take: Lambda allows 4 KB of environment per function. */
const MAX_CONFIG_CHARS = 3_000;
const TABLE_ACTIONS = {
  message: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem'],
  publisher: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem'],
  connection: ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem'],
  fanOutWorker: ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem'],
};

/**
 * Channels of an `AuthenticatedWebSocketApi`: the channels table (subscriptions, presence,
 * history, message ids and rate windows) and the settings the bundled handlers read.
 */
export class Channels extends Construct {
  /**
   * The channels table: `pk`/`sk`, and the GSI `byConnection` listing a connection's subscriptions.
   */
  public readonly table: dynamodb.Table;

  /**
   * The bus lifecycle events go to.
   * @default - none, without `lifecycleEvents`
   */
  public readonly lifecycleEventBus?: events.IEventBus;

  private readonly config: string;
  private readonly props: ChannelsProps;

  /**
   * @param scope the API
   * @param id the construct id
   * @param props rules, action policies, rate limit
   */
  constructor(scope: Construct, id: string, props: ChannelsProps = {}) {
    super(scope, id);
    this.props = props;
    const rateLimit = props.clientFanOutRateLimit;
    if (rateLimit !== undefined && !Token.isUnresolved(rateLimit) && !(Number.isInteger(rateLimit) && rateLimit >= 0)) {
      throw new Error(`AuthenticatedWebSocketApi: clientFanOutRateLimit is ${rateLimit}; use a whole number of requests per 10 seconds (0 turns the limit off).`);
    }
    const shards = props.subscriptionShards;
    if (shards !== undefined && !Token.isUnresolved(shards) && !(Number.isInteger(shards) && shards >= 1 && shards <= 64)) {
      throw new Error(`AuthenticatedWebSocketApi: subscriptionShards is ${shards}; use a whole number from 1 to 64.`);
    }
    const config: ChannelsConfig = {
      rules: (props.rules ?? []).map((rule) => rule._config()),
      actions: {
        broadcast: props.actions?.broadcast?._policy ?? { kind: 'authenticated' },
        send: props.actions?.send?._policy ?? { kind: 'authenticated' },
      },
    };
    for (const [name, policy] of Object.entries(config.actions)) {
      if (policy.kind === 'function') throw new Error(`AuthenticatedWebSocketApi: actions.${name} cannot be Access.custom(); use authenticated(), none() or claim().`);
    }
    if (props.contextClaims) checkClaims(config, props.contextClaims);
    this.config = JSON.stringify(config);
    if (this.config.length > MAX_CONFIG_CHARS) {
      throw new Error(`AuthenticatedWebSocketApi: the channel rules take ${this.config.length} characters of the handlers' environment; the limit is ${MAX_CONFIG_CHARS}. Use fewer rules or shorter claim values.`);
    }

    if (props.lifecycleEvents === false && props.lifecycleEventBus) {
      throw new Error('AuthenticatedWebSocketApi: lifecycleEvents is false but lifecycleEventBus is set; drop one of them.');
    }
    if (props.lifecycleEventBus) this.lifecycleEventBus = props.lifecycleEventBus;
    else if (props.lifecycleEvents) this.lifecycleEventBus = events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: ChannelsTable.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: ChannelsTable.SORT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      ...(props.encryptionKey
        ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: dynamodb.TableEncryption.AWS_MANAGED }),
      timeToLiveAttribute: ChannelsTable.TTL,
      pointInTimeRecoverySpecification: props.pointInTimeRecovery ? { pointInTimeRecoveryEnabled: true } : undefined,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: ChannelsTable.CONNECTION_INDEX,
      partitionKey: { name: ChannelsTable.CONNECTION_ID, type: dynamodb.AttributeType.STRING },
      sortKey: { name: ChannelsTable.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      // The channel is in `pk`; unsubscribing reads the rest from the item it deletes.
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
    if (!props.pointInTimeRecovery) {
      acknowledgeNag(this.table, 'AwsSolutions-DDB3',
        'Subscriptions and presence live as long as their connections (at most 2 hours); history is a bounded replay buffer with a TTL. '
        + 'Set pointInTimeRecovery to keep backups.');
    }
  }

  /**
   * Gives the bundled handlers the channels table and settings, with least-privilege grants:
   * the message handler and publisher serve channels; the connection handler cleans up on `$disconnect`.
   * @internal
   */
  public _bindHandlers(handlers: {
    message: lambda.Function; publisher: lambda.Function; connection: lambda.Function; fanOutWorker?: lambda.Function; registry: dynamodb.ITable;
  }): void {
    const environment: Record<string, string> = {
      [Env.CHANNELS_TABLE_NAME]: this.table.tableName,
      [Env.CHANNELS_CONFIG]: this.config,
      [Env.CHANNEL_SHARDS]: String(this.props.subscriptionShards ?? ChannelsTable.SHARDS),
      [Env.CLIENT_FANOUT_RATE_LIMIT]: String(this.props.clientFanOutRateLimit ?? ChannelsTable.CLIENT_FANOUT_RATE_LIMIT),
      [Env.CLIENT_FANOUT_RATE_WINDOW_SECONDS]: String(ChannelsTable.CLIENT_FANOUT_RATE_WINDOW_SECONDS),
    };
    if (this.lifecycleEventBus) environment[Env.LIFECYCLE_EVENT_BUS_NAME] = this.lifecycleEventBus.eventBusName;
    const functions = {
      message: handlers.message,
      publisher: handlers.publisher,
      connection: handlers.connection,
      ...(handlers.fanOutWorker ? { fanOutWorker: handlers.fanOutWorker } : {}),
    };
    for (const [name, fn] of Object.entries(functions)) {
      for (const [key, value] of Object.entries(environment)) fn.addEnvironment(key, value);
      this.grantTable(fn, TABLE_ACTIONS[name as keyof typeof TABLE_ACTIONS]);
      this.lifecycleEventBus?.grantPutEventsTo(fn);
    }
    // $disconnect reads the registry's claims never, but removes rows of connections found gone while telling presence channels.
    iam.Grant.addToPrincipal({ grantee: handlers.connection, actions: ['dynamodb:BatchWriteItem'], resourceArns: [handlers.registry.tableArn] });
    for (const rule of this.props.rules ?? []) rule._authorizer?.grantInvoke(handlers.message);
  }

  private grantTable(grantee: iam.IGrantable, actions: string[]): void {
    const resourceArns = [this.table.tableArn];
    if (actions.includes('dynamodb:Query')) resourceArns.push(`${this.table.tableArn}/index/${ChannelsTable.CONNECTION_INDEX}`);
    iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
    this.props.encryptionKey?.grant(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey',
      'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo');
  }
}

/** Every claim a rule's pattern or a policy names must be kept by the registry, or it would silently never match. */
function checkClaims(config: ChannelsConfig, kept: readonly string[]): void {
  const named: Array<{ claim: string; where: string }> = [];
  for (const rule of config.rules) {
    for (const match of rule.pattern.matchAll(/\$\{claim:([^}]+)\}/g)) named.push({ claim: match[1], where: `pattern '${rule.pattern}'` });
    for (const policy of [rule.subscribe, rule.publish]) if (policy.kind === 'claim') named.push({ claim: policy.claim, where: `a policy of '${rule.pattern}'` });
  }
  for (const [action, policy] of Object.entries(config.actions)) if (policy.kind === 'claim') named.push({ claim: policy.claim, where: `actions.${action}` });
  for (const { claim, where } of named) {
    if (Token.isUnresolved(claim) || kept.includes(claim)) continue;
    throw new Error(`AuthenticatedWebSocketApi: ${where} uses claim '${claim}', which the registry does not keep; add '${claim}' to the auth's contextClaims (e.g. WebSocketAuth.hmacSecret(secret, { contextClaims: ['${claim}'] })).`);
  }
}
