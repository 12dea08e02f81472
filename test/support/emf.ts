import { HandlerMetrics } from '../../src/runtime/environment';

/**
 * Checks one CloudWatch embedded metric format record as CloudWatch would read it: the handlers'
 * namespace, the one dimension set `[["ApiId"]]` with its value, one Count declaration per metric and
 * nothing undeclared, and the values (numbers or asymmetric matchers).
 */
export function expectEmf(record: Record<string, unknown> | undefined, apiId: string, values: Record<string, unknown>): void {
  expect(record).toBeDefined();
  type Directive = { Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> };
  const aws = record!._aws as { Timestamp: unknown; CloudWatchMetrics: Directive[] };
  expect(aws.Timestamp).toEqual(expect.any(Number));
  expect(aws.CloudWatchMetrics).toHaveLength(1);
  const [directive] = aws.CloudWatchMetrics;
  expect(directive.Namespace).toBe(HandlerMetrics.NAMESPACE);
  expect(directive.Dimensions).toEqual([[HandlerMetrics.API_DIMENSION]]);
  expect(directive.Metrics.map((m) => m.Name).sort()).toEqual(Object.keys(values).sort());
  for (const metric of directive.Metrics) expect(metric.Unit).toBe('Count');
  expect(record).toMatchObject({ [HandlerMetrics.API_DIMENSION]: apiId, ...values });
}
