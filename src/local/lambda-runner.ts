import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { FunctionModel } from './assembly';

/**
 * Runs a Lambda function's synthesized code, unchanged, in worker threads (its sandboxes): each
 * has the function's own `process.env` (what the template sets, plus what the Lambda runtime
 * sets), and its module scope lives between invocations like a warm container, so caches behave
 * as they do in Lambda.
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
  /**
   * The most sandboxes (worker threads) the function runs at once; the function's reserved
   * concurrency, when lower, wins. @default DEFAULT_CONCURRENCY
   */
  readonly concurrency?: number;
  /** Extra `execArgv` and environment for the workers (the module resolution of provided packages, say). */
  readonly workerSetup?: WorkerSetup;
}

/** What every sandbox of a function is started with, beyond the function's own settings. */
export interface WorkerSetup {
  /** Code run in the worker before the function's module loads (plain JavaScript, CommonJS). */
  readonly preamble: string;
  /** Data the preamble reads as `workerData.setup`. */
  readonly data: unknown;
}

/**
 * Sandboxes per function unless told otherwise: enough that a slow or hung invocation does not
 * stall the rest, few enough that a burst does not spend the machine on cold starts (each sandbox
 * holds its own copy of the function and the SDK, about 50 MB).
 */
export const DEFAULT_CONCURRENCY = 4;

/** How long the line waits without any invocation finishing before another sandbox starts. */
const SCALE_UP_DELAY_MS = 100;

/** Lambda's limit on a function's init phase (loading its module). */
const INIT_LIMIT_MS = 10_000;

/** Node.js runtimes Lambda offers (`nodejs18.x`, `nodejs22.x`, ...). */
const NODE_RUNTIME = /^nodejs\d+\.x$/;

/** An invocation waiting for a sandbox, or running in one. */
interface Invocation {
  readonly requestId: string;
  readonly event: unknown;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** One worker thread: one invocation at a time, its module scope kept between invocations. */
interface Sandbox {
  readonly worker: Worker;
  /** The function's module has loaded (the init phase is over). */
  initialized?: boolean;
  running?: { readonly invocation: Invocation; readonly timer: NodeJS.Timeout };
}

/**
 * Runs a function as Lambda scales it: each invocation gets a sandbox of its own (an idle one,
 * warm, or, after a short wait, a new one up to the concurrency), so a slow or timed-out
 * invocation delays and kills only itself. When every sandbox is busy, invocations wait in line per caller (the connection
 * that sent the message) and callers take turns, so one client's flood does not queue everyone
 * else behind it.
 */
export class LambdaRunner {
  private readonly sandboxes = new Set<Sandbox>();
  /** Idle sandboxes, the most recently used last (reused first, as a warm container is). */
  private readonly idle: Sandbox[] = [];
  /** Waiting invocations by caller, callers in turn order. */
  private readonly waiting = new Map<string, Invocation[]>();
  private readonly concurrency: number;
  private scaleUpTimer: NodeJS.Timeout | undefined;
  /** When an invocation last finished (or a sandbox was added). */
  private lastProgressAt = 0;
  private inlineDirectory: string | undefined;
  private closed = false;

  constructor(readonly fn: FunctionModel, private readonly options: LambdaRunnerOptions) {
    const wanted = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.concurrency = Math.max(1, Math.min(wanted, fn.reservedConcurrency ?? wanted));
  }

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
    return new Promise((resolve, reject) => {
      const caller = callerOf(event);
      const line = this.waiting.get(caller) ?? [];
      line.push({ requestId: randomUUID(), event, resolve, reject });
      this.waiting.set(caller, line);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.scaleUpTimer);
    const stopped = new LambdaInvocationError(this.fn.functionName, 'Runtime.Stopped', 'the gateway is shutting down');
    for (const line of this.waiting.values()) for (const invocation of line) invocation.reject(stopped);
    this.waiting.clear();
    const sandboxes = [...this.sandboxes];
    this.sandboxes.clear();
    this.idle.length = 0;
    for (const sandbox of sandboxes) {
      if (sandbox.running) {
        clearTimeout(sandbox.running.timer);
        sandbox.running.invocation.reject(stopped);
        sandbox.running = undefined;
      }
    }
    await Promise.all(sandboxes.map((sandbox) => sandbox.worker.terminate()));
    if (this.inlineDirectory) rmSync(this.inlineDirectory, { recursive: true, force: true });
  }

  /**
   * Starts waiting invocations on idle sandboxes, callers taking turns. When none is idle, a new
   * sandbox starts (up to the concurrency) once no invocation has finished for SCALE_UP_DELAY_MS:
   * a cold start costs far more CPU here than a quick invocation takes, so a stream of quick
   * invocations is served by the warm sandboxes, while slow or hung ones get the rest of the line
   * new sandboxes soon after.
   */
  private dispatch(): void {
    while (!this.closed && this.waiting.size > 0) {
      const sandbox = this.idle.pop() ?? (this.sandboxes.size === 0 ? this.start() : undefined);
      if (!sandbox) {
        this.scheduleScaleUp();
        return;
      }
      const [caller, line] = this.waiting.entries().next().value as [string, Invocation[]];
      const invocation = line.shift()!;
      // The caller goes to the back of the turn order (or leaves it when it has nothing more waiting).
      this.waiting.delete(caller);
      if (line.length > 0) this.waiting.set(caller, line);
      this.run(sandbox, invocation);
    }
  }

  private scheduleScaleUp(): void {
    if (this.scaleUpTimer || this.sandboxes.size >= this.concurrency) return;
    const wait = Math.max(10, this.lastProgressAt + SCALE_UP_DELAY_MS - Date.now());
    this.scaleUpTimer = setTimeout(() => {
      this.scaleUpTimer = undefined;
      if (this.closed || this.waiting.size === 0 || this.sandboxes.size >= this.concurrency) return;
      if (Date.now() - this.lastProgressAt >= SCALE_UP_DELAY_MS) {
        this.lastProgressAt = Date.now(); // the new sandbox's cold start counts as progress
        this.idle.push(this.start());
        this.dispatch();
      } else {
        this.scheduleScaleUp();
      }
    }, wait);
  }

  private run(sandbox: Sandbox, invocation: Invocation): void {
    // A cold sandbox first loads the function (its init phase, bounded by Lambda's 10 s); the
    // function's timeout counts from the handler's start, which the worker reports.
    const timer = this.stopAfter(sandbox, sandbox.initialized ? this.fn.timeoutSeconds * 1000 : INIT_LIMIT_MS + this.fn.timeoutSeconds * 1000);
    sandbox.running = { invocation, timer };
    sandbox.worker.postMessage({ requestId: invocation.requestId, event: invocation.event, timeoutMs: this.fn.timeoutSeconds * 1000 });
  }

  /** Stops `sandbox` after `ms` as Lambda stops a timed-out one: this one only; the next invocation gets a fresh one. */
  private stopAfter(sandbox: Sandbox, ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      this.retire(sandbox, new LambdaInvocationError(this.fn.functionName, 'Sandbox.Timedout', `Task timed out after ${this.fn.timeoutSeconds.toFixed(2)} seconds`));
      void sandbox.worker.terminate();
    }, ms);
  }

  /** Removes a sandbox (timed out or exited), failing its invocation with `error`, and serves the line. */
  private retire(sandbox: Sandbox, error: Error): void {
    if (!this.sandboxes.delete(sandbox)) return;
    const index = this.idle.indexOf(sandbox);
    if (index >= 0) this.idle.splice(index, 1);
    const running = sandbox.running;
    sandbox.running = undefined;
    if (running) {
      clearTimeout(running.timer);
      running.invocation.reject(error);
    }
    this.dispatch();
  }

  private start(): Sandbox {
    const codeDirectory = this.fn.codeDirectory ?? this.inlineCodeDirectory();
    const { fn } = this;
    const setup = this.options.workerSetup;
    const worker = new Worker(`${setup?.preamble ?? ''}\n${WORKER_SOURCE}`, {
      eval: true,
      stdout: true,
      stderr: true,
      workerData: { codeDirectory, handler: fn.handler, functionName: fn.functionName, arn: fn.arn, memorySize: fn.memorySize, setup: setup?.data },
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
    const sandbox: Sandbox = { worker };
    this.sandboxes.add(sandbox);
    this.forwardLines(worker.stdout);
    this.forwardLines(worker.stderr);
    worker.on('message', (message: { requestId: string; started?: boolean; result?: unknown; error?: { errorType: string; errorMessage: string } }) => {
      const running = sandbox.running;
      if (!running || running.invocation.requestId !== message.requestId) return;
      clearTimeout(running.timer);
      if (message.started) {
        sandbox.initialized = true;
        sandbox.running = { invocation: running.invocation, timer: this.stopAfter(sandbox, this.fn.timeoutSeconds * 1000) };
        return;
      }
      sandbox.running = undefined;
      this.lastProgressAt = Date.now();
      if (message.error) running.invocation.reject(new LambdaInvocationError(fn.functionName, message.error.errorType, message.error.errorMessage));
      else running.invocation.resolve(message.result);
      if (this.sandboxes.has(sandbox)) {
        this.idle.push(sandbox);
        this.dispatch();
      }
    });
    worker.on('error', (err) => {
      this.options.log(`${fn.logicalId}: ${err.stack ?? err.message}`);
    });
    worker.on('exit', (code) => {
      this.retire(sandbox, new LambdaInvocationError(fn.functionName, 'Runtime.ExitError', `the function's process exited (code ${code})`));
    });
    return sandbox;
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

  /** Lambda writes `Code.ZipFile` to `index.js`; so do we, once, in a folder of our own. */
  private inlineCodeDirectory(): string {
    if (this.inlineDirectory) return this.inlineDirectory;
    this.inlineDirectory = mkdtempSync(join(tmpdir(), 'authws-inline-'));
    const moduleFile = `${this.fn.handler.slice(0, this.fn.handler.lastIndexOf('.')) || 'index'}.js`;
    writeFileSync(join(this.inlineDirectory, moduleFile), this.fn.inlineCode ?? '');
    return this.inlineDirectory;
  }
}

/** Who an invocation is for, to take turns: the connection of a WebSocket event, else one shared line. */
function callerOf(event: unknown): string {
  const connectionId = (event as { requestContext?: { connectionId?: unknown } } | null)?.requestContext?.connectionId;
  return typeof connectionId === 'string' ? connectionId : '';
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
  if (typeof warning === 'string' && warning.startsWith('NodeVersionSupportWarning')) return;
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

parentPort.on('message', async ({ requestId, event, timeoutMs }) => {
  try {
    // A failed init is retried on the next invocation, as Lambda does.
    const fn = await (loaded ??= loadHandler().catch((error) => { loaded = undefined; throw error; }));
    // The timeout counts from here: loading the function is its init phase.
    const deadline = Date.now() + timeoutMs;
    parentPort.postMessage({ requestId, started: true });
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
