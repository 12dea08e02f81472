import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { loadAssembly } from '../../src/local/assembly';

/**
 * Which EventBridge rules of a synthesized app the local EventBridge runs: exact values of source
 * and detail-type only; any other pattern is named in a start-up warning instead of silently never matching.
 */

function synthesize(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'authws-event-rules-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'Rules');
  const fn = new lambda.Function(stack, 'Target', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => undefined;'),
  });
  const target = new targets.LambdaFunction(fn);
  const audit = new events.EventBus(stack, 'Audit', { eventBusName: 'audit-bus' });
  new events.Rule(stack, 'Exact', { eventPattern: { source: ['authenticated-websocket-api'], detailType: ['Joined', 'Left'] }, targets: [target] });
  new events.Rule(stack, 'OnAudit', { eventBus: audit, eventPattern: { source: ['billing'] }, targets: [target] });
  new events.Rule(stack, 'Prefix', { eventPattern: { source: events.Match.prefix('auth') }, targets: [target] });
  new events.Rule(stack, 'ByDetail', { eventPattern: { source: ['app'], detail: { userId: ['alice'] } }, targets: [target] });
  new events.Rule(stack, 'Disabled', { enabled: false, eventPattern: { source: ['app'] }, targets: [target] });
  new events.Rule(stack, 'Nightly', { schedule: events.Schedule.rate(Duration.days(1)), targets: [target] });
  app.synth();
  return outdir;
}

const assembly = loadAssembly(synthesize());
const targetArn = [...assembly.functions.values()].find((fn) => fn.logicalId.startsWith('Target'))!.arn;

test('exact-match rules are run, with their bus and function targets', () => {
  expect(assembly.eventRules).toEqual([
    { key: expect.stringMatching(/^Rules\/Exact/), eventBusName: 'default', sources: ['authenticated-websocket-api'], detailTypes: ['Joined', 'Left'], functionArns: [targetArn] },
    { key: expect.stringMatching(/^Rules\/OnAudit/), eventBusName: 'audit-bus', sources: ['billing'], detailTypes: undefined, functionArns: [targetArn] },
  ]);
});

test('rules with other patterns are named in a warning; disabled and scheduled rules are left out silently', () => {
  const ruleWarnings = assembly.warnings.filter((warning) => warning.startsWith('EventBridge rule'));
  expect(ruleWarnings).toEqual([
    expect.stringMatching(/^EventBridge rule Rules\/Prefix\S* does not invoke its targets locally: authws local matches exact values of source and detail-type only, and its pattern is \{"source":\[\{"prefix":"auth"\}\]\}\.$/),
    expect.stringMatching(/^EventBridge rule Rules\/ByDetail\S* does not invoke .*"detail":\{"userId":\["alice"\]\}/),
  ]);
});
