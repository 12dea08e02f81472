import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { AuthenticatedWebSocketApi } from './authenticated-websocket-api';
import { Env, Registry } from './runtime/environment';

/** Options for `RouteTarget.lambda`. */
export interface LambdaRouteOptions {
  /**
   * Send what the function returns (its `body`) back to the client as a frame.
   *
   * Without it the route is one-way, as API Gateway makes it: the function replies, if at all,
   * through the @connections API.
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
 * Where a custom route's messages go: one of your Lambda functions or an HTTP backend.
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
   * The function receives the user id and claims in `requestContext.authorizer`; when it is a
   * `lambda.Function` it also gets the registry table name (`CONNECTIONS_TABLE_NAME`) and the
   * @connections endpoint (`CALLBACK_URL`) in its environment, with the grants to read the
   * registry and post to connections.
   * @param handler the function to invoke
   * @param options how the route answers
   */
  public static lambda(handler: lambda.IFunction, options: LambdaRouteOptions = {}): RouteTarget {
    return new LambdaRouteTarget(handler, options);
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
}

class LambdaRouteTarget extends RouteTarget {
  constructor(private readonly handler: lambda.IFunction, private readonly options: LambdaRouteOptions) {
    super();
  }

  public _bind(api: AuthenticatedWebSocketApi, routeKey: string): apigwv2.WebSocketRouteOptions {
    if (this.handler instanceof lambda.Function) {
      this.handler.addEnvironment(Env.TABLE_NAME, api.table.tableName);
      this.handler.addEnvironment(Env.USER_INDEX_NAME, Registry.USER_INDEX);
      this.handler.addEnvironment(Env.CALLBACK_URL, api.callbackUrl);
    } else {
      Annotations.of(api).addWarningV2(
        'cdk-authenticated-websocket-api:importedRouteFunction',
        `Route '${routeKey}' targets a function this app did not define, so it gets no CONNECTIONS_TABLE_NAME or CALLBACK_URL environment`
        + (this.handler.role ? '' : ' and no grants (it was imported without a role)') + '; set them on the function yourself.',
      );
    }
    if (this.handler.role) {
      api.grantReadConnections(this.handler);
      api.grantManageConnections(this.handler);
    }
    return {
      integration: new WebSocketLambdaIntegration(`${routeKey}Integration`, this.handler),
      returnResponse: this.options.returnResponse,
    };
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
