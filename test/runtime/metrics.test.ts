import { HandlerMetrics, ObservabilityEnv } from '../../src/runtime/environment';
import { withInvocation } from '../../src/runtime/invocation';
import { InvocationScope } from '../../src/runtime/log';
import { addDeliveryMetrics, addMetric, emfRecord, flushMetrics } from '../../src/runtime/metrics';
import { CapturedConsole, captureConsole } from '../support/console-capture';
import { expectEmf } from '../support/emf';

let output: CapturedConsole;

beforeEach(() => {
  output = captureConsole();
  delete process.env[ObservabilityEnv.API_ID];
});

afterEach(() => output.restore());

const counts = { delivered: 3, gone: 1, failed: 2, retried: 4, throttled: 5 };

test('one EMF line per invocation: the namespace, the ApiId dimension, a Count per metric, values summed over the invocation', async () => {
  process.env[ObservabilityEnv.API_ID] = 'api-1';
  await withInvocation({ awsRequestId: 'r', functionName: 'f' }, { apiId: 'from-event' }, async () => {
    addDeliveryMetrics(counts);
    addDeliveryMetrics({ ...counts, delivered: 7 });
  });
  expect(output.metrics()).toHaveLength(1);
  expectEmf(output.metrics()[0], 'api-1', { Delivered: 10, Gone: 2, Failed: 4, Retried: 8, Throttled: 10 });
  expect(output.metrics()[0]).toMatchObject({ requestId: 'r', functionName: 'f' });
  expect(output.logs()).toEqual([]);
});

test('the metrics are written when the invocation throws too', async () => {
  await expect(withInvocation(undefined, { apiId: 'api-2' }, async () => {
    addMetric(HandlerMetrics.AUTH_DENIED, 1);
    throw new Error('boom');
  })).rejects.toThrow('boom');
  expectEmf(output.metrics()[0], 'api-2', { AuthDenied: 1 });
});

test('an invocation that recorded nothing writes no metric line', async () => {
  await withInvocation(undefined, { apiId: 'api' }, async () => undefined);
  expect(output.lines).toEqual([]);
});

test('a broadcast handed to the queue counts nothing: its workers count it', async () => {
  await withInvocation(undefined, { apiId: 'api' }, async () => addDeliveryMetrics({ ...counts, queued: 4 }));
  expect(output.lines).toEqual([]);
});

test('outside an invocation, adding a metric does nothing', () => {
  addMetric(HandlerMetrics.DELIVERED, 1);
  addDeliveryMetrics(counts);
  expect(output.lines).toEqual([]);
});

test('with neither WEBSOCKET_API_ID nor an event apiId, metrics are dropped with a single warning per container', async () => {
  let flush: typeof flushMetrics | undefined;
  jest.isolateModules(() => { flush = jest.requireActual('../../src/runtime/metrics').flushMetrics; });
  const scope = (): InvocationScope => ({ fields: {}, metrics: new Map([[HandlerMetrics.DELIVERED, 1]]) });
  flush!(scope(), {});
  flush!(scope(), { [ObservabilityEnv.API_ID]: '  ' });
  expect(output.metrics()).toEqual([]);
  expect(output.logs()).toEqual([expect.objectContaining({ level: 'warn', event: 'metrics_disabled' })]);
});

test('emfRecord: properties beside the metrics, undefined ones left out; the dimension and metric values cannot be overwritten by them', () => {
  const record = emfRecord('api', new Map([['Delivered', 2]]), { requestId: 'r', functionName: undefined, ApiId: 'x', Delivered: 'y' }, 1_700_000_000_000);
  expect(record).toEqual({
    _aws: {
      Timestamp: 1_700_000_000_000,
      CloudWatchMetrics: [{ Namespace: 'AuthenticatedWebSocketApi', Dimensions: [['ApiId']], Metrics: [{ Name: 'Delivered', Unit: 'Count' }] }],
    },
    requestId: 'r',
    ApiId: 'api',
    Delivered: 2,
  });
});
