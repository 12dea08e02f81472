import { Annotations, Duration, Stack, Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { AuthenticatedWebSocketApi } from './authenticated-websocket-api';
import { Env, Registry } from './runtime/environment';

/** Options for `RouteTarget.function`. */
export interface FunctionRouteOptions {
  /**
   * Send what the function returns (its `body`) back to the client as a frame.
   *
   * Without it the route is one-way, as API Gateway makes it: the function replies, if at all,
   * through the @connections API.
   * @default false
   */
  readonly returnResponse?: boolean;

  /**
   * Let the function post to this stage's connections (`execute-api:ManageConnections` on
   * `POST/@connections/*` of this stage only: it can neither read nor close connections), with the
   * @connections endpoint in its environment (`CALLBACK_URL`).
   * @default true
   */
  readonly postToConnections?: boolean;

  /**
   * Let the function read the connection registry (`GetItem`, `Query` on the `byUser` index,
   * `Scan`: every user's connections and claims, decrypted with a customer-managed key), with the
   * table and index names in its environment (`CONNECTIONS_TABLE_NAME`, `CONNECTIONS_USER_INDEX_NAME`).
   * @default false
   */
  readonly readConnections?: boolean;
}

/** Options for `RouteTarget.integration`. */
export interface IntegrationRouteOptions {
  /**
   * Send the integration's response back to the client as a frame.
   * @default false
   */
  readonly returnResponse?: boolean;
}

/** Options for `RouteTarget.http`. */
export interface HttpRouteOptions {
  /**
   * Forward the message body unchanged (`HTTP_PROXY`) instead of rendering `template`.
   *
   * In proxy mode the backend learns who sent the message from the request headers
   * `x-authws-connection-id` and `x-authws-user-id`.
   * @default false
   */
  readonly proxy?: boolean;

  /**
   * The HTTP method of the request to the backend.
   * @default 'POST'
   */
  readonly method?: string;

  /**
   * A Velocity mapping template for the request body (not used with `proxy`).
   * `$context.connectionId`, `$context.eventType`, `$context.routeKey`, `$context.authorizer.userId`
   * and `$input.body` are the usual ingredients. API Gateway inserts `$context` values raw: inside a
   * JSON string write `$util.escapeJavaScript($context.authorizer.userId).replaceAll("\\'","'")`,
   * as `HTTP_DEFAULT_TEMPLATE` does, or a user id with a `"` can forge fields.
   * @default RouteTarget.HTTP_DEFAULT_TEMPLATE
   */
  readonly template?: string;

  /**
   * How long API Gateway waits for the backend: 50 ms to 29 s.
   * @default Duration.seconds(29)
   */
  readonly timeout?: Duration;

  /**
   * Send the backend's response body back to the client as a frame.
   * @default false
   */
  readonly returnResponse?: boolean;
}

/**
 * A JSON string holding the value of the VTL reference `reference`, escaped so no value can end the
 * string: `$util.escapeJavaScript`, then its `\'` (not valid in JSON) back to `'`.
 */
function jsonString(reference: string): string {
  return `"$util.escapeJavaScript(${reference}).replaceAll("\\\\'","'")"`;
}

/**
 * Where a custom route's messages go: one of your Lambda functions, an HTTP backend, or any
 * API Gateway WebSocket integration (SQS, Step Functions, a mock, ...).
 */
export abstract class RouteTarget {
  /**
   * The request template `RouteTarget.http` renders unless told otherwise: a JSON object with the
   * connection id, event type, route key, request id, user id and the message as sent.
   *
   * Every `$context` value goes through `$util.escapeJavaScript` (with `\'` turned back into `'`,
   * as the API Gateway documentation advises for JSON), so a user id such as `a","userId":"b` stays
   * one string value and cannot add or override a field.
   */
  public static readonly HTTP_DEFAULT_TEMPLATE: string = [
    '{',
    `"connectionId":${jsonString('$context.connectionId')},`,
    `"eventType":${jsonString('$context.eventType')},`,
    `"routeKey":${jsonString('$context.routeKey')},`,
    `"requestId":${jsonString('$context.requestId')},`,
    `"userId":${jsonString('$context.authorizer.userId')},`,
    '"body":$input.body',
    '}',
  ].join('');

  /**
   * Messages on the route invoke `handler` (Lambda proxy integration).
   *
   * The function receives the user id and claims in `requestContext.authorizer`. When it is a
   * `lambda.Function` it may post to connections (`postToConnections`, on by default) and read the
   * registry (`readConnections`, off by default), with what it needs in its environment. A function
   * of another stack gets its route, integration and invoke permission in its own stack, which
   * then depends on the API's stack (never the other way round).
   * @param handler the function to invoke
   * @param options how the route answers and what the function may do
   */
  public static function(handler: lambda.IFunction, options: FunctionRouteOptions = {}): RouteTarget {
    return new FunctionRouteTarget(handler, options);
  }

  /**
   * Messages on the route go to `integration`, any API Gateway WebSocket integration: for example
   * `WebSocketAwsIntegration` (SQS, Step Functions, DynamoDB), `WebSocketMockIntegration`, or your own.
   * The integration is told nothing else: grant its role what it needs yourself.
   * @param integration the integration of the route (one route per integration)
   * @param options how the route answers
   */
  public static integration(integration: apigwv2.WebSocketRouteIntegration, options: IntegrationRouteOptions = {}): RouteTarget {
    return new IntegrationRouteTarget(integration, options);
  }

  /**
   * Messages on the route are sent to an HTTP backend, rendered with a mapping template (default)
   * or proxied unchanged.
   * @param url the backend's URL, `https://...` or `http://...`
   * @param options proxy or template, method, timeout
   */
  public static http(url: string, options: HttpRouteOptions = {}): RouteTarget {
    if (!Token.isUnresolved(url) && !/^https?:\/\/[^\s/]+/.test(url)) {
      throw new Error(`RouteTarget.http('${url}'): the URL must start with https:// or http:// and name a host.`);
    }
    if (options.proxy && options.template !== undefined) {
      throw new Error('RouteTarget.http: `template` has no effect with `proxy: true`; drop one of them.');
    }
    const timeout = options.timeout?.toMilliseconds();
    if (timeout !== undefined && !Token.isUnresolved(timeout) && (timeout < 50 || timeout > 29_000)) {
      throw new Error(`RouteTarget.http: \`timeout\` is ${timeout} ms; API Gateway allows 50 ms to 29 seconds.`);
    }
    return new HttpRouteTarget(url, options);
  }

  /**
   * Returns the route options for this target, wiring environment and grants.
   * @internal
   */
  public abstract _bind(api: AuthenticatedWebSocketApi, routeKey: string): apigwv2.WebSocketRouteOptions;

  /**
   * The stack the route must live in, when it is not the API's: a function of another stack owns
   * its route, so that its stack depends on the API's and not the other way round.
   * @internal
   */
  public _routeStack(_api: AuthenticatedWebSocketApi): Stack | undefined {
    return undefined;
  }
}

class FunctionRouteTarget extends RouteTarget {
  constructor(private readonly handler: lambda.IFunction, private readonly options: FunctionRouteOptions) {
    super();
  }

  public _routeStack(api: AuthenticatedWebSocketApi): Stack | undefined {
    const stack = Stack.of(this.handler);
    return stack === Stack.of(api) ? undefined : stack;
  }

  public _bind(api: AuthenticatedWebSocketApi, routeKey: string): apigwv2.WebSocketRouteOptions {
    const post = this.options.postToConnections ?? true;
    const read = this.options.readConnections ?? false;
    if (this.handler instanceof lambda.Function) {
      if (read) {
        this.handler.addEnvironment(Env.TABLE_NAME, api.table.tableName);
        this.handler.addEnvironment(Env.USER_INDEX_NAME, Registry.USER_INDEX);
      }
      if (post) this.handler.addEnvironment(Env.CALLBACK_URL, api.callbackUrl);
    } else if (post || read) {
      Annotations.of(api).addWarningV2(
        'cdk-authenticated-websocket-api:importedRouteFunction',
        `Route '${routeKey}' targets a function this app did not define, so it gets no ${read ? 'CONNECTIONS_TABLE_NAME or ' : ''}CALLBACK_URL environment`
        + (this.handler.role ? '' : ' and no grants (it was imported without a role)') + '; set them on the function yourself.',
      );
    }
    if (this.handler.role) {
      if (read) api.grantReadConnections(this.handler);
      if (post) api.grantPostToConnections(this.handler);
    }
    return {
      integration: new WebSocketLambdaIntegration(`${routeKey}Integration`, this.handler),
      returnResponse: this.options.returnResponse,
    };
  }
}

class IntegrationRouteTarget extends RouteTarget {
  constructor(private readonly integration: apigwv2.WebSocketRouteIntegration, private readonly options: IntegrationRouteOptions) {
    super();
  }

  public _bind(_api: AuthenticatedWebSocketApi, _routeKey: string): apigwv2.WebSocketRouteOptions {
    return { integration: this.integration, returnResponse: this.options.returnResponse };
  }
}

class HttpRouteTarget extends RouteTarget {
  constructor(private readonly url: string, private readonly options: HttpRouteOptions) {
    super();
  }

  public _bind(_api: AuthenticatedWebSocketApi, routeKey: string): apigwv2.WebSocketRouteOptions {
    return {
      integration: new WebSocketHttpIntegration(`${routeKey}Integration`, this.url, this.options),
      returnResponse: this.options.returnResponse,
    };
  }
}

/**
 * An `HTTP` or `HTTP_PROXY` integration. aws-cdk-lib has none for WebSocket APIs yet
 * (aws-cdk#29562), but its route and integration constructs pass the type through to
 * `AWS::ApiGatewayV2::Integration`, which accepts both.
 */
class WebSocketHttpIntegration extends apigwv2.WebSocketRouteIntegration {
  constructor(id: string, private readonly url: string, private readonly options: HttpRouteOptions) {
    super(id);
  }

  public bind(_options: apigwv2.WebSocketRouteIntegrationBindOptions): apigwv2.WebSocketRouteIntegrationConfig {
    const common = {
      uri: this.url,
      method: this.options.method ?? 'POST',
      timeout: this.options.timeout ?? Duration.seconds(29),
    };
    if (this.options.proxy) {
      return {
        ...common,
        type: 'HTTP_PROXY' as apigwv2.WebSocketIntegrationType,
        requestParameters: {
          'integration.request.header.x-authws-connection-id': 'context.connectionId',
          'integration.request.header.x-authws-user-id': 'context.authorizer.userId',
        },
      };
    }
    return {
      ...common,
      type: 'HTTP' as apigwv2.WebSocketIntegrationType,
      templateSelectionExpression: '\\$default',
      requestTemplates: { $default: this.options.template ?? RouteTarget.HTTP_DEFAULT_TEMPLATE },
    };
  }
}
