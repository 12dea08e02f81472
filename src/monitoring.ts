import { Duration, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { AuthenticatedWebSocketApi } from './authenticated-websocket-api';

/**
 * Opt-in alarms of an `AuthenticatedWebSocketApi`: each fires when its count, summed over
 * `period`, reaches its threshold, and stays quiet when there is no data.
 */
export interface WebSocketApiAlarmOptions {
  /**
   * Where alarms (and their return to OK) are sent.
   * @default - the alarms have no actions
   */
  readonly topic?: sns.ITopic;

  /**
   * The window each alarm sums over.
   * @default Duration.minutes(5)
   */
  readonly period?: Duration;

  /**
   * API Gateway `ExecutionError`s (the API failed to run an integration) per period that raise the alarm.
   * @default 1
   */
  readonly executionErrorThreshold?: number;

  /**
   * API Gateway `IntegrationError`s (an integration answered 4XX/5XX or threw) per period that raise the alarm.
   * @default 5
   */
  readonly integrationErrorThreshold?: number;

  /**
   * Posts to connections that failed after their retries (handler metric `Failed`) per period that raise the alarm.
   * @default 10
   */
  readonly failedDeliveryThreshold?: number;

  /**
   * Connections the authorizer refused (handler metric `AuthDenied`) per period that raise the alarm:
   * a spike means a broken issuer, expired keys, or someone guessing tokens.
   * @default 100
   */
  readonly authDeniedThreshold?: number;
}

/** Alarm defaults: an execution error is a bug; the others tolerate a little noise. */
export const AlarmDefaults = {
  PERIOD_MINUTES: 5,
  EXECUTION_ERROR: 1,
  INTEGRATION_ERROR: 5,
  FAILED_DELIVERY: 10,
  AUTH_DENIED: 100,
} as const;

/** Throws when an alarm option is out of range. */
export function validateAlarmOptions(options: WebSocketApiAlarmOptions): void {
  const thresholds: Array<[string, number | undefined]> = [
    ['executionErrorThreshold', options.executionErrorThreshold],
    ['integrationErrorThreshold', options.integrationErrorThreshold],
    ['failedDeliveryThreshold', options.failedDeliveryThreshold],
    ['authDeniedThreshold', options.authDeniedThreshold],
  ];
  for (const [name, value] of thresholds) {
    if (value !== undefined && !Token.isUnresolved(value) && !(Number.isInteger(value) && value >= 1)) {
      throw new Error(`AuthenticatedWebSocketApi: alarms.${name} is ${value}; use a whole number of 1 or more (a count per period).`);
    }
  }
  const period = options.period?.toSeconds();
  if (period !== undefined && !Token.isUnresolved(period) && (period < 60 || period % 60 !== 0)) {
    throw new Error(`AuthenticatedWebSocketApi: alarms.period is ${period} seconds; use whole minutes, e.g. Duration.minutes(5).`);
  }
}

/** Creates the alarms under `api` (a child `Alarms`). */
export function createAlarms(api: AuthenticatedWebSocketApi, options: WebSocketApiAlarmOptions): cloudwatch.Alarm[] {
  const period = options.period ?? Duration.minutes(AlarmDefaults.PERIOD_MINUTES);
  const container = new Construct(api, 'Alarms');
  const specs: Array<[string, cloudwatch.Metric, number, string]> = [
    ['ExecutionErrors', api.metricExecutionError({ period }), options.executionErrorThreshold ?? AlarmDefaults.EXECUTION_ERROR,
      'API Gateway could not run an integration of the WebSocket API'],
    ['IntegrationErrors', api.metricIntegrationError({ period }), options.integrationErrorThreshold ?? AlarmDefaults.INTEGRATION_ERROR,
      'Integrations of the WebSocket API answered with errors'],
    ['FailedDeliveries', api.metricFailed({ period }), options.failedDeliveryThreshold ?? AlarmDefaults.FAILED_DELIVERY,
      'Posts to WebSocket connections failed after their retries'],
    ['AuthDenied', api.metricAuthDenied({ period }), options.authDeniedThreshold ?? AlarmDefaults.AUTH_DENIED,
      'The WebSocket authorizer refused many connections'],
  ];
  return specs.map(([id, metric, threshold, description]) => {
    const alarm = new cloudwatch.Alarm(container, id, {
      alarmDescription: `${description} (${threshold} or more in ${period.toHumanString()})`,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (options.topic) {
      const action = new cloudwatchActions.SnsAction(options.topic);
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    return alarm;
  });
}

/** Creates the dashboard under `api`: connections, messages, errors, latency, fan-out and refusals. */
export function createDashboard(api: AuthenticatedWebSocketApi): cloudwatch.Dashboard {
  const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = []) =>
    new cloudwatch.GraphWidget({ title, left, right, width: 12, height: 6 });
  const dashboard = new cloudwatch.Dashboard(api, 'Dashboard');
  dashboard.addWidgets(
    graph('Connections and messages', [api.metricConnectCount(), api.metricMessageCount()]),
    graph('Errors', [api.metricClientError(), api.metricExecutionError(), api.metricIntegrationError()]),
  );
  dashboard.addWidgets(
    graph('Integration latency (ms)', [api.metricIntegrationLatency(), api.metricIntegrationLatency({ statistic: 'p99', label: 'IntegrationLatency p99' })]),
    graph('Fan-out', [api.metricDelivered(), api.metricGone(), api.metricFailed()], [api.metricThrottled(), api.metricRetried()]),
  );
  dashboard.addWidgets(graph('Refused connections', [api.metricAuthDenied()]));
  return dashboard;
}
