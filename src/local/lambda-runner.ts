import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { FunctionModel } from './assembly';

/**
 * Runs a Lambda function's synthesized code, unchanged, in its own worker thread: the worker has
 * the function's own `process.env` (what the template sets, plus what the Lambda runtime sets),
 * and its module scope lives between invocations like a warm container, so caches behave as they
 * do in Lambda.
 */

/** The function failed, as Lambda reports it: `errorType` and `errorMessage`. */
export class LambdaInvocationError extends Error {
  constructor(readonly functionName: string, readonly errorType: string, readonly errorMessage: string) {
    super(`${functionName} failed: ${errorType}: ${errorMessage}`);
    this.name = 'LambdaInvocationError';
  }
}

export interface LambdaRunnerOptions {
  /** Added to the function's environment: endpoints, credentials, region. */
  readonly environment: Readonly<Record<string, string>>;
  /** Where the function's console output goes, one line at a time. */
  readonly log: (line: string) => void;
}

/** Node.js runtimes Lambda offers (`nodejs18.x`, `nodejs22.x`, ...). */
const NODE_RUNTIME = /^nodejs\d+\.x$/;

interface Pending {
  readonly timer: NodeJS.Timeout;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class LambdaRunner {
  private worker: Worker | undefined;
  private readonly pending = new Map<string, Pending>();
  private inlineDirectory: string | undefined;
  private closed = false;

  constructor(readonly fn: FunctionModel, private readonly options: LambdaRunnerOptions) {}

  /** Why this function cannot run locally, or undefined when it can. */
  get unsupportedReason(): string | undefined {
    if (!NODE_RUNTIME.test(this.fn.runtime)) {
      return `function ${this.fn.logicalId} (${this.fn.functionName}) uses the ${this.fn.runtime} runtime; authws local runs Node.js functions only`;
    }
    if (!this.fn.codeDirectory && this.fn.inlineCode === undefined) {
      return `function ${this.fn.logicalId} (${this.fn.functionName}) has no code in the assembly (neither an asset nor inline code)`;
    }
    return undefined;
  }

  /** Invokes the function with `event` and resolves to what it returns; rejects with LambdaInvocationError. */
  invoke(event: unknown): Promise<unknown> {
    const reason = this.unsupportedReason;
    if (reason) return Promise.reject(new LambdaInvocationError(this.fn.functionName, 'Runtime.Unsupported', reason));
    if (this.closed) return Promise.reject(new LambdaInvocationError(this.fn.functionName, 'Runtime.Stopped', 'the gateway is shutting down'));

    const worker = this.worker ?? this.start();
    const requestId = randomUUID();
    const timeoutMs = this.fn.timeoutSeconds * 1000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Lambda stops a timed-out sandbox; so do we, and the next invocation starts a fresh one.
        this.failAll(new LambdaInvocationError(this.fn.functionName, 'Sandbox.Timedout', `Task timed out after ${this.fn.timeoutSeconds.toFixed(2)} seconds`));
        void worker.terminate();
      }, timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      worker.postMessage({ requestId, event, deadline: Date.now() + timeoutMs });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new LambdaInvocationError(this.fn.functionName, 'Runtime.Stopped', 'the gateway is shutting down'));
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    if (this.inlineDirectory) rmSync(this.inlineDirectory, { recursive: true, force: true });
  }

  private start(): Worker {
    const codeDirectory = this.fn.codeDirectory ?? this.writeInlineCode();
    const { fn } = this;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      stdout: true,
      stderr: true,
      workerData: { codeDirectory, handler: fn.handler, functionName: fn.functionName, arn: fn.arn, memorySize: fn.memorySize },
      env: {
        ...fn.environment,
        ...this.options.environment,
        AWS_LAMBDA_FUNCTION_NAME: fn.functionName,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.functionName}`,
        AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', // the gateway already notes the Node.js it runs functions on
        LAMBDA_TASK_ROOT: codeDirectory,
        _HANDLER: fn.handler,
      },
    });
    worker.unref();
    this.forwardLines(worker.stdout);
    this.forwardLines(worker.stderr);
    worker.on('message', (message: { requestId: string; result?: unknown; error?: { errorType: string; errorMessage: string } }) => {
      const pending = this.pending.get(message.requestId);
      if (!pending) return;
      this.pending.delete(message.requestId);
      clearTimeout(pending.timer);
      if (message.error) pending.reject(new LambdaInvocationError(fn.functionName, message.error.errorType, message.error.errorMessage));
      else pending.resolve(message.result);
    });
    worker.on('error', (err) => {
      this.options.log(`${fn.logicalId}: ${err.stack ?? err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new LambdaInvocationError(fn.functionName, 'Runtime.ExitError', `the function's process exited (code ${code})`));
    });
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const [requestId, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(requestId);
      pending.reject(error);
    }
  }

  private forwardLines(stream: Readable): void {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        this.options.log(`${this.fn.logicalId} | ${buffered.slice(0, newline)}`);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
  }

  /** Lambda writes `Code.ZipFile` to `index.js`; so do we, in a folder of our own. */
  private writeInlineCode(): string {
    this.inlineDirectory = mkdtempSync(join(tmpdir(), 'authws-inline-'));
    const moduleFile = `${this.fn.handler.slice(0, this.fn.handler.lastIndexOf('.')) || 'index'}.js`;
    writeFileSync(join(this.inlineDirectory, moduleFile), this.fn.inlineCode ?? '');
    return this.inlineDirectory;
  }
}

/**
 * The worker: loads the handler on the first invocation (as Lambda does on a cold start), then
 * serves invocations. Async handlers and callback handlers are both supported. Plain JavaScript,
 * because the CLI is one bundled file and the worker is started from this string.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { existsSync } = require('node:fs');
const { resolve } = require('node:path');
const { pathToFileURL } = require('node:url');
const { randomUUID } = require('node:crypto');

// The gateway may run on an older Node.js than the function's runtime; the AWS SDK would warn about
// that in every function. The gateway says it once at startup instead.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0] && rest[0].type;
  if (type === 'NodeVersionSupportWarning' || (warning && warning.name === 'NodeVersionSupportWarning')) return;
  return emitWarning.call(process, warning, ...rest);
};

let loaded;
async function loadHandler() {
  const { codeDirectory, handler } = workerData;
  const dot = handler.lastIndexOf('.');
  const modulePath = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  const base = resolve(codeDirectory, modulePath);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((candidate) => existsSync(candidate));
  if (!file) throw Object.assign(new Error('Cannot find module ' + modulePath + ' in ' + codeDirectory), { name: 'Runtime.ImportModuleError' });
  const mod = await import(pathToFileURL(file).href);
  const fn = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof fn !== 'function') throw Object.assign(new Error(modulePath + '.' + exportName + ' is undefined or not exported'), { name: 'Runtime.HandlerNotFound' });
  return fn;
}

parentPort.on('message', async ({ requestId, event, deadline }) => {
  try {
    // A failed init is retried on the next invocation, as Lambda does.
    const fn = await (loaded ??= loadHandler().catch((error) => { loaded = undefined; throw error; }));
    const context = {
      awsRequestId: requestId,
      functionName: workerData.functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: workerData.arn,
      memoryLimitInMB: String(workerData.memorySize),
      logGroupName: '/aws/lambda/' + workerData.functionName,
      logStreamName: 'local/' + randomUUID(),
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    const result = await new Promise((resolvePromise, rejectPromise) => {
      const callback = (error, value) => (error ? rejectPromise(error) : resolvePromise(value));
      context.done = callback;
      context.succeed = (value) => resolvePromise(value);
      context.fail = (error) => rejectPromise(error);
      const returned = fn(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolvePromise, rejectPromise);
      else if (fn.length < 3) resolvePromise(returned);
    });
    parentPort.postMessage({ requestId, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) });
  } catch (error) {
    const errorType = (error && error.name) || 'Error';
    const errorMessage = (error && error.message) || String(error);
    console.error(JSON.stringify({ errorType, errorMessage, stack: error && error.stack ? String(error.stack).split('\\n') : undefined }));
    parentPort.postMessage({ requestId, error: { errorType, errorMessage } });
  }
});
`;
