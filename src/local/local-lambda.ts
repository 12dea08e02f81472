import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FunctionModel } from './assembly';
import { LambdaInvocationError, LambdaRunner } from './lambda-runner';

/**
 * The Lambda Invoke API for the assembly's functions, as the AWS SDK v3's `LambdaClient` calls it
 * (`POST /2015-03-31/functions/{FunctionName}/invocations`), so code that invokes a function (a
 * channel rule's authorizer hook, the publish helper of a backend on this machine) reaches the
 * function's local sandboxes:
 *
 * - `FunctionName` is a name, an ARN or a partial ARN (`{account}:function:{name}`), with or
 *   without a qualifier; the qualifier is ignored (every version and alias runs the synthesized code).
 * - `X-Amz-Invocation-Type: RequestResponse` (the default) answers 200 with what the function
 *   returned, or with `{"errorType","errorMessage"}` and `X-Amz-Function-Error: Unhandled` when it
 *   threw or timed out; `Event` answers 202 at once and runs it in the background; `DryRun` 204.
 * - An unknown function answers 404 with `x-amzn-ErrorType: ResourceNotFoundException`, as Lambda does.
 *
 * Requests are not authenticated: like the other local services it listens on the loopback only.
 */
export interface LocalLambda {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Lambda's payload limits: 6 MB for a synchronous invocation, 256 KB for an asynchronous one. */
const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
const ASYNC_PAYLOAD_LIMIT = 256 * 1024;

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLambda(
  functions: () => Iterable<LambdaRunner>,
  host: string,
  log: (line: string) => void,
): Promise<LocalLambda> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= SYNC_PAYLOAD_LIMIT + 1) chunks.push(chunk);
    });
    request.on('end', () => serve(request, response, Buffer.concat(chunks), size, functions, log));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const endpoint = `http://${host}:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The function a `FunctionName` (name, ARN or partial ARN, maybe qualified) names, if it is in the assembly. */
export function findFunction(functionName: string, functions: Iterable<LambdaRunner>): LambdaRunner | undefined {
  const arn = /^arn:[^:]+:lambda:([^:]*):([^:]*):function:([^:]+)(?::[^:]+)?$/.exec(functionName);
  const partial = /^(\d{12}):function:([^:]+)(?::[^:]+)?$/.exec(functionName);
  const name = arn?.[3] ?? partial?.[2] ?? functionName.split(':')[0];
  const matches = (fn: FunctionModel) => fn.functionName === name
    && (!arn || (fn.arn.split(':')[3] === arn[1] && fn.arn.split(':')[4] === arn[2]))
    && (!partial || fn.arn.split(':')[4] === partial[1]);
  for (const runner of functions) if (matches(runner.fn)) return runner;
  return undefined;
}

function serve(
  request: IncomingMessage,
  response: ServerResponse,
  body: Buffer,
  size: number,
  functions: () => Iterable<LambdaRunner>,
  log: (line: string) => void,
): void {
  const reply = (statusCode: number, headers: Record<string, string>, text = '') => {
    response.writeHead(statusCode, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
      'x-amzn-RequestId': randomUUID(),
      ...headers,
    });
    response.end(text);
  };
  const error = (statusCode: number, type: string, message: string) =>
    reply(statusCode, { 'x-amzn-ErrorType': type }, JSON.stringify({ Type: 'User', message }));

  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  const match = INVOKE_PATH.exec(path);
  if (request.method !== 'POST' || !match) {
    log(`lambda: ${request.method} ${path} is not served locally`);
    return error(400, 'InvalidRequestContentException', `authws local serves the Invoke API only (POST /2015-03-31/functions/{FunctionName}/invocations), not ${request.method} ${path}`);
  }
  const functionName = decodeURIComponent(match[1]);
  const runner = findFunction(functionName, functions());
  if (!runner) {
    log(`lambda: Invoke ${functionName}, which is not a function of the assembly`);
    return error(404, 'ResourceNotFoundException', `Function not found: ${functionName}`);
  }
  const invocationType = String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse');
  if (!['RequestResponse', 'Event', 'DryRun'].includes(invocationType)) {
    return error(400, 'InvalidParameterValueException', `X-Amz-Invocation-Type ${invocationType}: use RequestResponse, Event or DryRun`);
  }
  const limit = invocationType === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
  if (size > limit) {
    return error(413, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation`);
  }
  let event: unknown;
  try {
    event = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    return error(400, 'InvalidRequestContentException', 'Could not parse request body into json: the payload is not valid JSON');
  }
  const version = { 'X-Amz-Executed-Version': '$LATEST' };
  switch (invocationType) {
    case 'DryRun':
      return reply(204, version);
    case 'Event':
      reply(202, {});
      runner.invoke(event).catch((err: unknown) => log(`lambda: asynchronous invocation of ${runner.fn.functionName} failed: ${describe(err)}`));
      return;
    default:
      runner.invoke(event).then(
        (result) => reply(200, version, JSON.stringify(result === undefined ? null : result)),
        (err: unknown) => {
          const failure = err instanceof LambdaInvocationError
            ? { errorType: err.errorType, errorMessage: err.errorMessage, trace: [] as string[] }
            : { errorType: 'Runtime.Unknown', errorMessage: describe(err), trace: [] as string[] };
          reply(200, { ...version, 'X-Amz-Function-Error': 'Unhandled' }, JSON.stringify(failure));
        },
      );
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
