import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ResolutionContext, resolveString, resolveValue, UnresolvableError } from './intrinsics';

/**
 * Reads a synthesized cloud assembly (`cdk.out`) into what the gateway serves: every WebSocket API
 * (`AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`) with its stages, routes, integrations
 * and authorizers, the Lambda functions they invoke, the DynamoDB tables and the Secrets Manager
 * secrets. It reads the same files `cdk deploy` would upload, so what runs locally is what deploys.
 */

/** A Lambda function as the template declares it, with its environment resolved to local values. */
export interface FunctionModel {
  /** `<stack>/<logicalId>`, unique in the assembly. */
  readonly key: string;
  readonly logicalId: string;
  readonly functionName: string;
  readonly arn: string;
  readonly runtime: string;
  /** `file.export`, as Lambda reads it. */
  readonly handler: string;
  /** Folder holding the code (the synthesized asset), when the code is a zip asset. */
  readonly codeDirectory?: string;
  /** Inline source (`Code.ZipFile`, CDK's `Code.fromInline`). */
  readonly inlineCode?: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  /** `ReservedConcurrentExecutions`: the most invocations that run at once, when set. */
  readonly reservedConcurrency?: number;
  /** Variables as strings; API endpoints still name the deployed host (the gateway localizes them). */
  readonly environment: Readonly<Record<string, string>>;
  /** Why a variable could not be resolved, one line each. */
  readonly unresolved: readonly string[];
}

export interface TableModel {
  readonly logicalId: string;
  readonly tableName: string;
  /** A DynamoDB CreateTable request for the table's keys and indexes. */
  readonly createTable: Record<string, unknown>;
}

/** An SQS queue: its names as CloudFormation gives them (the URL names the deployed host until localized). */
export interface QueueModel {
  readonly logicalId: string;
  readonly queueName: string;
  readonly arn: string;
  /** `https://sqs.{region}.amazonaws.com/{account}/{name}`, what `Ref` gives. */
  readonly url: string;
  readonly visibilityTimeoutSeconds: number;
  /** `RedrivePolicy`: where a message goes after `maxReceiveCount` receives. */
  readonly deadLetterQueueArn?: string;
  readonly maxReceiveCount?: number;
}

/** An event source mapping from an SQS queue to a function (`AWS::Lambda::EventSourceMapping`). */
export interface EventSourceMappingModel {
  readonly logicalId: string;
  readonly queueArn: string;
  readonly functionArn: string;
  /** @default 10 */
  readonly batchSize: number;
  /** `FunctionResponseTypes: [ReportBatchItemFailures]`: the function answers `{ batchItemFailures }`. */
  readonly reportBatchItemFailures: boolean;
  /** `ScalingConfig.MaximumConcurrency`: the most invocations at once. */
  readonly maximumConcurrency?: number;
}

/**
 * An EventBridge rule (`AWS::Events::Rule`) whose pattern authws local can match: exact values of
 * `source` and `detail-type` only, with the Lambda functions among its targets.
 */
export interface EventRuleModel {
  /** `<stack>/<logicalId>`. */
  readonly key: string;
  /** The bus it listens on (a name; `default` when the rule names none). */
  readonly eventBusName: string;
  /** The values `source` must equal one of; undefined when the pattern does not constrain it. */
  readonly sources?: readonly string[];
  /** The values `detail-type` must equal one of; undefined when the pattern does not constrain it. */
  readonly detailTypes?: readonly string[];
  /** The ARNs of the functions it targets. */
  readonly functionArns: readonly string[];
}

export interface SecretModel {
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
}

export type IntegrationModel =
  | { readonly type: 'AWS_PROXY'; readonly functionArn: string; readonly timeoutMs: number }
  | {
    readonly type: 'HTTP_PROXY' | 'HTTP';
    readonly uri: string;
    readonly method: string;
    readonly timeoutMs: number;
    /** `integration.request.header.x` -> `context.connectionId`, `'literal'`, ... */
    readonly requestParameters: Readonly<Record<string, string>>;
    /** Request templates by key (HTTP only). */
    readonly requestTemplates: Readonly<Record<string, string>>;
    readonly templateSelectionExpression?: string;
  }
  | { readonly type: 'MOCK' }
  | { readonly type: 'UNSUPPORTED'; readonly description: string };

export interface AuthorizerModel {
  readonly name: string;
  /** `route.request.header.Authorization`, `route.request.querystring.token`, ... */
  readonly identitySources: readonly string[];
  readonly functionArn?: string;
}

export interface RouteModel {
  readonly routeKey: string;
  /** `NONE`, `CUSTOM` (Lambda authorizer) or `AWS_IAM`. */
  readonly authorizationType: string;
  readonly authorizer?: AuthorizerModel;
  readonly integration?: IntegrationModel;
  /** The route has a route response: what the integration returns is sent to the client. */
  readonly returnResponse: boolean;
}

export interface StageModel {
  readonly stageName: string;
  readonly stageVariables: Readonly<Record<string, string>>;
}

export interface WebSocketApiModel {
  readonly stackName: string;
  readonly logicalId: string;
  readonly name: string;
  /** A stand-in for the id API Gateway would assign: 10 lowercase letters and digits. */
  readonly apiId: string;
  readonly region: string;
  readonly accountId: string;
  readonly routeSelectionExpression: string;
  readonly routes: ReadonlyMap<string, RouteModel>;
  readonly stages: readonly StageModel[];
}

export interface AssemblyModel {
  readonly directory: string;
  readonly apis: readonly WebSocketApiModel[];
  /** By ARN (unqualified). */
  readonly functions: ReadonlyMap<string, FunctionModel>;
  readonly tables: readonly TableModel[];
  readonly secrets: readonly SecretModel[];
  readonly queues: readonly QueueModel[];
  /** SQS event sources (other kinds are reported in `warnings`). */
  readonly eventSourceMappings: readonly EventSourceMappingModel[];
  /** EventBridge rules with exact-match patterns on source and detail-type (others are reported in `warnings`). */
  readonly eventRules: readonly EventRuleModel[];
  /** Things the gateway cannot reproduce, for the startup log. */
  readonly warnings: readonly string[];
}

interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

interface Template {
  readonly Resources?: Record<string, Resource>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
}

interface StackArtifact {
  readonly stackName: string;
  readonly directory: string;
  readonly template: Template;
  readonly region: string;
  readonly accountId: string;
  /** Asset folders by the S3 object key the template's `Code.S3Key` names (from `<stack>.assets.json`). */
  readonly assetPaths: ReadonlyMap<string, string>;
}

/** The region and account of stacks synthesized without an environment (`aws://unknown-account/unknown-region`). */
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_ACCOUNT = '000000000000';

/** Reads `<directory>/manifest.json` and every stack template in it (nested assemblies of CDK stages included). */
export function loadAssembly(directory: string): AssemblyModel {
  const root = resolve(directory);
  const manifestFile = join(root, 'manifest.json');
  if (!existsSync(manifestFile)) {
    throw new Error(`No cloud assembly at ${root}: manifest.json is missing. Run \`npx cdk synth\` first, or pass --assembly <dir>.`);
  }
  const stacks = readStacks(root);
  const apis: WebSocketApiModel[] = [];
  const functions = new Map<string, FunctionModel>();
  const tables: TableModel[] = [];
  const secrets: SecretModel[] = [];
  const queues: QueueModel[] = [];
  const eventSourceMappings: EventSourceMappingModel[] = [];
  const eventRules: EventRuleModel[] = [];
  const warnings: string[] = [];
  for (const stack of stacks) {
    const model = new StackReader(stack);
    apis.push(...model.apis());
    for (const fn of model.functions()) functions.set(fn.arn, fn);
    tables.push(...model.tables());
    secrets.push(...model.secrets());
    queues.push(...model.queues());
    eventSourceMappings.push(...model.eventSourceMappings());
    eventRules.push(...model.eventRules());
    warnings.push(...model.warnings);
  }
  return { directory: root, apis, functions, tables, secrets, queues, eventSourceMappings, eventRules, warnings };
}

function readStacks(directory: string): StackArtifact[] {
  const manifest = readJson(join(directory, 'manifest.json')) as {
    artifacts?: Record<string, { type: string; environment?: string; properties?: Record<string, unknown>; dependencies?: string[] }>;
  };
  const artifacts = manifest.artifacts ?? {};
  const stacks: StackArtifact[] = [];
  for (const [artifactId, artifact] of Object.entries(artifacts)) {
    if (artifact.type === 'aws:cloudformation:stack') {
      const properties = artifact.properties ?? {};
      const templateFile = String(properties.templateFile);
      const [, account, region] = /^aws:\/\/([^/]+)\/([^/]+)$/.exec(artifact.environment ?? '') ?? [];
      stacks.push({
        stackName: String(properties.stackName ?? artifactId),
        directory,
        template: readJson(join(directory, templateFile)) as Template,
        region: region && !region.startsWith('unknown-') ? region : DEFAULT_REGION,
        accountId: account && !account.startsWith('unknown-') ? account : DEFAULT_ACCOUNT,
        assetPaths: assetPaths(directory, (artifact.dependencies ?? []).map((id) => artifacts[id])),
      });
    } else if (artifact.type === 'cdk:cloud-assembly') {
      const nested = (artifact.properties ?? {}).directoryName;
      if (typeof nested === 'string') stacks.push(...readStacks(join(directory, nested)));
    }
  }
  return stacks;
}

/** A file of the assembly as JSON; a missing or malformed file is an error naming it. */
function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read ${file} of the cloud assembly: ${(err as NodeJS.ErrnoException).code ?? String(err)}. Run \`npx cdk synth\` again.`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} of the cloud assembly is not valid JSON (${err instanceof Error ? err.message : String(err)}). Run \`npx cdk synth\` again.`);
  }
}

/**
 * Where each file asset of a stack was staged, by its S3 object key. The template's
 * `aws:asset:path` metadata says the same, but only the CDK CLI asks for that metadata: an
 * assembly written by `app.synth()` (in a test, say) has the asset manifest only.
 */
function assetPaths(directory: string, dependencies: Array<{ type: string; properties?: Record<string, unknown> } | undefined>): Map<string, string> {
  const paths = new Map<string, string>();
  for (const dependency of dependencies) {
    if (dependency?.type !== 'cdk:asset-manifest' || typeof dependency.properties?.file !== 'string') continue;
    const manifest = readJson(join(directory, dependency.properties.file)) as {
      files?: Record<string, { source?: { path?: string }; destinations?: Record<string, { objectKey?: string }> }>;
    };
    for (const file of Object.values(manifest.files ?? {})) {
      if (!file.source?.path) continue;
      for (const destination of Object.values(file.destinations ?? {})) {
        if (destination.objectKey) paths.set(destination.objectKey, join(directory, file.source.path));
      }
    }
  }
  return paths;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A short, stable stand-in id: the same template gives the same ids on every run. */
function localId(seed: string, length: number): string {
  const digest = createHash('sha256').update(seed).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(digest.subarray(0, length), (byte) => alphabet[byte % alphabet.length]).join('');
}

/** Reads one stack: gives each resource a local name and resolves properties against those names. */
class StackReader implements ResolutionContext {
  readonly pseudoParameters: Record<string, string>;
  readonly warnings: string[] = [];
  private readonly resources: Record<string, Resource>;

  constructor(private readonly stack: StackArtifact) {
    this.resources = stack.template.Resources ?? {};
    this.pseudoParameters = {
      'AWS::Region': stack.region,
      'AWS::AccountId': stack.accountId,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': stack.stackName,
      'AWS::StackId': `arn:aws:cloudformation:${stack.region}:${stack.accountId}:stack/${stack.stackName}/${localId(stack.stackName, 8)}`,
    };
  }

  ref(logicalId: string): string | undefined {
    const parameter = this.stack.template.Parameters?.[logicalId];
    if (parameter) return parameter.Default === undefined ? undefined : String(parameter.Default);
    const resource = this.resources[logicalId];
    if (!resource) return undefined;
    switch (resource.Type) {
      case 'AWS::ApiGatewayV2::Api': return this.apiId(logicalId);
      case 'AWS::ApiGatewayV2::Stage': return this.literal(resource.Properties?.StageName) ?? logicalId;
      case 'AWS::DynamoDB::Table':
      case 'AWS::DynamoDB::GlobalTable': return this.tableName(logicalId);
      case 'AWS::SecretsManager::Secret': return this.secret(logicalId).arn;
      case 'AWS::Lambda::Function': return this.functionName(logicalId);
      case 'AWS::SQS::Queue': return this.queueUrl(logicalId);
      case 'AWS::Events::EventBus': return this.literal(resource.Properties?.Name) ?? logicalId;
      case 'AWS::Lambda::Alias': return `${this.functionArnOf(resource.Properties?.FunctionName)}:${this.literal(resource.Properties?.Name) ?? logicalId}`;
      case 'AWS::Lambda::Version': return `${this.functionArnOf(resource.Properties?.FunctionName)}:1`;
      default: return logicalId; // CloudFormation physical ids are opaque strings; the logical id stands in
    }
  }

  getAtt(logicalId: string, attribute: string): string | undefined {
    const resource = this.resources[logicalId];
    if (!resource) return undefined;
    const { region, accountId } = this.stack;
    switch (`${resource.Type}.${attribute}`) {
      case 'AWS::Lambda::Function.Arn': return this.functionArn(logicalId);
      case 'AWS::DynamoDB::Table.Arn':
      case 'AWS::DynamoDB::GlobalTable.Arn': return `arn:aws:dynamodb:${region}:${accountId}:table/${this.tableName(logicalId)}`;
      case 'AWS::DynamoDB::Table.StreamArn': return `arn:aws:dynamodb:${region}:${accountId}:table/${this.tableName(logicalId)}/stream/local`;
      case 'AWS::ApiGatewayV2::Api.ApiId': return this.apiId(logicalId);
      case 'AWS::ApiGatewayV2::Api.ApiEndpoint': return `wss://${this.apiId(logicalId)}.execute-api.${region}.amazonaws.com`;
      case 'AWS::SecretsManager::Secret.Id': return this.secret(logicalId).arn;
      case 'AWS::SQS::Queue.Arn': return `arn:aws:sqs:${region}:${accountId}:${this.queueName(logicalId)}`;
      case 'AWS::SQS::Queue.QueueName': return this.queueName(logicalId);
      case 'AWS::SQS::Queue.QueueUrl': return this.queueUrl(logicalId);
      default:
        if (attribute === 'Arn') {
          const service = resource.Type.split('::')[1]?.toLowerCase() ?? 'unknown';
          return `arn:aws:${service}:${region}:${accountId}:${logicalId}`;
        }
        return undefined;
    }
  }

  apis(): WebSocketApiModel[] {
    const apis: WebSocketApiModel[] = [];
    for (const [logicalId, resource] of this.ofType('AWS::ApiGatewayV2::Api')) {
      const props = resource.Properties ?? {};
      if (props.ProtocolType === 'HTTP') {
        this.warnings.push(`HTTP API ${this.stack.stackName}/${logicalId} (${this.literal(props.Name) ?? logicalId}) is not served: authws local serves WebSocket APIs only.`);
      }
      if (props.ProtocolType !== 'WEBSOCKET') continue;
      const apiId = this.apiId(logicalId);
      const stages = this.stagesOf(apiId);
      const name = this.literal(props.Name) ?? logicalId;
      if (stages.length === 0) {
        this.warnings.push(`WebSocket API ${this.stack.stackName}/${logicalId} has no stage, so there is nothing to serve.`);
        continue;
      }
      apis.push({
        stackName: this.stack.stackName,
        logicalId,
        name,
        apiId,
        region: this.stack.region,
        accountId: this.stack.accountId,
        routeSelectionExpression: this.literal(props.RouteSelectionExpression) ?? '$request.body.action',
        routes: this.routesOf(apiId, `${this.stack.stackName}/${logicalId}`),
        stages,
      });
    }
    for (const [logicalId, resource] of this.ofType('AWS::ApiGateway::RestApi')) {
      this.warnings.push(`REST API ${this.stack.stackName}/${logicalId} (${this.literal(resource.Properties?.Name) ?? logicalId}) is not served: authws local serves WebSocket APIs only.`);
    }
    return apis;
  }

  functions(): FunctionModel[] {
    return [...this.ofType('AWS::Lambda::Function')].map(([logicalId, resource]) => this.functionModel(logicalId, resource));
  }

  tables(): TableModel[] {
    const tables: TableModel[] = [];
    for (const type of ['AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable']) {
      for (const [logicalId, resource] of this.ofType(type)) {
        const props = resource.Properties ?? {};
        const tableName = this.tableName(logicalId);
        const index = (definition: Record<string, unknown>) => ({
          IndexName: definition.IndexName,
          KeySchema: definition.KeySchema,
          Projection: definition.Projection ?? { ProjectionType: 'ALL' },
        });
        const gsis = props.GlobalSecondaryIndexes as Array<Record<string, unknown>> | undefined;
        const lsis = props.LocalSecondaryIndexes as Array<Record<string, unknown>> | undefined;
        tables.push({
          logicalId,
          tableName,
          // Capacity does not matter locally; on-demand avoids dynalite's throughput validation.
          createTable: {
            TableName: tableName,
            AttributeDefinitions: props.AttributeDefinitions,
            KeySchema: props.KeySchema,
            BillingMode: 'PAY_PER_REQUEST',
            ...(gsis?.length ? { GlobalSecondaryIndexes: gsis.map(index) } : {}),
            ...(lsis?.length ? { LocalSecondaryIndexes: lsis.map(index) } : {}),
          },
        });
      }
    }
    return tables;
  }

  secrets(): SecretModel[] {
    return [...this.ofType('AWS::SecretsManager::Secret')].map(([logicalId]) => this.secret(logicalId));
  }

  queues(): QueueModel[] {
    return [...this.ofType('AWS::SQS::Queue')].map(([logicalId, resource]) => {
      const props = resource.Properties ?? {};
      const redrive = this.tryResolve(props.RedrivePolicy) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } | undefined;
      return {
        logicalId,
        queueName: this.queueName(logicalId),
        arn: this.getAtt(logicalId, 'Arn')!,
        url: this.queueUrl(logicalId),
        visibilityTimeoutSeconds: Number(this.literal(props.VisibilityTimeout) ?? 30),
        deadLetterQueueArn: typeof redrive?.deadLetterTargetArn === 'string' ? redrive.deadLetterTargetArn : undefined,
        maxReceiveCount: redrive?.maxReceiveCount === undefined ? undefined : Number(redrive.maxReceiveCount),
      };
    });
  }

  eventSourceMappings(): EventSourceMappingModel[] {
    const mappings: EventSourceMappingModel[] = [];
    for (const [logicalId, resource] of this.ofType('AWS::Lambda::EventSourceMapping')) {
      const props = resource.Properties ?? {};
      const source = this.literal(props.EventSourceArn) ?? '';
      if (!source.startsWith('arn:aws:sqs:')) {
        this.warnings.push(`event source mapping ${this.stack.stackName}/${logicalId} (${source || 'an unresolved source'}) is not run locally: only SQS event sources are.`);
        continue;
      }
      if (this.literal(props.Enabled) === 'false') continue;
      const scaling = this.tryResolve(props.ScalingConfig) as { MaximumConcurrency?: unknown } | undefined;
      const responseTypes = (this.tryResolve(props.FunctionResponseTypes) as unknown[] | undefined) ?? [];
      mappings.push({
        logicalId,
        queueArn: source,
        functionArn: this.functionArnOf(props.FunctionName),
        batchSize: Number(this.literal(props.BatchSize) ?? 10),
        reportBatchItemFailures: responseTypes.includes('ReportBatchItemFailures'),
        maximumConcurrency: scaling?.MaximumConcurrency === undefined ? undefined : Number(scaling.MaximumConcurrency),
      });
    }
    return mappings;
  }

  eventRules(): EventRuleModel[] {
    const rules: EventRuleModel[] = [];
    for (const [logicalId, resource] of this.ofType('AWS::Events::Rule')) {
      const props = resource.Properties ?? {};
      const key = `${this.stack.stackName}/${logicalId}`;
      if (props.EventPattern === undefined) continue; // a schedule: nothing puts events to it
      if (this.literal(props.State) === 'DISABLED') continue;
      const targets = (this.tryResolve(props.Targets) as Array<{ Arn?: unknown }> | undefined) ?? [];
      const functionArns = targets.map((target) => this.literal(target.Arn) ?? '')
        .map((arn) => /^(arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+)/.exec(arn)?.[1])
        .filter((arn): arn is string => arn !== undefined);
      if (functionArns.length === 0) continue;
      const raw = this.tryResolve(props.EventPattern);
      const pattern = typeof raw === 'string' ? safeJson(raw) : raw;
      const exact = (value: unknown) => Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string');
      const fields = pattern && typeof pattern === 'object' ? Object.entries(pattern as Record<string, unknown>) : undefined;
      if (!fields || fields.length === 0 || fields.some(([field, value]) => !['source', 'detail-type'].includes(field) || !exact(value))) {
        this.warnings.push(`EventBridge rule ${key} does not invoke its targets locally: authws local matches exact values of source and detail-type only, and its pattern is ${JSON.stringify(raw)}.`);
        continue;
      }
      const byField = Object.fromEntries(fields) as Record<string, string[] | undefined>;
      const bus = this.literal(props.EventBusName) ?? 'default';
      rules.push({
        key,
        eventBusName: bus.replace(/^arn:[^:]+:events:[^:]*:[^:]*:event-bus\//, ''),
        sources: byField.source,
        detailTypes: byField['detail-type'],
        functionArns,
      });
    }
    return rules;
  }

  private queueName(logicalId: string): string {
    const fifo = this.literal(this.resources[logicalId]?.Properties?.FifoQueue) === 'true';
    return this.literal(this.resources[logicalId]?.Properties?.QueueName) ?? `${this.stack.stackName}-${logicalId}${fifo ? '.fifo' : ''}`;
  }

  private queueUrl(logicalId: string): string {
    return `https://sqs.${this.stack.region}.amazonaws.com/${this.stack.accountId}/${this.queueName(logicalId)}`;
  }

  private *ofType(type: string): Iterable<[string, Resource]> {
    for (const entry of Object.entries(this.resources)) if (entry[1].Type === type) yield entry;
  }

  private literal(value: unknown): string | undefined {
    if (value === undefined) return undefined;
    try {
      return resolveString(value, this);
    } catch {
      return undefined;
    }
  }

  private apiId(logicalId: string): string {
    return localId(`${this.stack.stackName}/${logicalId}`, 10);
  }

  private tableName(logicalId: string): string {
    return this.literal(this.resources[logicalId]?.Properties?.TableName) ?? `${this.stack.stackName}-${logicalId}`;
  }

  private functionName(logicalId: string): string {
    return this.literal(this.resources[logicalId]?.Properties?.FunctionName) ?? `${this.stack.stackName}-${logicalId}`.slice(0, 64);
  }

  private functionArn(logicalId: string): string {
    return `arn:aws:lambda:${this.stack.region}:${this.stack.accountId}:function:${this.functionName(logicalId)}`;
  }

  /** The ARN of a function given by name, ARN or intrinsic (as in an alias's `FunctionName`). */
  private functionArnOf(value: unknown): string {
    const name = this.literal(value) ?? '';
    return name.startsWith('arn:') ? name : `arn:aws:lambda:${this.stack.region}:${this.stack.accountId}:function:${name}`;
  }

  private secret(logicalId: string): SecretModel {
    const name = this.literal(this.resources[logicalId]?.Properties?.Name) ?? `${logicalId}-${localId(this.stack.stackName, 6)}`;
    // Secrets Manager appends a dash and six random characters to a secret's name in its ARN.
    const arn = `arn:aws:secretsmanager:${this.stack.region}:${this.stack.accountId}:secret:${name}-${localId(name, 6)}`;
    return { logicalId, name, arn };
  }

  private stagesOf(apiId: string): StageModel[] {
    const stages: StageModel[] = [];
    for (const [, resource] of this.ofType('AWS::ApiGatewayV2::Stage')) {
      const props = resource.Properties ?? {};
      if (this.literal(props.ApiId) !== apiId) continue;
      const variables = this.tryResolve(props.StageVariables) as Record<string, unknown> | undefined;
      stages.push({
        stageName: this.literal(props.StageName) ?? '$default',
        stageVariables: Object.fromEntries(Object.entries(variables ?? {}).map(([key, value]) => [key, String(value)])),
      });
    }
    return stages;
  }

  private routesOf(apiId: string, apiPath: string): Map<string, RouteModel> {
    const routes = new Map<string, RouteModel>();
    for (const [logicalId, resource] of this.ofType('AWS::ApiGatewayV2::Route')) {
      const props = resource.Properties ?? {};
      if (this.literal(props.ApiId) !== apiId) continue;
      const routeKey = this.literal(props.RouteKey);
      if (routeKey === undefined) {
        this.warnings.push(`${apiPath}: route ${logicalId} has a RouteKey that cannot be resolved locally; it is not served.`);
        continue;
      }
      const target = this.literal(props.Target);
      const integrationId = target?.startsWith('integrations/') ? target.slice('integrations/'.length) : undefined;
      const authorizationType = this.literal(props.AuthorizationType) ?? 'NONE';
      const authorizerId = this.literal(props.AuthorizerId);
      routes.set(routeKey, {
        routeKey,
        authorizationType,
        authorizer: authorizationType === 'CUSTOM' && authorizerId ? this.authorizerModel(authorizerId) : undefined,
        integration: integrationId ? this.integrationModel(integrationId) : undefined,
        returnResponse: props.RouteResponseSelectionExpression !== undefined,
      });
    }
    return routes;
  }

  private authorizerModel(logicalId: string): AuthorizerModel {
    const props = this.resources[logicalId]?.Properties ?? {};
    const identitySources = (this.tryResolve(props.IdentitySource) as string[] | undefined) ?? [];
    return {
      name: this.literal(props.Name) ?? logicalId,
      identitySources: identitySources.map(String),
      functionArn: lambdaArnOfUri(this.literal(props.AuthorizerUri)),
    };
  }

  private integrationModel(logicalId: string): IntegrationModel {
    const props = this.resources[logicalId]?.Properties;
    if (!props) return { type: 'UNSUPPORTED', description: `integration ${logicalId} is not in the template` };
    const type = this.literal(props.IntegrationType) ?? '';
    const timeoutMs = Number(this.literal(props.TimeoutInMillis) ?? 29_000);
    const uri = this.literal(props.IntegrationUri);
    switch (type) {
      case 'AWS_PROXY': {
        const functionArn = lambdaArnOfUri(uri);
        if (!functionArn) return { type: 'UNSUPPORTED', description: `AWS_PROXY integration ${logicalId} does not invoke a Lambda function (${uri ?? 'no URI'})` };
        return { type, functionArn, timeoutMs };
      }
      case 'HTTP':
      case 'HTTP_PROXY':
        if (!uri) return { type: 'UNSUPPORTED', description: `${type} integration ${logicalId} has a URI that cannot be resolved locally` };
        return {
          type,
          uri,
          method: this.literal(props.IntegrationMethod) ?? 'POST',
          timeoutMs,
          requestParameters: this.stringMap(props.RequestParameters),
          requestTemplates: this.stringMap(props.RequestTemplates),
          templateSelectionExpression: this.literal(props.TemplateSelectionExpression),
        };
      case 'MOCK':
        return { type };
      default:
        return { type: 'UNSUPPORTED', description: `${type || 'an unknown'} integration (${logicalId}) is not supported locally; use AWS_PROXY, HTTP, HTTP_PROXY or MOCK` };
    }
  }

  private functionModel(logicalId: string, resource: Resource): FunctionModel {
    const props = resource.Properties ?? {};
    const code = (props.Code ?? {}) as Record<string, unknown>;
    const assetPath = resource.Metadata?.['aws:asset:path'];
    const environment: Record<string, string> = {};
    const unresolved: string[] = [];
    const variables = ((props.Environment ?? {}) as { Variables?: Record<string, unknown> }).Variables ?? {};
    for (const [name, value] of Object.entries(variables)) {
      try {
        environment[name] = resolveString(value, this);
      } catch (err) {
        unresolved.push(`${name}: ${err instanceof UnresolvableError ? err.message : String(err)}`);
      }
    }
    return {
      key: `${this.stack.stackName}/${logicalId}`,
      logicalId,
      functionName: this.functionName(logicalId),
      arn: this.functionArn(logicalId),
      runtime: this.literal(props.Runtime) ?? (code.ImageUri ? 'container image' : 'unknown'),
      handler: this.literal(props.Handler) ?? 'index.handler',
      codeDirectory: typeof assetPath === 'string'
        ? join(this.stack.directory, assetPath)
        : this.stack.assetPaths.get(this.literal(code.S3Key) ?? ''),
      inlineCode: typeof code.ZipFile === 'string' ? code.ZipFile : this.literal(code.ZipFile),
      timeoutSeconds: Number(this.literal(props.Timeout) ?? 3),
      memorySize: Number(this.literal(props.MemorySize) ?? 128),
      reservedConcurrency: props.ReservedConcurrentExecutions === undefined ? undefined : Number(this.literal(props.ReservedConcurrentExecutions)),
      environment,
      unresolved,
    };
  }

  private stringMap(value: unknown): Record<string, string> {
    const resolved = this.tryResolve(value) as Record<string, unknown> | undefined;
    return Object.fromEntries(Object.entries(resolved ?? {}).map(([key, item]) => [key, String(item)]));
  }

  private tryResolve(value: unknown): unknown {
    try {
      return resolveValue(value, this);
    } catch {
      return undefined;
    }
  }
}

/**
 * The function ARN inside an API Gateway Lambda URI
 * (`arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{functionArn}/invocations`),
 * without a version or alias qualifier: the gateway runs the function's code as synthesized.
 */
export function lambdaArnOfUri(uri: string | undefined): string | undefined {
  const match = /functions\/(arn:[^/]+:lambda:[^/]+:[^/]+:function:[^/:]+)(?::[^/]+)?\/invocations/.exec(uri ?? '');
  return match?.[1];
}
