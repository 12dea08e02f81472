import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { AssemblyModel, FunctionModel, loadAssembly, WebSocketApiModel } from './assembly';
import { ConnectionLimits } from './connection';
import { LambdaRunner } from './lambda-runner';
import { LocalDynamoDb, startDynamoDb } from './local-dynamodb';
import { LocalEventBridge, startEventBridge } from './local-eventbridge';
import { LocalLambda, startLambda } from './local-lambda';
import { LocalSqs, startSqs } from './local-sqs';
import { sandboxSetup } from './sandbox-setup';
import { LocalSecretsManager, startSecretsManager } from './secrets-manager';
import { WebSocketApiServer } from './websocket-api-server';

/**
 * `authws local`: serves every WebSocket API of a cloud assembly on this machine. Each API gets a
 * port (the first one `port`, the next ones the ports after it, or free ports when `port` is 0);
 * tables live in an embedded DynamoDB, secrets in a local Secrets Manager and queues in a local SQS
 * (whose event sources invoke their functions); a local Lambda Invoke API runs the assembly's
 * functions for code that invokes them, and a local EventBridge takes PutEvents (logging each event
 * and invoking the functions of matching rules), all reached by the functions through
 * `AWS_ENDPOINT_URL_*` variables, so the handlers need no local mode.
 */

export interface GatewayOptions {
  readonly assemblyDirectory: string;
  readonly host?: string;
  readonly port?: number;
  /** The value of every secret; random when absent. */
  readonly secret?: string;
  readonly idleTimeoutMs?: number;
  readonly maxLifetimeMs?: number;
  /**
   * Where the functions' provided packages (the AWS SDK v3, which Lambda's runtime provides) are
   * looked up, besides the assembly's folder: this folder's `node_modules` and its parents'.
   * @default process.cwd()
   */
  readonly projectDirectory?: string;
  /** The most sandboxes each function runs at once (its reserved concurrency, when lower, wins). @default DEFAULT_CONCURRENCY */
  readonly concurrency?: number;
  /** A folder of static files (a browser client) served at `/` of every API's port. */
  readonly webDirectory?: string;
  readonly log?: (line: string) => void;
}

/** Where the services only the functions use listen (the embedded DynamoDB, Secrets Manager, SQS). */
export const LOOPBACK = '127.0.0.1';

/** What API Gateway enforces and cannot be changed there: 10 minutes idle, 2 hours in all. */
export const DEFAULT_LIMITS: ConnectionLimits = { idleTimeoutMs: 10 * 60_000, maxLifetimeMs: 2 * 60 * 60_000 };

export interface ServedStage {
  readonly api: WebSocketApiModel;
  readonly stage: string;
  /** `ws://127.0.0.1:<port>/<stage>` */
  readonly url: string;
  /** `http://127.0.0.1:<port>/<stage>`: the @connections endpoint. */
  readonly callbackUrl: string;
}

export class LocalGateway {
  static async start(options: GatewayOptions): Promise<LocalGateway> {
    const sink = options.log ?? ((line: string) => console.log(line));
    // Log lines carry what clients choose (user ids, connection ids in @connections paths, close
    // reasons) and what functions print: one line stays one line, and no escape sequence reaches the terminal.
    const log = (line: string) => sink(escapeControlCharacters(line));
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 3001;
    const assembly = loadAssembly(options.assemblyDirectory);
    for (const warning of assembly.warnings) log(`warning: ${warning}`);
    if (assembly.apis.length === 0) {
      throw new Error(`The assembly at ${assembly.directory} has no WebSocket API (AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET and a stage).`);
    }
    checkAssets(assembly);
    const secret = options.secret ?? randomBytes(24).toString('base64url');
    const limits: ConnectionLimits = {
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_LIMITS.idleTimeoutMs,
      maxLifetimeMs: options.maxLifetimeMs ?? DEFAULT_LIMITS.maxLifetimeMs,
    };

    const gateway = new LocalGateway(assembly, secret, log, options);
    try {
      // Only the functions, on this machine, use these two: they stay on the loopback whatever `host` is.
      gateway.dynamoDb = await startDynamoDb(assembly.tables, LOOPBACK);
      gateway.secretsManager = await startSecretsManager(assembly.secrets, secret, LOOPBACK, log);
      gateway.sqs = await startSqs(assembly.queues, assembly.eventSourceMappings, LOOPBACK, log);
      gateway.lambda = await startLambda(() => gateway.runners.values(), LOOPBACK, log);
      const [home] = assembly.apis;
      gateway.eventBridge = await startEventBridge({
        rules: assembly.eventRules,
        functions: (arn) => gateway.runners.get(arn),
        region: home.region,
        accountId: home.accountId,
        host: LOOPBACK,
        log,
      });
      for (const [index, api] of assembly.apis.entries()) {
        gateway.servers.push(await WebSocketApiServer.listen({
          api,
          host,
          port: port === 0 ? 0 : port + index,
          limits,
          functions: (arn) => gateway.runners.get(arn),
          log,
          webDirectory: options.webDirectory,
        }));
      }
      // The functions' environment names the local endpoints, so the ports must be known first.
      gateway.startRunners();
      gateway.sqs.startPolling((arn) => gateway.runners.get(arn));
    } catch (err) {
      await gateway.close();
      throw err;
    }
    return gateway;
  }

  readonly stages: ServedStage[] = [];
  private readonly servers: WebSocketApiServer[] = [];
  private readonly runners = new Map<string, LambdaRunner>();
  private dynamoDb: LocalDynamoDb | undefined;
  private secretsManager: LocalSecretsManager | undefined;
  private sqs: LocalSqs | undefined;
  private lambda: LocalLambda | undefined;
  private eventBridge: LocalEventBridge | undefined;

  private constructor(
    readonly assembly: AssemblyModel,
    readonly secret: string,
    private readonly log: (line: string) => void,
    private readonly options: GatewayOptions,
  ) {}

  get dynamoDbEndpoint(): string {
    return this.dynamoDb!.endpoint;
  }

  get secretsManagerEndpoint(): string {
    return this.secretsManager!.endpoint;
  }

  /** The Lambda Invoke API of the assembly's functions (`AWS_ENDPOINT_URL_LAMBDA` for a local backend). */
  get lambdaEndpoint(): string {
    return this.lambda!.endpoint;
  }

  /** Where PutEvents goes (`AWS_ENDPOINT_URL_EVENTBRIDGE`). */
  get eventBridgeEndpoint(): string {
    return this.eventBridge!.endpoint;
  }

  /** Closes every connection (clients get a close frame and `$disconnect` runs), then everything else. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
    await Promise.all([...this.runners.values()].map((runner) => runner.close()));
    await this.sqs?.close();
    await this.lambda?.close();
    await this.eventBridge?.close();
    await this.dynamoDb?.close();
    await this.secretsManager?.close();
  }

  private startRunners(): void {
    for (const server of this.servers) {
      for (const served of server.urls()) this.stages.push({ api: server.api, ...served });
    }
    const localEndpoints = this.servers.map((server) => ({ apiId: server.api.apiId, host: new URL(server.urls()[0].url).host }));
    const usedFunctions = this.functionsUsedByRoutes();
    const newerRuntimes = new Set<string>();
    const workerSetup = sandboxSetup({
      searchRoots: [this.options.projectDirectory ?? process.cwd(), this.assembly.directory],
      endpoints: localEndpoints,
    });
    for (const fn of this.assembly.functions.values()) {
      const localized = { ...fn, environment: localizeEndpoints(fn.environment, localEndpoints, this.sqs!.endpoint) };
      const runner = new LambdaRunner(localized, {
        environment: this.lambdaEnvironment(fn),
        log: this.log,
        concurrency: this.options.concurrency,
        workerSetup,
      });
      this.runners.set(fn.arn, runner);
      if (!usedFunctions.has(fn.arn)) continue;
      if (runner.unsupportedReason) this.log(`warning: ${runner.unsupportedReason}; routes using it fail`);
      const wanted = /^nodejs(\d+)\.x$/.exec(fn.runtime)?.[1];
      if (wanted && Number(wanted) > Number(process.versions.node.split('.')[0])) newerRuntimes.add(fn.runtime);
      for (const problem of fn.unresolved) this.log(`warning: function ${fn.logicalId}: environment variable ${problem}; it is left unset`);
    }
    if (newerRuntimes.size > 0) {
      this.log(`note: the functions target ${[...newerRuntimes].join(', ')}; they run here on Node.js ${process.versions.node}`);
    }
  }

  private functionsUsedByRoutes(): Set<string> {
    return functionsInUse(this.assembly);
  }

  /** What the Lambda service sets, plus the local endpoints and dummy credentials the AWS SDK reads. */
  private lambdaEnvironment(fn: FunctionModel): Record<string, string> {
    const region = /^arn:aws:lambda:([^:]+):/.exec(fn.arn)?.[1] ?? 'us-east-1';
    return {
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: 'AKIALOCALAUTHWS00000',
      AWS_SECRET_ACCESS_KEY: 'local-secret-access-key',
      AWS_SESSION_TOKEN: 'local-session-token',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL_DYNAMODB: this.dynamoDbEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: this.secretsManagerEndpoint,
      AWS_ENDPOINT_URL_SQS: this.sqs!.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: this.lambdaEndpoint,
      // The SDK v3's service id for EventBridge is `EventBridge`; the lifecycle events read it too.
      AWS_ENDPOINT_URL_EVENTBRIDGE: this.eventBridgeEndpoint,
    };
  }
}

/**
 * Control characters (C0, DEL, C1, which holds the 8-bit CSI) and Unicode line separators as
 * `\\u001b`-style escapes.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A function a route or authorizer invokes whose asset folder is gone cannot run: say so before READY. */
function checkAssets(assembly: AssemblyModel): void {
  const used = functionsInUse(assembly);
  const missing = [...used].map((arn) => assembly.functions.get(arn))
    .filter((fn): fn is FunctionModel => fn?.codeDirectory !== undefined && !existsSync(fn.codeDirectory));
  if (missing.length > 0) {
    throw new Error(`The code of ${missing.map((fn) => `function ${fn.key} (${fn.codeDirectory})`).join(', ')} is missing from the assembly. Run \`npx cdk synth\` again.`);
  }
}

/** The functions the gateway may invoke: route integrations, authorizers, SQS event sources, EventBridge rule targets. */
function functionsInUse(assembly: AssemblyModel): Set<string> {
  const used = new Set<string>();
  for (const api of assembly.apis) {
    for (const route of api.routes.values()) {
      if (route.integration?.type === 'AWS_PROXY') used.add(route.integration.functionArn);
      if (route.authorizer?.functionArn) used.add(route.authorizer.functionArn);
    }
  }
  for (const mapping of assembly.eventSourceMappings) used.add(mapping.functionArn);
  for (const rule of assembly.eventRules) for (const arn of rule.functionArns) used.add(arn);
  return used;
}

/**
 * Points the deployed endpoints of the served APIs at the local ones:
 * `https://{apiId}.execute-api.{region}.amazonaws.com/dev` becomes `http://127.0.0.1:{port}/dev`
 * (and `wss://` becomes `ws://`).
 */
export function localizeEndpoints(
  environment: Readonly<Record<string, string>>,
  endpoints: ReadonlyArray<{ apiId: string; host: string }>,
  sqsEndpoint?: string,
): Record<string, string> {
  const localized: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    // Queue URLs (`https://sqs.{region}.amazonaws.com/{account}/{name}`) name the local SQS.
    let text = sqsEndpoint ? value.replace(/https:\/\/sqs\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?(?=\/)/g, sqsEndpoint) : value;
    for (const { apiId, host } of endpoints) {
      text = text.replace(new RegExp(`(https|wss)://${apiId}\\.execute-api\\.[a-z0-9-]+\\.amazonaws\\.com(?:\\.cn)?`, 'g'),
        (_whole, scheme: string) => `${scheme === 'wss' ? 'ws' : 'http'}://${host}`);
    }
    localized[name] = text;
  }
  return localized;
}
