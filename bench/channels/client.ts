/**
 * One measured run of the channels benchmark, in a fresh process (so its CPU and memory are its own).
 * argv[2] is a JSON Job. Modes:
 *   broadcast  the existing engine as an inline broadcast runs it: ConnectionStore.all(4) into FanOut
 *   channel    a backend publish to one channel: ChannelService.publishFromBackend (4 subscription shards
 *              read in parallel, plus the wildcard subscribers' shards), into the same FanOut settings
 *   subscribe  `samples` subscribes of fresh connections to one presence channel, each timed
 * It answers a RunResult over IPC.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parseChannelName } from '../../src/runtime/channel-names';
import { ChannelStore } from '../../src/runtime/channel-store';
import { ChannelService } from '../../src/runtime/channels';
import { ConnectionStore } from '../../src/runtime/connection-store';
import { FanOut } from '../../src/runtime/fan-out';
import { SignedConnectionsClient } from '../../src/runtime/signed-connections-client';

export type Mode = 'broadcast' | 'channel' | 'subscribe';

export interface Job {
  readonly mode: Mode;
  readonly dynamoEndpoint: string;
  readonly registryTable: string;
  readonly channelsTable: string;
  readonly channel: string;
  readonly callbackUrl: string;
  readonly concurrency: number;
  readonly samples?: number;
}

export interface RunResult {
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly delivered: number;
  readonly failed: number;
  /** DynamoDB capacity units the run consumed, as the table reports them (ReturnConsumedCapacity TOTAL). */
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly requests: Record<string, number>;
  readonly latenciesMs?: number[];
  readonly maxRssMb: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const dynamo = new DynamoDBClient({ endpoint: job.dynamoEndpoint });
  let readUnits = 0;
  let writeUnits = 0;
  const requests: Record<string, number> = {};
  dynamo.middlewareStack.add((next, context) => async (args) => {
    const command = context.commandName ?? 'unknown';
    requests[command] = (requests[command] ?? 0) + 1;
    (args.input as Record<string, unknown>).ReturnConsumedCapacity = 'TOTAL';
    const result = await next(args);
    const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> }).ConsumedCapacity;
    const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
    if (/^(Query|Scan|GetItem|BatchGetItem)Command$/.test(command)) readUnits += units;
    else writeUnits += units;
    return result;
  }, { step: 'initialize', name: 'countCapacity' });

  const fanOut = new FanOut({
    transport: new SignedConnectionsClient({ endpoint: job.callbackUrl, region: 'us-east-1', maxSockets: job.concurrency }),
    staleConnections: { removeAll: async () => undefined },
    concurrency: job.concurrency,
  });
  const service = new ChannelService({
    config: { rules: [{ pattern: 'rooms/*', subscribe: { kind: 'authenticated' }, publish: { kind: 'authenticated' }, presence: true }], actions: { broadcast: { kind: 'authenticated' }, send: { kind: 'authenticated' } } },
    store: new ChannelStore({ client: dynamo, tableName: job.channelsTable }),
    fanOut,
    registry: { client: dynamo, tableName: job.registryTable },
    rateLimit: 0,
    rateWindowSeconds: 10,
  });
  const payload = JSON.stringify({ text: 'The build is green; deploying to production at 15:00.' });

  const cpu = process.cpuUsage();
  const started = performance.now();
  let delivered = 0;
  let failed = 0;
  let latenciesMs: number[] | undefined;
  if (job.mode === 'broadcast') {
    const store = new ConnectionStore({ client: dynamo, tableName: job.registryTable });
    const result = await fanOut.send(store.all(4), JSON.stringify({ message: JSON.parse(payload), sender: 'user-0042' }));
    delivered = result.delivered;
    failed = result.failed;
  } else if (job.mode === 'channel') {
    const { result } = await service.publishFromBackend(parseChannelName(job.channel), JSON.parse(payload), 'user-0042');
    delivered = result.delivered;
    failed = result.failed;
  } else {
    latenciesMs = [];
    for (let i = 0; i < (job.samples ?? 100); i++) {
      const connectionId = `bench-subscriber-${i}`;
      const t = performance.now();
      await service.subscribe({ connectionId }, parseChannelName(job.channel));
      latenciesMs.push(performance.now() - t);
    }
  }
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const result: RunResult = {
    wallMs,
    cpuUs: used.user + used.system,
    delivered,
    failed,
    readUnits,
    writeUnits,
    requests,
    latenciesMs,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
  process.send!(result);
  dynamo.destroy();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
