import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeGrantWildcards, NagReasons } from './nag-suppressions';
import { Env, HandlerMetrics } from './runtime/environment';

/**
 * An authenticated WebSocket API, defined here or imported from another stack or app with
 * `AuthenticatedWebSocketApi.fromAttributes`: what backends need to push to it and watch it.
 */
export interface IAuthenticatedWebSocketApi extends IConstruct {
  /** The id of the API Gateway WebSocket API. */
  readonly webSocketApiId: string;

  /** The stage clients connect to. */
  readonly stageName: string;

  /** The URL clients connect to: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly url: string;

  /** The @connections endpoint backends post to: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly callbackUrl: string;

  /**
   * Lets `grantee` post to, read and close this stage's connections through the @connections API
   * (`execute-api:ManageConnections` on this API's stage only). The grant necessarily covers every
   * connection id of the stage; the matching cdk-nag finding (AwsSolutions-IAM5) is acknowledged on
   * the grantee's policy with that reason.
   * @param grantee the principal to grant
   */
  grantManageConnections(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` post to this stage's connections through the @connections API, and nothing else
   * (`execute-api:ManageConnections` on `POST/@connections/*` of this API's stage: no reading, no
   * closing). The matching cdk-nag finding (AwsSolutions-IAM5) is acknowledged on the grantee's policy.
   * @param grantee the principal to grant
   */
  grantPostToConnections(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` push to connections by invoking the publisher function (`lambda:InvokeFunction`
   * on it only): a Python service, a Step Function, a container, or a route Lambda. A `lambda.Function`
   * grantee also gets `CONNECTIONS_PUBLISHER_FUNCTION_NAME` in its environment, which the
   * `cdk-authenticated-websocket-api/lib/publish` helper reads.
   * @param grantee the principal to grant
   */
  grantSend(grantee: iam.IGrantable): iam.Grant;

  /**
   * An API Gateway metric of this API's stage (namespace `AWS/ApiGateway`, dimensions `ApiId` and `Stage`).
   * @param metricName e.g. `ConnectCount`, `MessageCount`, `ClientError`, `ExecutionError`, `IntegrationError`, `IntegrationLatency`
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Connections API Gateway accepted (`ConnectCount`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricConnectCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Messages sent to and from clients (`MessageCount`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricMessageCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Requests API Gateway answered 4XX before calling an integration (`ClientError`), refused connects included.
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricClientError(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Errors calling an integration (`ExecutionError`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricExecutionError(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Integration answers with a 4XX/5XX status (`IntegrationError`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricIntegrationError(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Milliseconds between API Gateway calling an integration and its answer (`IntegrationLatency`).
   * @param props statistic, period and the rest
   * @default - average over 5 minutes
   */
  metricIntegrationLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * A metric the bundled handlers emit (namespace `AuthenticatedWebSocketApi`, dimension `ApiId`).
   * @param metricName `Delivered`, `Gone`, `Failed`, `Throttled`, `Retried` or `AuthDenied`
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricHandler(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Posts the @connections API accepted (`Delivered`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricDelivered(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Recipients found gone (410) and removed from the registry (`Gone`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricGone(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Posts that failed after their retries (`Failed`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Posts answered 429, each attempt (`Throttled`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricThrottled(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Post attempts retried (`Retried`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricRetried(props?: cloudwatch.MetricOptions): cloudwatch.Metric;

  /**
   * Connections the authorizer refused with 401 or 403 (`AuthDenied`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  metricAuthDenied(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** What identifies an `AuthenticatedWebSocketApi` defined in another stack or app. */
export interface AuthenticatedWebSocketApiAttributes {
  /** The id of its API Gateway WebSocket API (`webSocketApi.apiId`, e.g. from a stack output). */
  readonly webSocketApiId: string;

  /** Its stage (`stageName`). */
  readonly stageName: string;

  /**
   * The ARN of its publisher function (`publisherFunction.functionArn`), for `grantSend`.
   * @default - none: `grantSend` throws, the other grants and the metrics work
   */
  readonly publisherFunctionArn?: string;
}

/**
 * What an `AuthenticatedWebSocketApi` and an imported one share: the URLs, the grants to push to
 * its connections, and its metrics.
 */
export abstract class AuthenticatedWebSocketApiBase extends Construct implements IAuthenticatedWebSocketApi {
  /** The id of the API Gateway WebSocket API. */
  public abstract readonly webSocketApiId: string;

  /** The stage clients connect to. */
  public abstract readonly stageName: string;

  /** The URL clients connect to: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  public abstract readonly url: string;

  /** The @connections endpoint backends post to: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  public abstract readonly callbackUrl: string;

  /**
   * Lets `grantee` post to, read and close this stage's connections through the @connections API
   * (`execute-api:ManageConnections` on this API's stage only). The grant necessarily covers every
   * connection id of the stage; the matching cdk-nag finding (AwsSolutions-IAM5) is acknowledged on
   * the grantee's policy with that reason.
   * @param grantee the principal to grant
   */
  public grantManageConnections(grantee: iam.IGrantable): iam.Grant {
    return this._grantConnections(grantee, ['*']);
  }

  /**
   * Lets `grantee` post to this stage's connections through the @connections API, and nothing else
   * (`execute-api:ManageConnections` on `POST/@connections/*` of this API's stage: no reading, no
   * closing). The matching cdk-nag finding (AwsSolutions-IAM5) is acknowledged on the grantee's policy.
   * @param grantee the principal to grant
   */
  public grantPostToConnections(grantee: iam.IGrantable): iam.Grant {
    return this._grantConnections(grantee, ['POST']);
  }

  /**
   * Lets `grantee` push to connections by invoking the publisher function (`lambda:InvokeFunction`
   * on it only): a Python service, a Step Function, a container, or a route Lambda. A `lambda.Function`
   * grantee also gets `CONNECTIONS_PUBLISHER_FUNCTION_NAME` in its environment, which the
   * `cdk-authenticated-websocket-api/lib/publish` helper reads.
   * @param grantee the principal to grant
   */
  public grantSend(grantee: iam.IGrantable): iam.Grant {
    const publisher = this._publisher();
    if (grantee instanceof lambda.Function) {
      grantee.addEnvironment(Env.PUBLISHER_FUNCTION_NAME, publisher.functionName);
    }
    const grant = publisher.grantInvoke(grantee);
    acknowledgeGrantWildcards(grantee, grant, NagReasons.PUBLISHER_VERSIONS);
    return grant;
  }


  /**
   * An API Gateway metric of this API's stage (namespace `AWS/ApiGateway`, dimensions `ApiId` and `Stage`).
   * @param metricName e.g. `ConnectCount`, `MessageCount`, `ClientError`, `ExecutionError`, `IntegrationError`, `IntegrationLatency`
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiId: this.webSocketApiId, Stage: this.stageName },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /**
   * Connections API Gateway accepted (`ConnectCount`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricConnectCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ConnectCount', props);
  }

  /**
   * Messages sent to and from clients (`MessageCount`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricMessageCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MessageCount', props);
  }

  /**
   * Requests API Gateway answered 4XX before calling an integration (`ClientError`), refused connects included.
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricClientError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ClientError', props);
  }

  /**
   * Errors calling an integration (`ExecutionError`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricExecutionError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ExecutionError', props);
  }

  /**
   * Integration answers with a 4XX/5XX status (`IntegrationError`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricIntegrationError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('IntegrationError', props);
  }

  /**
   * Milliseconds between API Gateway calling an integration and its answer (`IntegrationLatency`).
   * @param props statistic, period and the rest
   * @default - average over 5 minutes
   */
  public metricIntegrationLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('IntegrationLatency', { statistic: cloudwatch.Stats.AVERAGE, ...props });
  }

  /**
   * A metric the bundled handlers emit (namespace `AuthenticatedWebSocketApi`, dimension `ApiId`).
   * @param metricName `Delivered`, `Gone`, `Failed`, `Throttled`, `Retried` or `AuthDenied`
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricHandler(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: HandlerMetrics.NAMESPACE,
      metricName,
      dimensionsMap: { [HandlerMetrics.API_DIMENSION]: this.webSocketApiId },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /**
   * Posts the @connections API accepted (`Delivered`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricDelivered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.DELIVERED, props);
  }

  /**
   * Recipients found gone (410) and removed from the registry (`Gone`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricGone(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.GONE, props);
  }

  /**
   * Posts that failed after their retries (`Failed`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.FAILED, props);
  }

  /**
   * Posts answered 429, each attempt (`Throttled`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricThrottled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.THROTTLED, props);
  }

  /**
   * Post attempts retried (`Retried`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricRetried(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.RETRIED, props);
  }

  /**
   * Connections the authorizer refused with 401 or 403 (`AuthDenied`).
   * @param props statistic, period and the rest
   * @default - sum over 5 minutes
   */
  public metricAuthDenied(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricHandler(HandlerMetrics.AUTH_DENIED, props);
  }

  /**
   * Grants `execute-api:ManageConnections` for `methods` (`POST`, `GET`, `DELETE` or `*`) on this stage's @connections.
   * @internal
   */
  public _grantConnections(grantee: iam.IGrantable, methods: string[]): iam.Grant {
    const api = Stack.of(this).formatArn({ service: 'execute-api', resource: this.webSocketApiId });
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:ManageConnections'],
      resourceArns: methods.map((method) => `${api}/${this.stageName}/${method}/@connections/*`),
    });
    acknowledgeGrantWildcards(grantee, grant, NagReasons.CONNECTIONS_WILDCARD);
    return grant;
  }


  /**
   * The publisher function `grantSend` grants invoking.
   * @internal
   */
  public abstract _publisher(): lambda.IFunction;
}

/** An `AuthenticatedWebSocketApi` of another stack or app, by its attributes. */
export class ImportedAuthenticatedWebSocketApi extends AuthenticatedWebSocketApiBase {
  public readonly webSocketApiId: string;
  public readonly stageName: string;
  public readonly url: string;
  public readonly callbackUrl: string;

  private readonly publisherFunctionArn?: string;
  private publisherFunction?: lambda.IFunction;

  /**
   * @param scope the construct the import belongs to
   * @param id the construct id, unique within `scope`
   * @param attrs the API's id, stage and publisher
   */
  constructor(scope: Construct, id: string, attrs: AuthenticatedWebSocketApiAttributes) {
    super(scope, id);
    if (!attrs.webSocketApiId) {
      throw new Error('AuthenticatedWebSocketApi.fromAttributes: webSocketApiId is empty; pass the API\'s webSocketApi.apiId (for example from a stack output).');
    }
    if (!attrs.stageName) {
      throw new Error('AuthenticatedWebSocketApi.fromAttributes: stageName is empty; pass the stage the API was defined with (\'dev\' by default).');
    }
    this.webSocketApiId = attrs.webSocketApiId;
    this.stageName = attrs.stageName;
    this.publisherFunctionArn = attrs.publisherFunctionArn;
    const stack = Stack.of(this);
    const host = `${this.webSocketApiId}.execute-api.${stack.region}.${stack.urlSuffix}`;
    this.url = `wss://${host}/${this.stageName}`;
    this.callbackUrl = `https://${host}/${this.stageName}`;
  }

  /** @internal */
  public _publisher(): lambda.IFunction {
    if (!this.publisherFunctionArn) {
      throw new Error(`AuthenticatedWebSocketApi.fromAttributes: ${this.node.path} was imported without publisherFunctionArn, so grantSend has no function to grant; pass the API's publisherFunction.functionArn.`);
    }
    // The grant goes to the grantee's policy only: the publisher's own resource policy belongs to its stack.
    this.publisherFunction ??= lambda.Function.fromFunctionAttributes(this, 'Publisher', { functionArn: this.publisherFunctionArn, skipPermissions: true });
    return this.publisherFunction;
  }
}
