import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { WebSocketAuth } from './auth';
import { FanOut } from './fan-out';
import { AuthorizerFunction } from './handlers/authorizer-function';
import { ConnectionFunction } from './handlers/connection-function';
import { ExpirySweeperFunction } from './handlers/expiry-sweeper-function';
import { FanOutWorkerFunction } from './handlers/fan-out-worker-function';
import { MessageFunction } from './handlers/message-function';
import { PublisherFunction } from './handlers/publisher-function';
import { RouteTarget } from './route-target';
import { Defaults, Env, Registry } from './runtime/environment';

/** Properties of an `AuthenticatedWebSocketApi`. */
export interface AuthenticatedWebSocketApiProps {
  /**
   * How clients authenticate on `$connect`, e.g. `WebSocketAuth.hmacSecret(secret)`.
   */
  readonly auth: WebSocketAuth;

  /**
   * The name of the WebSocket API.
   * @default - the construct's unique id
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
   * `{ orders: RouteTarget.lambda(ordersFn) }`. Keys starting with `$` are API Gateway's own.
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
}

const ROUTE_SELECTION = /^(\$request\.body\.[A-Za-z0-9_.$-]+|.*\$\{request\.body\.[A-Za-z0-9_.$-]+\}.*)$/;
const STAGE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
/** API Gateway allows 300 routes per API; `$connect`, `$disconnect` and `$default` take three. */
const MAX_CUSTOM_ROUTES = 297;

/**
 * An API Gateway WebSocket API whose clients authenticate with a JWT on `$connect`, whose
 * connections are kept per user in DynamoDB, and whose messages reach everyone, one user, or
 * your own routes.
 *
 * Out of the box, a client that sends `{"action":"broadcast","message":"Hello"}` reaches every
 * connection with `{"message":"Hello","sender":"<its user id>"}`.
 */
export class AuthenticatedWebSocketApi extends Construct {
  /** The WebSocket API. */
  public readonly webSocketApi: apigwv2.WebSocketApi;

  /** The stage clients connect to. */
  public readonly stage: apigwv2.WebSocketStage;

  /**
   * The connection registry: one row per open connection (`connectionId`), with the user it
   * belongs to (GSI `byUser`), when it connected, when its token expires, and its claims.
   */
  public readonly table: dynamodb.Table;

  /** The `$connect` REQUEST authorizer: verifies the token. */
  public readonly authorizerFunction: lambda.Function;

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
   */
  public readonly callbackUrl: string;

  constructor(scope: Construct, id: string, props: AuthenticatedWebSocketApiProps) {
    super(scope, id);
    validateProps(props);
    const stageName = props.stageName ?? 'dev';

    this.table = new dynamodb.Table(this, 'Connections', {
      partitionKey: { name: Registry.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: Registry.TTL,
      // Rows describe live connections only; nothing in them outlives the connections.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: Registry.USER_INDEX,
      partitionKey: { name: Registry.USER_ID, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [Registry.TTL, Registry.EXPIRES_AT],
    });

    const common = { architecture: lambda.Architecture.ARM_64 };
    this.authorizerFunction = new AuthorizerFunction(this, 'Authorizer', {
      ...common,
      description: 'Verifies the JWT of a WebSocket $connect',
      memorySize: 256,
      timeout: Duration.seconds(10),
    });
    props.auth._bind(this.authorizerFunction);

    this.connectionFunction = new ConnectionFunction(this, 'ConnectionHandler', {
      ...common,
      description: 'Registers WebSocket connections on $connect and removes them on $disconnect',
      memorySize: 256,
      timeout: Duration.seconds(10),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.CONNECTION_TTL_SECONDS]: String(Defaults.CONNECTION_TTL_SECONDS),
        ...(props.auth.contextClaims.length > 0 ? { [Env.AUTH_CONTEXT_CLAIMS]: props.auth.contextClaims.join(',') } : {}),
        // A subprotocol token: $connect echoes the protocol name, as browsers require.
        ...(props.auth.tokenLocation._handlerValue.startsWith('subprotocol:')
          ? { [Env.AUTH_TOKEN_LOCATION]: props.auth.tokenLocation._handlerValue } : {}),
      },
    });
    this.table.grant(this.connectionFunction, 'dynamodb:PutItem', 'dynamodb:DeleteItem');

    const fanOut = props.fanOut ?? FanOut.inline();
    /** What every sender (message handler, publisher) reads about the fan-out. */
    const senderEnvironment = {
      [Env.FANOUT_CONCURRENCY]: String(fanOut.concurrency),
      [Env.FANOUT_SEGMENTS]: String(fanOut.segments),
      [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
    };
    this.messageFunction = new MessageFunction(this, 'MessageHandler', {
      ...common,
      description: 'Serves broadcast, send and ping on the WebSocket $default route',
      memorySize: 512,
      timeout: Duration.seconds(30),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.USER_INDEX_NAME]: Registry.USER_INDEX,
        ...senderEnvironment,
      },
    });
    this.table.grant(this.messageFunction, 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem');
    // Expiry: past the $connect token's exp, read the row's (a reauth moves it), and move it on reauth,
    // verifying the fresh token exactly as the authorizer does (same AUTH_* settings and key grant).
    this.table.grant(this.messageFunction, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    props.auth._bind(this.messageFunction);

    this.expirySweeperFunction = new ExpirySweeperFunction(this, 'ExpirySweeper', {
      ...common,
      description: 'Closes WebSocket connections whose token has expired',
      memorySize: 256,
      timeout: Duration.minutes(1),
      environment: { [Env.TABLE_NAME]: this.table.tableName },
    });
    this.table.grant(this.expirySweeperFunction, 'dynamodb:Scan', 'dynamodb:DeleteItem');
    new events.Rule(this, 'ExpirySweep', {
      description: 'Closes WebSocket connections whose token has expired',
      schedule: events.Schedule.rate(props.expirySweepInterval ?? Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.expirySweeperFunction, { retryAttempts: 0 })],
    });

    this.publisherFunction = new PublisherFunction(this, 'Publisher', {
      ...common,
      description: 'Lets backends push to everyone, a user or a connection, answering the counts',
      memorySize: 512,
      timeout: Duration.seconds(60),
      environment: {
        [Env.TABLE_NAME]: this.table.tableName,
        [Env.USER_INDEX_NAME]: Registry.USER_INDEX,
        ...senderEnvironment,
      },
    });
    this.table.grant(this.publisherFunction, 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem');

    if (fanOut.queued) {
      this.fanOutDeadLetterQueue = new sqs.Queue(this, 'FanOutDeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      const workerTimeout = Duration.minutes(2);
      this.fanOutQueue = new sqs.Queue(this, 'FanOutQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // Six times the worker's timeout, as Lambda advises for SQS event sources.
        visibilityTimeout: Duration.seconds(workerTimeout.toSeconds() * 6),
        deadLetterQueue: { queue: this.fanOutDeadLetterQueue, maxReceiveCount: 3 },
      });
      this.fanOutWorker = new FanOutWorkerFunction(this, 'FanOutWorker', {
        ...common,
        description: 'Delivers one scan segment of a queued broadcast at its share of the send rate',
        memorySize: 512,
        timeout: workerTimeout,
        environment: {
          [Env.TABLE_NAME]: this.table.tableName,
          [Env.FANOUT_CONCURRENCY]: String(fanOut.concurrency),
          [Env.POST_TIMEOUT_MS]: String(Defaults.POST_TIMEOUT_MS),
          // Each of the at most maxWorkers invocations posts at its share, so together they stay under maxSendRate.
          [Env.FANOUT_MAX_SEND_RATE]: String(Math.floor(fanOut.maxSendRate! / fanOut.maxWorkers)),
          [Env.FANOUT_QUEUE_URL]: this.fanOutQueue.queueUrl,
          [Env.FANOUT_DLQ_URL]: this.fanOutDeadLetterQueue.queueUrl,
        },
      });
      this.fanOutWorker.addEventSource(new SqsEventSource(this.fanOutQueue, {
        batchSize: 1,
        maxConcurrency: fanOut.maxWorkers,
        reportBatchItemFailures: true,
      }));
      this.table.grant(this.fanOutWorker, 'dynamodb:Scan', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem');
      this.fanOutQueue.grantSendMessages(this.fanOutWorker); // the rest of a segment cut off by the timeout
      this.fanOutDeadLetterQueue.grantSendMessages(this.fanOutWorker); // recipients it could not reach
      for (const sender of [this.messageFunction, this.publisherFunction]) {
        sender.addEnvironment(Env.FANOUT_QUEUE_URL, this.fanOutQueue.queueUrl);
        this.fanOutQueue.grantSendMessages(sender);
      }
    }

    this.webSocketApi = new apigwv2.WebSocketApi(this, 'Api', {
      apiName: props.apiName,
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

    this.stage = new apigwv2.WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName,
      autoDeploy: true,
      throttle: props.throttle,
    });
    this.url = this.stage.url;
    this.callbackUrl = this.stage.callbackUrl;

    const callers = [this.messageFunction, this.publisherFunction, this.expirySweeperFunction, ...(this.fanOutWorker ? [this.fanOutWorker] : [])];
    for (const sender of callers) {
      sender.addEnvironment(Env.CALLBACK_URL, this.callbackUrl);
      this.grantManageConnections(sender);
    }

    for (const [routeKey, target] of Object.entries(props.routes ?? {})) {
      this.webSocketApi.addRoute(routeKey, target._bind(this, routeKey));
    }
  }

  /**
   * Lets `grantee` post to, read and close this stage's connections through the @connections API
   * (`execute-api:ManageConnections` on this API's stage only).
   * @param grantee the principal to grant
   */
  public grantManageConnections(grantee: iam.IGrantable): iam.Grant {
    return this.stage.grantManagementApiAccess(grantee);
  }

  /**
   * Lets `grantee` push to connections by invoking `publisherFunction` (`lambda:InvokeFunction` on
   * it only): a Python service, a Step Function, a container, or a route Lambda. A `lambda.Function`
   * grantee also gets `CONNECTIONS_PUBLISHER_FUNCTION_NAME` in its environment, which the
   * `cdk-authenticated-websocket-api/lib/publish` helper reads.
   * @param grantee the principal to grant
   */
  public grantSend(grantee: iam.IGrantable): iam.Grant {
    if (grantee instanceof lambda.Function) {
      grantee.addEnvironment(Env.PUBLISHER_FUNCTION_NAME, this.publisherFunction.functionName);
    }
    return this.publisherFunction.grantInvoke(grantee);
  }

  /**
   * Lets `grantee` read the connection registry: look up a connection, list a user's connections
   * (GSI \`byUser\`) or scan them all.
   * @param grantee the principal to grant
   */
  public grantReadConnections(grantee: iam.IGrantable): iam.Grant {
    return this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan');
  }
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

  const throttle = props.throttle;
  if (throttle?.rateLimit !== undefined && !Token.isUnresolved(throttle.rateLimit) && !(throttle.rateLimit >= 0)) {
    throw new Error(`AuthenticatedWebSocketApi: throttle.rateLimit is ${throttle.rateLimit}; use a number of requests per second of 0 or more.`);
  }
  if (throttle?.burstLimit !== undefined && !Token.isUnresolved(throttle.burstLimit)
    && !(Number.isInteger(throttle.burstLimit) && throttle.burstLimit >= 0)) {
    throw new Error(`AuthenticatedWebSocketApi: throttle.burstLimit is ${throttle.burstLimit}; use a whole number of requests of 0 or more.`);
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
