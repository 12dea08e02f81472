import { Annotations, ArnFormat, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IConstruct } from 'constructs';
import { AuthenticatedWebSocketApiAttributes, AuthenticatedWebSocketApiBase, IAuthenticatedWebSocketApi, ImportedAuthenticatedWebSocketApi } from './api-base';
import { WebSocketAuth } from './auth';
import { ActionPolicies, ChannelRule, Channels } from './channels';
import { createCustomDomain, customDomainUrl, validateDomainOptions, WebSocketDomainOptions } from './custom-domain';
import { FanOut } from './fan-out';
import { AuthorizerFunction } from './handlers/authorizer-function';
import { ConnectionFunction } from './handlers/connection-function';
import { ExpirySweeperFunction } from './handlers/expiry-sweeper-function';
import { FanOutWorkerFunction } from './handlers/fan-out-worker-function';
import { MessageFunction } from './handlers/message-function';
import { PublisherFunction } from './handlers/publisher-function';
import { createAlarms, createDashboard, validateAlarmOptions, WebSocketApiAlarmOptions } from './monitoring';
import { acknowledgeNag, NagReasons } from './nag-suppressions';
import { RouteTarget } from './route-target';
import { Defaults, Env, ObservabilityEnv, Registry } from './runtime/environment';

/** Sizing, timeout, environment and network of one bundled function. */
export interface HandlerOptions {
  /**
   * Memory in MB (128 to 10240); CPU grows with it.
   * @default - 256 for the authorizer, connection handler and expiry sweeper; 512 for the message handler, publisher and fan-out worker
   */
  readonly memorySize?: number;

  /**
   * Concurrent executions reserved for the function (at least 1). It also caps the function: past
   * it, invocations are throttled (the authorizer's cap refuses connects with 500).
   * @default - none: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;

  /**
   * How long one invocation may run (1 second to 15 minutes). The fan-out worker's queue keeps a
   * task invisible for six times the worker's timeout, as Lambda advises for SQS event sources.
   * @default - 10 seconds for the authorizer and connection handler, 30 for the message handler, 60 for the publisher, 1 minute for the expiry sweeper, 2 minutes for the fan-out worker
   */
  readonly timeout?: Duration;

  /**
   * Extra environment variables, e.g. for a Lambda extension or `NODE_OPTIONS`. Names the
   * construct sets itself (`CONNECTIONS_*`, `CALLBACK_URL`, `AUTH_*`, `FANOUT_*`, ...) and names
   * Lambda reserves (`AWS_*`) are refused.
   * @default - only what the construct sets
   */
  readonly environment?: { [name: string]: string };

  /**
   * Run the function in this VPC. It then reaches DynamoDB, @connections, SQS and Secrets Manager
   * through the VPC: give it a NAT gateway or VPC endpoints (`execute-api` for @connections).
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;

  /**
   * The subnets of `vpc` the function runs in.
   * @default - the VPC's private subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * The security groups of the function, with `vpc`.
   * @default - a new security group allowing all outbound traffic
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/** Sizing, timeout, environment and network of the bundled functions, one entry per function. */
export interface BundledHandlersOptions {
  /**
   * The `$connect` authorizer.
   * @default - 256 MB, no reserved concurrency
   */
  readonly authorizer?: HandlerOptions;
  /**
   * The `$connect`/`$disconnect` handler.
   * @default - 256 MB, no reserved concurrency
   */
  readonly connection?: HandlerOptions;
  /**
   * The `$default` message handler (broadcast, send, ping, reauth).
   * @default - 512 MB, no reserved concurrency
   */
  readonly message?: HandlerOptions;
  /**
   * The publisher backends invoke.
   * @default - 512 MB, no reserved concurrency
   */
  readonly publisher?: HandlerOptions;
  /**
   * The expiry sweeper.
   * @default - 256 MB, no reserved concurrency
   */
  readonly expirySweeper?: HandlerOptions;
  /**
   * The fan-out worker (`FanOut.queue()` only). Reserved concurrency must cover the queue's
   * maximum concurrency (the segments, at least 2).
   * @default - 512 MB, no reserved concurrency
   */
  readonly fanOutWorker?: HandlerOptions;
}

/** Properties of an `AuthenticatedWebSocketApi`. */
export interface AuthenticatedWebSocketApiProps {
  /**
   * How clients authenticate on `$connect`, e.g. `WebSocketAuth.hmacSecret(secret)`.
   */
  readonly auth: WebSocketAuth;

  /**
   * The name of the WebSocket API.
   * @default - the construct's unique id: its path in the app and a hash, e.g. `ChatStackChat1A2B3C4D`
   */
  readonly apiName?: string;

  /**
   * The stage clients connect to, the last segment of `url`.
   * @default 'dev'
   */
  readonly stageName?: string;

  /**
   * How API Gateway picks a message's route: `$request.body.<field>`, or a compound form such as
   * `${request.body.service}/${request.body.action}`. Messages that match no route go to
   * `$default`, where the bundled message handler serves `broadcast`, `send` and `ping`.
   * @default '$request.body.action'
   */
  readonly routeSelectionExpression?: string;

  /**
   * Custom routes, by route key (the value of the route selection expression), e.g.
   * `{ orders: RouteTarget.function(ordersFn) }`. Keys starting with `$` are API Gateway's own.
   * @default - no custom routes
   */
  readonly routes?: { [routeKey: string]: RouteTarget };

  /**
   * Default throttling of every route of the stage.
   * @default - the account's limits (10,000 requests per second, 5,000 burst)
   */
  readonly throttle?: apigwv2.ThrottleSettings;

  /**
   * How broadcasts reach everyone: `FanOut.inline({ concurrency })` from the message handler, or
   * `FanOut.queue({ segments, concurrency, maxSendRate })` through SQS to parallel workers.
   * @default FanOut.inline()
   */
  readonly fanOut?: FanOut;

  /**
   * How often the expiry sweeper closes connections whose token has expired and that send nothing
   * (one that sends is closed at once by the message handler). Whole minutes, at least one. Each
   * sweep scans the registry, so a very large registry may want a longer interval.
   * @default Duration.minutes(1)
   */
  readonly expirySweepInterval?: Duration;

  /**
   * Throttling of single routes of the stage, by route key (`$connect`, `$default`, `$disconnect`
   * or a key of `routes`), over the stage's `throttle`. For example `{ $connect: { rateLimit: 50,
   * burstLimit: 100 } }` slows connection floods without slowing messages.
   * @default - every route follows `throttle`
   */
  readonly routeThrottle?: { [routeKey: string]: apigwv2.ThrottleSettings };

  /**
   * Write the stage's access logs (one JSON line per connect, message and disconnect: request id,
   * time, connection id, route, event type, status, latencies, errors) to `accessLogGroup`.
   * API Gateway needs the account-level CloudWatch role for it: see `cloudWatchRole`.
   * @default true
   */
  readonly accessLogs?: boolean;

  /**
   * Create the account-level role API Gateway writes logs with (`AWS::ApiGateway::Account` and its
   * role). Access logs of WebSocket APIs fail to deploy without it. There is one per account and
   * region, shared by every REST and WebSocket API there, so another stack may own it already; set
   * this in one stack only. The role is retained when the stack is deleted, since the account
   * setting keeps pointing at it.
   * @default false
   */
  readonly cloudWatchRole?: boolean;

  /**
   * How long the bundled functions' logs and the access logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Trace the bundled functions with AWS X-Ray (active tracing, with the grants it needs).
   * API Gateway traces REST APIs only, so WebSocket traces start at the functions.
   * @default false
   */
  readonly tracing?: boolean;

  /**
   * Create CloudWatch alarms on execution errors, integration errors, failed deliveries and refused
   * connections, e.g. `alarms: { topic }`. See `WebSocketApiAlarmOptions` for the thresholds.
   * @default - no alarms
   */
  readonly alarms?: WebSocketApiAlarmOptions;

  /**
   * Create a CloudWatch dashboard of connections, messages, errors, latency, fan-out counts and
   * refused connections.
   * @default false
   */
  readonly dashboard?: boolean;

  /**
   * Serve the API on a custom domain too: `wss://{domainName}/{basePath}` (see `customDomainUrl`).
   * `url` and `callbackUrl` stay on the execute-api domain, which @connections requires.
   * @default - the execute-api domain only
   */
  readonly domain?: WebSocketDomainOptions;

  /**
   * What happens to the connection registry when it leaves the stack. Its rows describe live
   * connections only (each gone within about 2 hours), so nothing is lost by deleting it.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Keep continuous backups of the registry (point-in-time recovery, 35 days).
   * @default false
   */
  readonly pointInTimeRecovery?: boolean;

  /**
   * Encrypt the registry, the fan-out queues and every log group (the functions' and the access
   * logs) with this customer-managed KMS key; the functions get the key grants they need. A key
   * this app defines also lets CloudWatch Logs use it (log groups of this account and region); an
   * imported key's policy must allow that already.
   * @default - AWS managed encryption: `aws/dynamodb` for the registry, SQS-managed for the queues, CloudWatch Logs' own for the logs
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * The processor architecture of the bundled functions. The bundles are plain JavaScript, so
   * either works; ARM64 costs less per GB-second.
   * @default lambda.Architecture.ARM_64
   */
  readonly architecture?: lambda.Architecture;

  /**
   * Memory, reserved concurrency, timeout, extra environment and VPC of the bundled functions, one entry per function.
   * @default - each function's default size and timeout, no reserved concurrency, not in a VPC
   */
  readonly handlers?: BundledHandlersOptions;

  /**
   * Channels clients subscribe and publish to, with who may do what, presence and history, e.g.
   * `[ChannelRule.pattern('rooms/*', { presence: true, historySize: 50 }), ChannelRule.pattern('users/${userId}', { publish: Access.none() })]`.
   * The first rule matching a channel decides; a channel no rule matches is refused.
   * @default - no channels: subscribe and publish are refused
   */
  readonly channels?: ChannelRule[];

  /**
   * Who may use the built-in `broadcast` and `send`, e.g. `{ broadcast: Access.claim('role', 'admin') }`.
   * @default - both open to every connected user
   */
  readonly actions?: ActionPolicies;

  /**
   * Most client `broadcast` and `publish` requests one user may make per 10 seconds, across all of
   * its connections (a DynamoDB counter per user and window); over it the client gets a `RateLimited`
   * error frame. 0 turns the limit off.
   * @default 100
   */
  readonly clientFanOutRateLimit?: number;

  /**
   * Put `Connected`, `Disconnected`, `Joined` and `Left` events (source `authenticated-websocket-api`)
   * on the account's default EventBridge bus (or `lifecycleEventBus`), so other services react
   * without polling.
   * @default false
   */
  readonly lifecycleEvents?: boolean;

  /**
   * The EventBridge bus lifecycle events go to; setting it turns `lifecycleEvents` on.
   * @default - the account's default bus, when `lifecycleEvents` is true
   */
  readonly lifecycleEventBus?: events.IEventBus;
}

const ROUTE_SELECTION = /^(\$request\.body\.[A-Za-z0-9_.$-]+|.*\$\{request\.body\.[A-Za-z0-9_.$-]+\}.*)$/;
const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
/** API Gateway allows 300 routes per API; `$connect`, `$disconnect` and `$default` take three. */
const MAX_CUSTOM_ROUTES = 297;
const BUILT_IN_ROUTES = ['$connect', '$disconnect', '$default'];
const DEFAULT_FAN_OUT = FanOut.inline();
/** Environment variables the construct sets on its functions: `handlers.*.environment` may not set them. */
const CONSTRUCT_ENVIRONMENT: string[] = [...Object.values(Env), ...Object.values(ObservabilityEnv)];

/** KMS actions DynamoDB needs of a caller on a customer-managed table key (CDK's, wildcards spelled out). */
const KMS_READ_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];
const KMS_WRITE_ACTIONS = [...KMS_READ_ACTIONS, 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'];
const DYNAMODB_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'];

/** The stage's access log line: one JSON object per connect, message and disconnect. */
const ACCESS_LOG_FIELDS: Record<string, string> = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  requestTimeEpoch: '$context.requestTimeEpoch',
  connectionId: '$context.connectionId',
  routeKey: '$context.routeKey',
  eventType: '$context.eventType',
  status: '$context.status',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  errorMessage: '$context.error.message',
  integrationError: '$context.integration.error',
  authorizerError: '$context.authorizer.error',
  userId: '$context.authorizer.principalId',
  sourceIp: '$context.identity.sourceIp',
};

/**
 * An API Gateway WebSocket API whose clients authenticate with a JWT on `$connect`, whose
 * connections are kept per user in DynamoDB, and whose messages reach everyone, one user, or
 * your own routes.
 *
 * Out of the box, a client that sends `{"action":"broadcast","message":"Hello"}` reaches every
 * connection with `{"message":"Hello","sender":"<its user id>"}`.
 */
export class AuthenticatedWebSocketApi extends AuthenticatedWebSocketApiBase {
  /**
   * An API defined in another stack or app, from its id, stage and publisher: to grant a backend
   * `grantSend` or `grantPostToConnections`, read `url` and `callbackUrl`, or alarm on its metrics.
   * @param scope the construct the import belongs to
   * @param id the construct id, unique within `scope`
   * @param attrs the API's id, stage and publisher function ARN
   */
  public static fromAttributes(scope: Construct, id: string, attrs: AuthenticatedWebSocketApiAttributes): IAuthenticatedWebSocketApi {
    return new ImportedAuthenticatedWebSocketApi(scope, id, attrs);
  }

  /** The WebSocket API. */
  public readonly webSocketApi: apigwv2.WebSocketApi;

  /** The stage clients connect to. */
  public readonly stage: apigwv2.WebSocketStage;

  /** The id of the API Gateway WebSocket API. */
  public readonly webSocketApiId: string;

  /** The name of the stage clients connect to. */
  public readonly stageName: string;

  /**
   * The connection registry: one row per open connection (`connectionId`), with the user it
   * belongs to (GSI `byUser`), when it connected, when its token expires, and its claims.
   */
  public readonly table: dynamodb.Table;

  /**
   * The `$connect` REQUEST authorizer: the bundled one, which verifies the token, or your own
   * (`WebSocketAuth.lambdaAuthorizer`).
   */
  public readonly authorizerFunction: lambda.IFunction;

  /** Serves `$connect` and `$disconnect`: registers and removes connections. */
  public readonly connectionFunction: lambda.Function;

  /** Serves `$default`: broadcast, send, ping, reauth, and error frames for bad messages. */
  public readonly messageFunction: lambda.Function;

  /** Runs every `expirySweepInterval`: closes connections whose token has expired. */
  public readonly expirySweeperFunction: lambda.Function;

  /**
   * Backends push through it: invoked with `{"to":{"all":true}|{"userId":"u"}|{"connectionId":"c"},"message":<any>}`,
   * it answers `{"delivered","gone","failed","retried","throttled"}` (and `queued` for a queued broadcast).
   * Let a principal invoke it with `grantSend`.
   */
  public readonly publisherFunction: lambda.Function;

  /**
   * Queue mode: the queue of fan-out tasks, one per scan segment of a broadcast.
   * @default - none (inline fan-out)
   */
  public readonly fanOutQueue?: sqs.Queue;

  /**
   * Queue mode: keeps tasks that failed three times and the recipients workers could not reach;
   * redrive it to `fanOutQueue` to deliver them again.
   * @default - none (inline fan-out)
   */
  public readonly fanOutDeadLetterQueue?: sqs.Queue;

  /**
   * Queue mode: the worker serving `fanOutQueue`.
   * @default - none (inline fan-out)
   */
  public readonly fanOutWorker?: lambda.Function;

  /** The URL clients connect to: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  public readonly url: string;

  /**
   * The @connections endpoint backends post to: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`.
   * It stays on the execute-api domain with a custom domain too: @connections is not served there.
   */
  public readonly callbackUrl: string;

  /**
   * The stage's access logs (JSON lines).
   * @default - none when `accessLogs` is false
   */
  public readonly accessLogGroup?: logs.LogGroup;

  /**
   * The custom domain name, with `domain`.
   * @default - none
   */
  public readonly domainName?: apigwv2.DomainName;

  /**
   * The URL clients connect to on the custom domain: `wss://{domainName}/{basePath}`.
   * @default - none (no `domain`)
   */
  public readonly customDomainUrl?: string;

  /** The channels: their table (subscriptions, presence, history) and settings. */
  public readonly channels: Channels;

  /** The alarms `alarms` created (empty without it). */
  public readonly alarms: cloudwatch.Alarm[];

  /**
   * The dashboard, with `dashboard: true`.
   * @default - none
   */
  public readonly dashboard?: cloudwatch.Dashboard;

  private readonly encryptionKey?: kms.IKey;
  private readonly props: AuthenticatedWebSocketApiProps;
  /** Every bundled function, for what they all get (the metrics' API id). */
  private readonly bundledFunctions: lambda.Function[] = [];

  /**
   * @param scope the construct this API belongs to, usually a stack
   * @param id the construct id, unique within `scope`
   * @param props how clients authenticate, and the API's routes, stage and options
   */
  constructor(scope: Construct, id: string, props: AuthenticatedWebSocketApiProps) {
    super(scope, id);
    validateProps(props);
    this.props = props;
    this.encryptionKey = props.encryptionKey;
    if (props.encryptionKey) this.allowLogsToUseKey(props.encryptionKey);

    // The registry and the bundled functions around it.
    this.table = this.createRegistry();
    this.authorizerFunction = this.createAuthorizer();
    this.connectionFunction = this.createConnectionHandler();
    this.messageFunction = this.createMessageHandler();
    this.expirySweeperFunction = this.createExpirySweeper();
    this.publisherFunction = this.createPublisher();
    const queued = this.fanOut.queued ? this.createFanOutQueue() : undefined;
    this.fanOutQueue = queued?.queue;
    this.fanOutDeadLetterQueue = queued?.deadLetterQueue;
    this.fanOutWorker = queued?.worker;

    // The API, its stage, and what the functions learn of them.
    this.webSocketApi = this.createApi();
    this.accessLogGroup = (props.accessLogs ?? true)
      ? new logs.LogGroup(this, 'AccessLogs', { retention: this.logRetention, encryptionKey: props.encryptionKey })
      : undefined;
    this.stage = this.createStage();
    this.webSocketApiId = this.webSocketApi.apiId;
    this.stageName = this.stage.stageName;
    this.url = this.stage.url;
    this.callbackUrl = this.stage.callbackUrl;
    if (props.cloudWatchRole) this.createAccountLoggingRole();
    this.connectFunctionsToStage();

    // Channels: subscriptions, presence and history beside the registry, served by the same handlers.
    this.channels = this.createChannels();

    // Custom routes and their throttling.
    const routes = this.addRoutes();
    if (props.routeThrottle && Object.keys(props.routeThrottle).length > 0) this.throttleRoutes(props.routeThrottle, routes);

    // Around the API: custom domain, alarms, dashboard.
    if (props.domain) {
      this.domainName = createCustomDomain(this, this.webSocketApi, this.stage, props.domain);
      this.customDomainUrl = customDomainUrl(props.domain);
    }
    this.alarms = props.alarms ? createAlarms(this, props.alarms) : [];
    if (props.dashboard) this.dashboard = createDashboard(this);
  }

  /** @internal */
  public _publisher(): lambda.IFunction {
    return this.publisherFunction;
  }


  /**
   * Lets `grantee` read the connection registry: look up a connection, list a user's connections
   * (GSI \`byUser\`) or scan them all (and decrypt them, with a customer-managed key).
   * @param grantee the principal to grant
   */
  public grantReadConnections(grantee: iam.IGrantable): iam.Grant {
    return this.grantRegistry(grantee, DYNAMODB_READ_ACTIONS);
  }

  /** The connection registry: one row per connection, with the user index `byUser`. */
  private createRegistry(): dynamodb.Table {
    const props = this.props;
    const table = new dynamodb.Table(this, 'Connections', {
      partitionKey: { name: Registry.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      ...(props.encryptionKey
        ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: dynamodb.TableEncryption.AWS_MANAGED }),
      timeToLiveAttribute: Registry.TTL,
      pointInTimeRecoverySpecification: props.pointInTimeRecovery ? { pointInTimeRecoveryEnabled: true } : undefined,
      // Rows describe live connections only; nothing in them outlives the connections.
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    table.addGlobalSecondaryIndex({
      indexName: Registry.USER_INDEX,
      partitionKey: { name: Registry.USER_ID, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [Registry.TTL, Registry.EXPIRES_AT],
    });
    if (!props.pointInTimeRecovery) {
      acknowledgeNag(table, 'AwsSolutions-DDB3', NagReasons.REGISTRY_EPHEMERAL);
    }
    return table;
  }

  /**
   * One bundled function: its own role with inline grants only, its own log group, the API's
   * architecture and tracing, and its `handlers` options over its defaults.
   */
  private bundle<F extends lambda.Function>(
    fnId: string,
    create: (fnScope: Construct, fnId: string, fnProps: lambda.FunctionOptions) => F,
    fnProps: lambda.FunctionOptions,
    options: HandlerOptions | undefined,
  ): F {
    const props = this.props;
    const logGroup = new logs.LogGroup(this, `${fnId}Logs`, { retention: this.logRetention, encryptionKey: props.encryptionKey });
    const role = new iam.Role(this, `${fnId}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: fnProps.description,
    });
    const fn = create(this, fnId, {
      ...fnProps,
      role,
      logGroup,
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : undefined,
      memorySize: options?.memorySize ?? fnProps.memorySize,
      reservedConcurrentExecutions: options?.reservedConcurrency,
      timeout: options?.timeout ?? fnProps.timeout,
      environment: { ...fnProps.environment, ...options?.environment },
      vpc: options?.vpc,
      vpcSubnets: options?.vpcSubnets,
      securityGroups: options?.securityGroups,
    });
    // Instead of AWSLambdaBasicExecutionRole (any log group of the account): this log group only.
    logGroup.grantWrite(role);
    if (props.tracing) {
      acknowledgeNag(role.node.findChild('DefaultPolicy'), 'AwsSolutions-IAM5[Resource::*]', NagReasons.XRAY_WILDCARD);
    }
    this.bundledFunctions.push(fn);
    return fn;
  }

  /** Your own authorizer (`WebSocketAuth.lambdaAuthorizer`), or the bundled one configured by `auth`. */
  private createAuthorizer(): lambda.IFunction {
    const auth = this.props.auth;
    const custom = auth._customAuthorizer();
    if (custom) return custom;
    const verifier = this.bundle('Authorizer', (s, i, p) => new AuthorizerFunction(s, i, p), {
      description: 'Verifies the JWT of a WebSocket $connect',
      memorySize: 256,
      timeout: Duration.seconds(10),
    }, this.handlerOptions.authorizer);
    auth._bind(verifier);
    return verifier;
  }

  /** `$connect` registers the connection, `$disconnect` removes it. */
  private createConnectionHandler(): lambda.Function {
    const auth = this.props.auth;
    const fn = this.bundle('ConnectionHandler', (s, i, p) => new ConnectionFunction(s, i, p), {
      description: 'Registers WebSocket connections on $connect and removes them on $disconnect',
      memorySize: 256,
      timeout: Duration.seconds(10),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.CONNECTION_TTL_SECONDS]: String(Defaults.CONNECTION_TTL_SECONDS),
        ...(auth.contextClaims.length > 0 ? { [Env.AUTH_CONTEXT_CLAIMS]: auth.contextClaims.join(',') } : {}),
        // A subprotocol token: $connect echoes the protocol name, as browsers require.
        ...(auth.tokenLocation._handlerValue.startsWith('subprotocol:')
          ? { [Env.AUTH_TOKEN_LOCATION]: auth.tokenLocation._handlerValue } : {}),
      },
    }, this.handlerOptions.connection);
    this.grantRegistry(fn, ['dynamodb:PutItem', 'dynamodb:DeleteItem']);
    return fn;
  }

  /** `$default`: broadcast, send, ping and reauth. */
  private createMessageHandler(): lambda.Function {
    const fn = this.bundle('MessageHandler', (s, i, p) => new MessageFunction(s, i, p), {
      description: 'Serves broadcast, send and ping on the WebSocket $default route',
      memorySize: 512,
      timeout: Duration.seconds(30),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.USER_INDEX_NAME]: Registry.USER_INDEX,
        ...this.senderEnvironment(),
      },
    }, this.handlerOptions.message);
    // Expiry: past the $connect token's exp, read the row's (a reauth moves it), and move it on reauth,
    // verifying the fresh token exactly as the authorizer does (same AUTH_* settings and key grant).
    this.grantRegistry(fn, [
      'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem',
    ]);
    this.props.auth._bind(fn);
    return fn;
  }

  /** Closes connections whose token expired and that send nothing, on a schedule. */
  private createExpirySweeper(): lambda.Function {
    const fn = this.bundle('ExpirySweeper', (s, i, p) => new ExpirySweeperFunction(s, i, p), {
      description: 'Closes WebSocket connections whose token has expired',
      memorySize: 256,
      timeout: Duration.minutes(1),
      environment: { [Env.TABLE_NAME]: this.table.tableName },
    }, this.handlerOptions.expirySweeper);
    this.grantRegistry(fn, ['dynamodb:Scan', 'dynamodb:DeleteItem']);
    new events.Rule(this, 'ExpirySweep', {
      description: 'Closes WebSocket connections whose token has expired',
      schedule: events.Schedule.rate(this.props.expirySweepInterval ?? Duration.minutes(1)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 0 })],
    });
    return fn;
  }

  /** The function backends invoke to push to everyone, a user or a connection. */
  private createPublisher(): lambda.Function {
    const fn = this.bundle('Publisher', (s, i, p) => new PublisherFunction(s, i, p), {
      description: 'Lets backends push to everyone, a user or a connection, answering the counts',
      memorySize: 512,
      timeout: Duration.seconds(60),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.USER_INDEX_NAME]: Registry.USER_INDEX,
        ...this.senderEnvironment(),
      },
    }, this.handlerOptions.publisher);
    this.grantRegistry(fn, ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']);
    return fn;
  }

  /** What every sender (message handler, publisher) reads about the fan-out. */
  private senderEnvironment(): Record<string, string> {
    return {
      [Env.FANOUT_CONCURRENCY]: String(this.fanOut.concurrency),
      [Env.FANOUT_SEGMENTS]: String(this.fanOut.segments),
      [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
    };
  }

  /** `FanOut.queue()`: the queue of scan segments, its dead-letter queue, and the worker the senders enqueue for. */
  private createFanOutQueue(): { queue: sqs.Queue; deadLetterQueue: sqs.Queue; worker: lambda.Function } {
    const { encryptionKey } = this.props;
    const fanOut = this.fanOut;
    const queueEncryption = encryptionKey
      ? { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: encryptionKey }
      : { encryption: sqs.QueueEncryption.SQS_MANAGED };
    const deadLetterQueue = new sqs.Queue(this, 'FanOutDeadLetterQueue', {
      ...queueEncryption,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const workerTimeout = this.handlerOptions.fanOutWorker?.timeout ?? Duration.minutes(2);
    const queue = new sqs.Queue(this, 'FanOutQueue', {
      ...queueEncryption,
      enforceSSL: true,
      // Six times the worker's timeout, as Lambda advises for SQS event sources.
      visibilityTimeout: Duration.seconds(workerTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 3 },
    });
    const worker = this.bundle('FanOutWorker', (s, i, p) => new FanOutWorkerFunction(s, i, p), {
      description: 'Delivers one scan segment of a queued broadcast at its share of the send rate',
      memorySize: 512,
      timeout: workerTimeout,
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.FANOUT_CONCURRENCY]: String(fanOut.concurrency),
        [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
        // Each of the at most maxWorkers invocations posts at its share, so together they stay under maxSendRate.
        [Env.FANOUT_MAX_SEND_RATE]: String(Math.floor(fanOut.maxSendRate! / fanOut.maxWorkers)),
        [Env.FANOUT_QUEUE_URL]: queue.queueUrl,
        [Env.FANOUT_DLQ_URL]: deadLetterQueue.queueUrl,
      },
    }, this.handlerOptions.fanOutWorker);
    worker.addEventSource(new SqsEventSource(queue, {
      batchSize: 1,
      maxConcurrency: fanOut.maxWorkers,
      reportBatchItemFailures: true,
    }));
    this.grantRegistry(worker, ['dynamodb:Scan', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']);
    grantEnqueue(queue, worker, encryptionKey); // the rest of a segment cut off by the timeout
    grantEnqueue(deadLetterQueue, worker, encryptionKey); // recipients it could not reach
    for (const sender of [this.messageFunction, this.publisherFunction]) {
      sender.addEnvironment(Env.FANOUT_QUEUE_URL, queue.queueUrl);
      grantEnqueue(queue, sender, encryptionKey);
    }
    return { queue, deadLetterQueue, worker };
  }

  /** The WebSocket API with its built-in routes: `$connect` (authorized), `$disconnect`, `$default`. */
  private createApi(): apigwv2.WebSocketApi {
    const props = this.props;
    return new apigwv2.WebSocketApi(this, 'Api', {
      apiName: props.apiName ?? Names.uniqueId(this),
      routeSelectionExpression: props.routeSelectionExpression ?? '$request.body.action',
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration('ConnectIntegration', this.connectionFunction),
        authorizer: new WebSocketLambdaAuthorizer('Authorizer', this.authorizerFunction, {
          identitySource: [props.auth.tokenLocation.identitySource],
        }),
      },
      disconnectRouteOptions: { integration: new WebSocketLambdaIntegration('DisconnectIntegration', this.connectionFunction) },
      defaultRouteOptions: { integration: new WebSocketLambdaIntegration('DefaultIntegration', this.messageFunction) },
    });
  }

  /** The auto-deployed stage, with the access logs when they are on. */
  private createStage(): apigwv2.WebSocketStage {
    const stage = new apigwv2.WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName: this.props.stageName ?? 'dev',
      autoDeploy: true,
      throttle: this.props.throttle,
      accessLogSettings: this.accessLogGroup ? {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogGroup),
        format: apigateway.AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      } : undefined,
    });
    if (!this.accessLogGroup) acknowledgeNag(stage, 'AwsSolutions-APIG1', NagReasons.ACCESS_LOGS_OFF);
    return stage;
  }

  /** `cloudWatchRole`: the account-level role API Gateway writes logs with. */
  private createAccountLoggingRole(): void {
    const role = new iam.Role(this, 'CloudWatchRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: 'Lets API Gateway write the logs of every API of this account and region',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    // The account setting outlives the stack; a deleted role would break every API's logs.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    acknowledgeNag(role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      NagReasons.ACCOUNT_LOGGING_ROLE);
    const account = new apigateway.CfnAccount(this, 'Account', { cloudWatchRoleArn: role.roleArn });
    this.stage.node.addDependency(account);
  }

  /** The @connections endpoint and grants by method for the functions that post or close, and the metrics' API id for all. */
  private connectFunctionsToStage(): void {
    // Senders post; the message handler and the sweeper also close connections whose token expired.
    // The connection handler posts too: presence channels hear when a user's last connection leaves.
    for (const sender of [this.publisherFunction, this.connectionFunction, ...(this.fanOutWorker ? [this.fanOutWorker] : [])]) {
      sender.addEnvironment(Env.CALLBACK_URL, this.callbackUrl);
      this.grantPostToConnections(sender);
    }
    for (const closer of [this.messageFunction, this.expirySweeperFunction]) {
      closer.addEnvironment(Env.CALLBACK_URL, this.callbackUrl);
      this._grantConnections(closer, ['POST', 'DELETE']);
    }
    // The dimension of the handler metrics: every bundled function names the API it serves.
    for (const fn of this.bundledFunctions) fn.addEnvironment(ObservabilityEnv.API_ID, this.webSocketApi.apiId);
  }

  /** The channels table and what the handlers need of it. */
  private createChannels(): Channels {
    const props = this.props;
    const channels = new Channels(this, 'Channels', {
      rules: props.channels,
      actions: props.actions,
      clientFanOutRateLimit: props.clientFanOutRateLimit,
      contextClaims: props.auth.contextClaims,
      // Queue mode: a channel's subscriptions spread over as many shards as a broadcast has segments, one worker each.
      subscriptionShards: this.fanOut.queued ? Math.min(this.fanOut.segments, 64) : undefined,
      lifecycleEvents: props.lifecycleEvents,
      lifecycleEventBus: props.lifecycleEventBus,
      encryptionKey: props.encryptionKey,
      pointInTimeRecovery: props.pointInTimeRecovery,
      removalPolicy: props.removalPolicy,
    });
    channels._bindHandlers({
      message: this.messageFunction,
      publisher: this.publisherFunction,
      connection: this.connectionFunction,
      fanOutWorker: this.fanOutWorker,
      registry: this.table,
    });
    return channels;
  }

  /** The custom routes of `routes`, beside the built-in ones: every route by key. */
  private addRoutes(): Map<string, IConstruct> {
    const props = this.props;
    const routes = new Map<string, IConstruct>(
      BUILT_IN_ROUTES.map((key) => [key, this.webSocketApi.node.findChild(`${key}-Route`)]),
    );
    for (const [routeKey, target] of Object.entries(props.routes ?? {})) {
      routes.set(routeKey, this.addCustomRoute(routeKey, target, props.routeThrottle?.[routeKey] !== undefined));
    }
    for (const [routeKey, route] of routes) {
      if (routeKey !== '$connect') acknowledgeNag(route, 'AwsSolutions-APIG4', NagReasons.ROUTE_AUTHORIZED_AT_CONNECT);
    }
    return routes;
  }

  /** `routeThrottle`: route settings of the stage, once the routes they name exist. */
  private throttleRoutes(routeThrottle: { [routeKey: string]: apigwv2.ThrottleSettings }, routes: Map<string, IConstruct>): void {
    const cfnStage = this.stage.node.defaultChild as apigwv2.CfnStage;
    cfnStage.routeSettings = Object.fromEntries(Object.entries(routeThrottle).map(([routeKey, throttle]) => {
      // A route setting names a route by key: the route must exist before the stage refers to it.
      cfnStage.node.addDependency(routes.get(routeKey)!);
      return [routeKey, { ThrottlingRateLimit: throttle.rateLimit, ThrottlingBurstLimit: throttle.burstLimit }];
    }));
  }

  private get handlerOptions(): BundledHandlersOptions {
    return this.props.handlers ?? {};
  }

  private get fanOut(): FanOut {
    return this.props.fanOut ?? DEFAULT_FAN_OUT;
  }

  private get logRetention(): logs.RetentionDays {
    return this.props.logRetention ?? logs.RetentionDays.ONE_MONTH;
  }

  /**
   * Lets CloudWatch Logs encrypt and decrypt with `key`, for log groups of this account and region
   * (the key policy statement AWS documents). An imported key's policy cannot be changed from here.
   */
  private allowLogsToUseKey(key: kms.IKey): void {
    const stack = Stack.of(this);
    const { statementAdded } = key.addToResourcePolicy(new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
      },
    }));
    if (!statementAdded) {
      Annotations.of(this).addWarningV2('cdk-authenticated-websocket-api:importedEncryptionKey',
        'encryptionKey was imported, so its key policy cannot be extended here: it must let CloudWatch Logs '
        + `(logs.${stack.region}.amazonaws.com) use it for this account's log groups, or the log groups fail to deploy.`);
    }
  }

  /**
   * Adds a custom route: under the API, or in the stack of the target's function when that is
   * another stack (which then depends on this one).
   */
  private addCustomRoute(routeKey: string, target: RouteTarget, throttled: boolean): apigwv2.WebSocketRoute {
    const home = target._routeStack(this);
    if (!home) return this.webSocketApi.addRoute(routeKey, target._bind(this, routeKey));
    if (throttled) {
      throw new Error(`AuthenticatedWebSocketApi: routeThrottle names route '${routeKey}', whose function lives in stack '${home.stackName}'; the stage would have to wait for a route of that stack, which depends on this one. Drop routeThrottle['${routeKey}'] (the stage's throttle applies), or define the function in this API's stack.`);
    }
    const id = `${Names.uniqueId(this)}Route-${routeKey.replace(/\//g, '-')}`;
    return new apigwv2.WebSocketRoute(home, id, { webSocketApi: this.webSocketApi, routeKey, ...target._bind(this, routeKey) });
  }

  /**
   * Grants `actions` on the registry table, on its `byUser` index when they include a Query (that
   * index only, no `index/*`), and on its customer-managed key when there is one.
   */
  private grantRegistry(grantee: iam.IGrantable, actions: string[]): iam.Grant {
    const resourceArns = [this.table.tableArn];
    if (actions.includes('dynamodb:Query')) resourceArns.push(`${this.table.tableArn}/index/${Registry.USER_INDEX}`);
    const grant = iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
    if (this.encryptionKey) {
      const readOnly = actions.every((action) => DYNAMODB_READ_ACTIONS.includes(action));
      this.encryptionKey.grant(grantee, ...(readOnly ? KMS_READ_ACTIONS : KMS_WRITE_ACTIONS));
    }
    return grant;
  }
}

/**
 * `queue.grantSendMessages` without its wildcard KMS actions (`kms:ReEncrypt*`, `kms:GenerateDataKey*`):
 * sending to a queue encrypted with `key` takes GenerateDataKey and Decrypt.
 */
function grantEnqueue(queue: sqs.IQueue, grantee: iam.IGrantable, key: kms.IKey | undefined): void {
  iam.Grant.addToPrincipal({ grantee, actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], resourceArns: [queue.queueArn] });
  if (key) key.grant(grantee, 'kms:Decrypt', 'kms:GenerateDataKey');
}

function validateProps(props: AuthenticatedWebSocketApiProps): void {
  const stageName = props.stageName;
  if (stageName !== undefined && !Token.isUnresolved(stageName) && !STAGE_NAME.test(stageName)) {
    throw new Error(`AuthenticatedWebSocketApi: stageName '${stageName}' is not valid; use 1 to 128 letters, digits, '-' or '_' (for example 'dev' or 'prod').`);
  }

  const expression = props.routeSelectionExpression;
  if (expression !== undefined && !Token.isUnresolved(expression) && !ROUTE_SELECTION.test(expression)) {
    throw new Error(`AuthenticatedWebSocketApi: routeSelectionExpression '${expression}' is not valid; use '$request.body.<field>' (for example '$request.body.action') or a compound form such as '\${request.body.service}/\${request.body.action}'.`);
  }

  const routeKeys = Object.keys(props.routes ?? {});
  if (routeKeys.length > MAX_CUSTOM_ROUTES) {
    throw new Error(`AuthenticatedWebSocketApi: ${routeKeys.length} routes given; API Gateway allows ${MAX_CUSTOM_ROUTES} custom routes besides $connect, $disconnect and $default.`);
  }
  for (const key of routeKeys) {
    if (key.trim() === '') {
      throw new Error('AuthenticatedWebSocketApi: a route key is empty; use the value the route selection expression yields, for example \'orders\'.');
    }
    if (key.startsWith('$')) {
      throw new Error(`AuthenticatedWebSocketApi: route key '${key}' starts with '$', which API Gateway reserves; this construct wires $connect, $disconnect and $default itself, so name custom routes without '$' (for example '${key.slice(1) || 'orders'}').`);
    }
    if (key.length > 128) {
      throw new Error(`AuthenticatedWebSocketApi: route key '${key.slice(0, 20)}...' is ${key.length} characters; use at most 128.`);
    }
  }

  validateThrottle('throttle', props.throttle);
  for (const [routeKey, throttle] of Object.entries(props.routeThrottle ?? {})) {
    if (!BUILT_IN_ROUTES.includes(routeKey) && !routeKeys.includes(routeKey)) {
      throw new Error(`AuthenticatedWebSocketApi: routeThrottle names route '${routeKey}', which the API does not have; use $connect, $disconnect, $default${routeKeys.length > 0 ? ` or a key of routes (${routeKeys.join(', ')})` : ' or add the route to routes'}.`);
    }
    validateThrottle(`routeThrottle['${routeKey}']`, throttle);
  }

  if (props.cloudWatchRole && props.accessLogs === false) {
    throw new Error('AuthenticatedWebSocketApi: cloudWatchRole is true but accessLogs is false; the role only serves the access logs, so drop cloudWatchRole or turn accessLogs back on.');
  }
  if (props.removalPolicy === RemovalPolicy.SNAPSHOT) {
    throw new Error('AuthenticatedWebSocketApi: removalPolicy SNAPSHOT is not supported by DynamoDB tables; use RemovalPolicy.DESTROY (the default: rows are ephemeral) or RemovalPolicy.RETAIN.');
  }
  if (props.domain) validateDomainOptions(props.domain);
  if (props.alarms) validateAlarmOptions(props.alarms);

  const handlers = props.handlers ?? {};
  for (const [name, sizing] of Object.entries(handlers) as Array<[string, HandlerOptions | undefined]>) {
    const memory = sizing?.memorySize;
    if (memory !== undefined && !Token.isUnresolved(memory) && !(Number.isInteger(memory) && memory >= 128 && memory <= 10_240)) {
      throw new Error(`AuthenticatedWebSocketApi: handlers.${name}.memorySize is ${memory}; use a whole number of MB from 128 to 10240.`);
    }
    const timeout = sizing?.timeout?.toSeconds();
    if (timeout !== undefined && !Token.isUnresolved(timeout) && !(timeout >= 1 && timeout <= 900)) {
      throw new Error(`AuthenticatedWebSocketApi: handlers.${name}.timeout is ${timeout} seconds; Lambda allows 1 second to 15 minutes.`);
    }
    for (const variable of Object.keys(sizing?.environment ?? {})) {
      if (CONSTRUCT_ENVIRONMENT.includes(variable) || variable.startsWith('AWS_')) {
        throw new Error(`AuthenticatedWebSocketApi: handlers.${name}.environment sets ${variable}, which ${variable.startsWith('AWS_') ? 'Lambda reserves' : 'the construct sets itself'}; leave it out, or use a name of your own.`);
      }
    }
    if (!sizing?.vpc && (sizing?.vpcSubnets || sizing?.securityGroups)) {
      throw new Error(`AuthenticatedWebSocketApi: handlers.${name} has vpcSubnets or securityGroups without vpc; add vpc, or drop them.`);
    }
    const reserved = sizing?.reservedConcurrency;
    if (reserved !== undefined && !Token.isUnresolved(reserved) && !(Number.isInteger(reserved) && reserved >= 1)) {
      throw new Error(`AuthenticatedWebSocketApi: handlers.${name}.reservedConcurrency is ${reserved}; use a whole number of 1 or more (0 would stop the function), or leave it out.`);
    }
  }
  if (handlers.authorizer && props.auth._customAuthorizer()) {
    throw new Error('AuthenticatedWebSocketApi: handlers.authorizer sizes the bundled authorizer, but auth is WebSocketAuth.lambdaAuthorizer(fn); size your own function where you define it, and drop handlers.authorizer.');
  }
  if (handlers.fanOutWorker) {
    const fanOut = props.fanOut;
    if (!fanOut?.queued) {
      throw new Error('AuthenticatedWebSocketApi: handlers.fanOutWorker applies to queued fan-out only; use fanOut: FanOut.queue(), or drop handlers.fanOutWorker.');
    }
    const reserved = handlers.fanOutWorker.reservedConcurrency;
    if (reserved !== undefined && !Token.isUnresolved(reserved) && reserved < fanOut.maxWorkers) {
      throw new Error(`AuthenticatedWebSocketApi: handlers.fanOutWorker.reservedConcurrency is ${reserved}, below the ${fanOut.maxWorkers} workers the queue runs at once (FanOut.queue's maxWorkers); reserve at least ${fanOut.maxWorkers} or set a smaller maxWorkers.`);
    }
  }

  const sweep = props.expirySweepInterval;
  if (sweep !== undefined && !Token.isUnresolved(sweep.toSeconds())) {
    const seconds = sweep.toSeconds();
    if (seconds < 60 || seconds % 60 !== 0) {
      throw new Error(`AuthenticatedWebSocketApi: expirySweepInterval is ${seconds} seconds; EventBridge schedules in whole minutes, so use Duration.minutes(n) with n of 1 or more.`);
    }
  }

  if ((props as { fanOutConcurrency?: unknown }).fanOutConcurrency !== undefined) {
    throw new Error('AuthenticatedWebSocketApi: fanOutConcurrency was replaced by fanOut; use fanOut: FanOut.inline({ concurrency }).');
  }
}

function validateThrottle(name: string, throttle: apigwv2.ThrottleSettings | undefined): void {
  if (throttle?.rateLimit !== undefined && !Token.isUnresolved(throttle.rateLimit) && !(throttle.rateLimit >= 0)) {
    throw new Error(`AuthenticatedWebSocketApi: ${name}.rateLimit is ${throttle.rateLimit}; use a number of requests per second of 0 or more.`);
  }
  if (throttle?.burstLimit !== undefined && !Token.isUnresolved(throttle.burstLimit)
    && !(Number.isInteger(throttle.burstLimit) && throttle.burstLimit >= 0)) {
    throw new Error(`AuthenticatedWebSocketApi: ${name}.burstLimit is ${throttle.burstLimit}; use a whole number of requests of 0 or more.`);
  }
}
