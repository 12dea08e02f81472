/**
 * One fan-out run of bench/fanout/run.ts, in a fresh child process so that its CPU time and its
 * peak memory are its own (the @connections server and dynalite live in other processes).
 *
 *   engine     (a) this library's engine: FanOut + SignedConnectionsClient + ConnectionStore.all(4),
 *                  built as Delivery builds it for an inline broadcast
 *   sample     (b) the widely copied sample: ONE Scan (its first 1 MB page), then an unbounded
 *                  Promise.all of PostToConnectionCommand on a default ApiGatewayManagementApiClient,
 *                  deleting on `e.statusCode === 410` (which SDK v3 errors never carry)
 *   sequential (c) a paginated Scan, one PostToConnectionCommand at a time (stops at `cap` posts)
 *   raw        (d) the floor: unsigned POSTs over a node:http(s) keep-alive agent, `concurrency` at a
 *                  time, ids from a paginated Scan read one page ahead; one attempt each
 *
 * The job comes in as JSON in argv[2]; the result goes back over IPC.
 */
import { Agent, request } from 'node:http';
import { Agent as TlsAgent, request as tlsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { AttributeValue, DeleteItemCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ConnectionStore } from '../../src/runtime/connection-store';
import { Defaults } from '../../src/runtime/environment';
import { FanOut } from '../../src/runtime/fan-out';
import { SignedConnectionsClient } from '../../src/runtime/signed-connections-client';
import { DynamoStaleConnections } from '../../src/runtime/stale-connections';

export type Approach = 'engine' | 'sample' | 'sequential' | 'raw';

export interface Job {
  readonly approach: Approach;
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly callbackUrl: string;
  readonly concurrency: number;
  readonly payload: string;
  /** Stop after this many posts (the sequential loop only). */
  readonly cap?: number;
}

export interface RunResult {
  readonly approach: Approach;
  /** Milliseconds from the first read of the registry to the last answer. */
  readonly wallMs: number;
  /** The sample only: when its `await Promise.all(...)` settled, i.e. when its handler would return. */
  readonly handlerReturnedMs?: number;
  readonly handlerOutcome?: string;
  /** Client CPU (user + system) over the run, microseconds. */
  readonly cpuUs: number;
  /** Recipients the client read from the registry. */
  readonly read: number;
  /** Posts started (first attempts). */
  readonly posted: number;
  /** What the client counted as delivered (the server's distinct count is the one reported). */
  readonly clientDelivered: number;
  readonly retried?: number;
  readonly throttled?: number;
  readonly failed?: number;
  readonly errors: Record<string, number>;
  readonly rssBeforeMb: number;
  readonly peakRssMb: number;
  readonly maxRssMb: number;
  readonly peakHeapMb: number;
}

const MB = 1024 * 1024;

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const dynamo = new DynamoDBClient({ endpoint: job.dynamoEndpoint });
  // Everything is built before the clock starts; the first request of each client is inside it.
  const run = prepare(job, dynamo);

  global.gc?.();
  const rssBefore = process.memoryUsage.rss();
  let peakRss = rssBefore;
  let peakHeap = process.memoryUsage().heapUsed;
  // Sampled every 100 ms: process.memoryUsage() costs enough CPU to show at 20 ms. The peak RSS
  // reported is the kernel's high-water mark (resourceUsage().maxRSS), which misses nothing.
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
  }, 100);

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const outcome = await run(t0);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);

  const result: RunResult = {
    ...outcome,
    approach: job.approach,
    wallMs,
    cpuUs: cpu.user + cpu.system,
    rssBeforeMb: rssBefore / MB,
    peakRssMb: Math.max(peakRss, process.memoryUsage.rss()) / MB,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    peakHeapMb: peakHeap / MB,
  };
  process.send!({ type: 'result', result }, () => process.exit(0));
}

type Outcome = Omit<RunResult, 'approach' | 'wallMs' | 'cpuUs' | 'rssBeforeMb' | 'peakRssMb' | 'maxRssMb' | 'peakHeapMb'>;

function prepare(job: Job, dynamo: DynamoDBClient): (t0: number) => Promise<Outcome> {
  switch (job.approach) {
    case 'engine': return engine(job, dynamo);
    case 'sample': return sample(job, dynamo);
    case 'sequential': return sequential(job, dynamo);
    case 'raw': return raw(job, dynamo);
  }
}

/** (a) As Delivery.toAll does it inline: 4 parallel scan segments into the engine's pool. */
function engine(job: Job, dynamo: DynamoDBClient): () => Promise<Outcome> {
  const store = new ConnectionStore({ client: dynamo, tableName: job.tableName });
  const transport = new SignedConnectionsClient({ endpoint: job.callbackUrl, region: process.env.AWS_REGION!, maxSockets: job.concurrency });
  const fanOut = new FanOut({
    transport,
    staleConnections: new DynamoStaleConnections(dynamo, job.tableName),
    concurrency: job.concurrency,
  });
  return async () => {
    let read = 0;
    async function* counted(): AsyncGenerator<string> {
      for await (const id of store.all(Defaults.FANOUT_INLINE_SEGMENTS)) {
        read += 1;
        yield id;
      }
    }
    const r = await fanOut.send(counted(), job.payload);
    transport.destroy();
    return {
      read,
      posted: r.delivered + r.gone + r.failed,
      clientDelivered: r.delivered,
      retried: r.retried,
      throttled: r.throttled,
      failed: r.failed,
      errors: (r.complete ? {} : { incomplete: 1 }) as Record<string, number>,
    };
  };
}

/**
 * (b) The sample, rewritten for SDK v3 from its description:
 *   const connectionData = await ddb.scan({ TableName, ProjectionExpression: 'connectionId' });
 *   const postCalls = connectionData.Items.map(async ({ connectionId }) => {
 *     try { await apigw.postToConnection({ ConnectionId: connectionId, Data: postData }); }
 *     catch (e) { if (e.statusCode === 410) await ddb.delete(...); else throw e; }
 *   });
 *   try { await Promise.all(postCalls); } catch (e) { return { statusCode: 500, body: e.stack }; }
 * The clock stops when every post has settled (Promise.all rejects at the first failure while the
 * rest are still in flight; that moment is recorded as handlerReturnedMs).
 */
function sample(job: Job, dynamo: DynamoDBClient): (t0: number) => Promise<Outcome> {
  const api = new ApiGatewayManagementApiClient({ endpoint: job.callbackUrl });
  return async (t0) => {
    const errors: Record<string, number> = {};
    let clientDelivered = 0;
    const connectionData = await dynamo.send(new ScanCommand({ TableName: job.tableName, ProjectionExpression: 'connectionId' }));
    const items = connectionData.Items ?? [];
    const postCalls = items.map(async ({ connectionId }) => {
      try {
        await api.send(new PostToConnectionCommand({ ConnectionId: connectionId.S!, Data: job.payload }));
        clientDelivered += 1;
      } catch (e) {
        errors[(e as Error).name] = (errors[(e as Error).name] ?? 0) + 1;
        if ((e as { statusCode?: number }).statusCode === 410) {
          await dynamo.send(new DeleteItemCommand({ TableName: job.tableName, Key: { connectionId } }));
        } else {
          throw e;
        }
      }
    });
    let handlerOutcome = 'returned 200';
    try {
      await Promise.all(postCalls);
    } catch (e) {
      handlerOutcome = `returned 500 (${(e as Error).name})`;
    }
    const handlerReturnedMs = performance.now() - t0;
    await Promise.allSettled(postCalls);
    api.destroy();
    return { read: items.length, posted: items.length, clientDelivered, errors, handlerReturnedMs, handlerOutcome };
  };
}

/** (c) A paginated Scan, one post at a time with the SDK client; stops after `cap` posts. */
function sequential(job: Job, dynamo: DynamoDBClient): () => Promise<Outcome> {
  const api = new ApiGatewayManagementApiClient({ endpoint: job.callbackUrl });
  const cap = job.cap ?? Number.POSITIVE_INFINITY;
  return async () => {
    const errors: Record<string, number> = {};
    let read = 0;
    let posted = 0;
    let clientDelivered = 0;
    let key: Record<string, AttributeValue> | undefined;
    do {
      const page = await dynamo.send(new ScanCommand({ TableName: job.tableName, ProjectionExpression: 'connectionId', ExclusiveStartKey: key }));
      key = page.LastEvaluatedKey;
      for (const item of page.Items ?? []) {
        read += 1;
        if (posted >= cap) break;
        posted += 1;
        try {
          await api.send(new PostToConnectionCommand({ ConnectionId: item.connectionId.S!, Data: job.payload }));
          clientDelivered += 1;
        } catch (e) {
          errors[(e as Error).name] = (errors[(e as Error).name] ?? 0) + 1;
        }
      }
    } while (key && posted < cap);
    api.destroy();
    return { read, posted, clientDelivered, errors };
  };
}

/** (d) The floor: raw keep-alive POSTs, no SDK, no signature, no retry; same pool size as (a). */
function raw(job: Job, dynamo: DynamoDBClient): () => Promise<Outcome> {
  const url = new URL(job.callbackUrl);
  const secure = url.protocol === 'https:';
  const agent = secure ? new TlsAgent({ keepAlive: true, maxSockets: job.concurrency }) : new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const send = secure ? tlsRequest : request;
  const body = Buffer.from(job.payload, 'utf8');
  const basePath = url.pathname.replace(/\/+$/, '');
  const post = (id: string) => new Promise<number>((resolve, reject) => {
    const req = send({
      agent,
      method: 'POST',
      hostname: url.hostname,
      port: url.port,
      path: `${basePath}/@connections/${encodeURIComponent(id)}`,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
  return async () => {
    const errors: Record<string, number> = {};
    let read = 0;
    let posted = 0;
    let clientDelivered = 0;
    // Pages of 500 (the engine's page size), the next one read while the current one drains.
    const readPage = (key?: Record<string, AttributeValue>) => dynamo.send(new ScanCommand({
      TableName: job.tableName, Limit: 500, ProjectionExpression: 'connectionId', ExclusiveStartKey: key,
    }));
    let pending: ReturnType<typeof readPage> | undefined = readPage();
    let ids: string[] = [];
    let at = 0;
    const next = async (): Promise<string | undefined> => {
      while (at >= ids.length) {
        if (!pending) return undefined;
        const page: Awaited<ReturnType<typeof readPage>> = await pending;
        pending = page.LastEvaluatedKey ? readPage(page.LastEvaluatedKey) : undefined;
        ids = (page.Items ?? []).map((item) => item.connectionId.S!);
        at = 0;
        read += ids.length;
      }
      return ids[at++];
    };
    // Workers take turns at next(), so one page is never awaited twice.
    let turn: Promise<unknown> = Promise.resolve();
    const take = (): Promise<string | undefined> => {
      const result = turn.then(next);
      turn = result;
      return result;
    };
    await Promise.all(Array.from({ length: job.concurrency }, async () => {
      for (let id = await take(); id !== undefined; id = await take()) {
        posted += 1;
        try {
          const status = await post(id);
          if (status === 200) clientDelivered += 1;
          else errors[`HTTP ${status}`] = (errors[`HTTP ${status}`] ?? 0) + 1;
        } catch (e) {
          errors[(e as Error).name] = (errors[(e as Error).name] ?? 0) + 1;
        }
      }
    }));
    agent.destroy();
    return { read, posted, clientDelivered, errors };
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
