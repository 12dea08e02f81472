import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventRuleModel } from './assembly';
import type { LambdaRunner } from './lambda-runner';

/**
 * A local EventBridge for `PutEvents` (the JSON 1.1 protocol the AWS SDK v3 and the lifecycle
 * events use: `X-Amz-Target: AWSEvents.PutEvents`). It answers as EventBridge does
 * (`{"FailedEntryCount":0,"Entries":[{"EventId":...}]}`), prints each event as one log line
 * (bus, source, detail-type and the start of the detail), and invokes, asynchronously, the functions
 * targeted by the assembly's rules whose pattern matches: only patterns of exact values on `source`
 * and `detail-type` are matched (the assembly reader reports the others at start-up).
 */
export interface LocalEventBridge {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/** How much of an event's detail the log line shows. */
const DETAIL_PREVIEW = 200;
/** EventBridge's limit on the entries of one PutEvents request. */
const MAX_ENTRIES = 10;

export interface EventBridgeOptions {
  readonly rules: readonly EventRuleModel[];
  /** The runner of a function, by ARN. */
  readonly functions: (arn: string) => LambdaRunner | undefined;
  /** What events delivered to functions carry as `region` and `account`. */
  readonly region: string;
  readonly accountId: string;
  readonly host: string;
  readonly log: (line: string) => void;
}

interface Entry {
  readonly Source?: unknown;
  readonly DetailType?: unknown;
  readonly Detail?: unknown;
  readonly EventBusName?: unknown;
  readonly Resources?: unknown;
  readonly Time?: unknown;
}

export async function startEventBridge(options: EventBridgeOptions): Promise<LocalEventBridge> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => serve(request, response, Buffer.concat(chunks).toString('utf8'), options));
  });
  await new Promise<void>((resolve) => server.listen(0, options.host, resolve));
  const endpoint = `http://${options.host}:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function serve(request: IncomingMessage, response: ServerResponse, text: string, options: EventBridgeOptions): void {
  const reply = (statusCode: number, payload: Record<string, unknown>) => {
    const body = JSON.stringify(payload);
    response.writeHead(statusCode, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(body), 'x-amzn-RequestId': randomUUID() });
    response.end(body);
  };
  const target = String(request.headers['x-amz-target'] ?? '');
  if (target !== 'AWSEvents.PutEvents') {
    options.log(`eventbridge: ${target || 'a request without X-Amz-Target'} is not served locally`);
    return reply(400, { __type: 'UnknownOperationException', message: `authws local serves AWSEvents.PutEvents only, not ${target || 'a request without X-Amz-Target'}` });
  }
  let input: { Entries?: unknown };
  try {
    input = JSON.parse(text || '{}') as { Entries?: unknown };
  } catch {
    return reply(400, { __type: 'SerializationException', message: 'The request body is not JSON' });
  }
  const entries = input.Entries;
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_ENTRIES) {
    return reply(400, { __type: 'ValidationException', message: `Entries must hold 1 to ${MAX_ENTRIES} events` });
  }
  const results = entries.map((entry: Entry) => put(entry, options));
  reply(200, { FailedEntryCount: results.filter((result) => 'ErrorCode' in result).length, Entries: results });
}

/** One entry: checked as EventBridge checks it, logged, and delivered to the matching rules' functions. */
function put(entry: Entry, options: EventBridgeOptions): Record<string, string> {
  const { Source: source, DetailType: detailType, Detail: detailText } = entry;
  if (typeof source !== 'string' || source === '' || typeof detailType !== 'string' || detailType === '' || typeof detailText !== 'string') {
    return { ErrorCode: 'InvalidArgument', ErrorMessage: 'Parameter(s) Source, DetailType and Detail must be specified.' };
  }
  let detail: unknown;
  try {
    detail = JSON.parse(detailText);
  } catch {
    detail = undefined;
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
  }
  const bus = busName(entry.EventBusName);
  const id = randomUUID();
  const preview = detailText.length > DETAIL_PREVIEW ? `${detailText.slice(0, DETAIL_PREVIEW)}...` : detailText;
  options.log(`eventbridge: ${bus} ${source} ${JSON.stringify(detailType)} ${preview}`);

  const event = {
    'version': '0',
    id,
    'detail-type': detailType,
    source,
    'account': options.accountId,
    'time': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'region': options.region,
    'resources': Array.isArray(entry.Resources) ? entry.Resources : [],
    detail,
  };
  for (const rule of options.rules) {
    if (rule.eventBusName !== bus) continue;
    if (rule.sources && !rule.sources.includes(source)) continue;
    if (rule.detailTypes && !rule.detailTypes.includes(detailType)) continue;
    for (const arn of rule.functionArns) {
      const runner = options.functions(arn);
      if (!runner) {
        options.log(`eventbridge: rule ${rule.key} targets ${arn}, which is not in the assembly`);
        continue;
      }
      // EventBridge invokes its targets asynchronously: the put does not wait for them.
      runner.invoke(event).catch((err: unknown) =>
        options.log(`eventbridge: rule ${rule.key} -> ${runner.fn.logicalId} failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
  return { EventId: id };
}

/** The bus an entry names (a name or an ARN); `default` when it names none. */
function busName(value: unknown): string {
  const text = typeof value === 'string' && value !== '' ? value : 'default';
  return text.replace(/^arn:[^:]+:events:[^:]*:[^:]*:event-bus\//, '');
}
