import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { WorkerSetup } from './lambda-runner';

/**
 * What a function's sandbox gets from Lambda's Node.js runtime besides its own code, set up in
 * each worker before the function loads:
 *
 * - The AWS SDK v3. Lambda's Node.js runtimes provide `@aws-sdk/*`, so inline code and unbundled
 *   assets import it without shipping it. The gateway (one bundled file) has no SDK of its own: it
 *   lends the function the one installed in the user's project, found from the current folder and
 *   the assembly's folder upwards (`node_modules`), for `require` (NODE_PATH) and `import` (a
 *   resolve hook). A package found nowhere fails the import with a message naming it.
 * - @connections calls to the served APIs, however their URL was built. Code that builds
 *   `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` from the event's `requestContext`
 *   (as the AWS samples do) reaches the local gateway: `http.request`, `https.request` (the SDK's
 *   transport) and `fetch` to a served API's execute-api host go to its local port. A request to any
 *   other execute-api host fails with an error naming it, never reaching AWS.
 */

/** A served API: its id and the `host:port` of its local endpoint. */
export interface LocalApiEndpoint {
  readonly apiId: string;
  readonly host: string;
}

export interface SandboxSetupOptions {
  /** Folders whose `node_modules` (and their parents') provide the SDK: the project, the assembly. */
  readonly searchRoots: readonly string[];
  readonly endpoints: readonly LocalApiEndpoint[];
}

/** Packages Lambda's Node.js runtimes provide, by import prefix. */
export const PROVIDED_PACKAGES = ['@aws-sdk/', '@smithy/'];

export function sandboxSetup(options: SandboxSetupOptions): WorkerSetup {
  const roots = [...new Set(options.searchRoots.map((root) => resolve(root)))];
  return {
    preamble: PREAMBLE,
    data: { roots, nodeModules: nodeModulesOf(roots), endpoints: options.endpoints, provided: PROVIDED_PACKAGES },
  };
}

/** Every existing `node_modules` folder from each root up to the file system's root, nearest first. */
export function nodeModulesOf(roots: readonly string[]): string[] {
  const found: string[] = [];
  for (const root of roots) {
    for (let directory = resolve(root); ; directory = dirname(directory)) {
      const candidate = join(directory, 'node_modules');
      if (existsSync(candidate) && !found.includes(candidate)) found.push(candidate);
      if (dirname(directory) === directory) break;
    }
  }
  return found;
}

/** The resolve hook for `import` (an ES module, registered with `module.register`). */
const RESOLVE_HOOK = `
import { pathToFileURL } from 'node:url';
let roots = [];
let provided = [];
export function initialize(data) { roots = data.roots; provided = data.provided; }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (!provided.some((prefix) => specifier.startsWith(prefix))) throw error;
    for (const root of roots) {
      try {
        return await next(specifier, { ...context, parentURL: pathToFileURL(root + '/index.js').href });
      } catch {}
    }
    throw Object.assign(new Error(missingMessage(specifier)), { code: 'ERR_MODULE_NOT_FOUND' });
  }
}
function missingMessage(specifier) {
  const name = specifier.split('/').slice(0, 2).join('/');
  return "Cannot find package '" + name + "'. Lambda's Node.js runtime provides it; authws local takes it from your project and found it neither beside the function nor under " + roots.join(', ') + ": install it there (npm install --save-dev " + name + ").";
}
`;

/** Runs first in every sandbox (CommonJS, in its own scope). */
const PREAMBLE = `
(() => {
  const { workerData } = require('node:worker_threads');
  const Module = require('node:module');
  const http = require('node:http');
  const https = require('node:https');
  const { urlToHttpOptions } = require('node:url');
  const setup = workerData.setup;
  if (!setup) return;

  // ---- the SDK Lambda provides: require() through NODE_PATH, import through a resolve hook ----
  process.env.NODE_PATH = setup.nodeModules.join(require('node:path').delimiter);
  Module._initPaths();
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    try {
      return resolveFilename.call(this, request, ...rest);
    } catch (error) {
      if (error && error.code === 'MODULE_NOT_FOUND' && setup.provided.some((prefix) => request.startsWith(prefix))) {
        const name = request.split('/').slice(0, 2).join('/');
        error.message = "Cannot find package '" + name + "'. Lambda's Node.js runtime provides it; authws local takes it from your project and found it neither beside the function nor under " + setup.roots.join(', ') + ": install it there (npm install --save-dev " + name + ").";
      }
      throw error;
    }
  };
  if (typeof Module.register === 'function') Module.register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(RESOLVE_HOOK)}), { data: { roots: setup.roots, provided: setup.provided } });

  // ---- @connections of the served APIs, whoever built the URL ----
  const EXECUTE_API = /^([a-z0-9]+)\\.execute-api\\.[a-z0-9-]+\\.amazonaws\\.com(?:\\.cn)?$/i;
  const served = new Map(setup.endpoints.map((endpoint) => [endpoint.apiId.toLowerCase(), endpoint.host]));

  /** The local host:port for a hostname, undefined when not execute-api; throws for an API not served here. */
  function localHostFor(hostname) {
    const match = EXECUTE_API.exec(String(hostname || '').replace(/\\.$/, ''));
    if (!match) return undefined;
    const local = served.get(match[1].toLowerCase());
    if (local) return local;
    const message = 'authws local: blocked a request to ' + hostname + ': API ' + match[1] + ' is not served by this gateway (served: ' + ([...served.keys()].join(', ') || 'none') + '), and functions never reach AWS from here';
    console.error(message);
    throw Object.assign(new Error(message), { code: 'ERR_AUTHWS_FOREIGN_API' });
  }

  const httpRequest = http.request;
  function routed(original) {
    return function request(...args) {
      let url;
      let options;
      let callback;
      if (typeof args[0] === 'string' || args[0] instanceof URL) {
        url = new URL(args[0]);
        options = typeof args[1] === 'object' && args[1] !== null ? args[1] : {};
        callback = typeof args[1] === 'function' ? args[1] : args[2];
      } else {
        options = args[0] || {};
        callback = args[1];
      }
      const hostname = url ? url.hostname : (options.hostname || String(options.host || '').replace(/:\\d+$/, ''));
      const local = localHostFor(hostname);
      if (!local) return original.apply(this, args);
      const [localHostname, localPort] = [local.slice(0, local.lastIndexOf(':')), Number(local.slice(local.lastIndexOf(':') + 1))];
      const merged = { ...(url ? urlToHttpOptions(url) : {}), ...options, protocol: 'http:', hostname: localHostname, port: localPort };
      delete merged.host;
      delete merged.agent; // an https.Agent cannot carry plain HTTP
      delete merged.createConnection;
      return httpRequest(merged, callback);
    };
  }
  const routedHttp = routed(http.request);
  const routedHttps = routed(https.request);
  http.request = routedHttp;
  https.request = routedHttps;
  http.get = function get(...args) { const request = routedHttp.apply(this, args); request.end(); return request; };
  https.get = function get(...args) { const request = routedHttps.apply(this, args); request.end(); return request; };
  Module.syncBuiltinESMExports();

  const originalFetch = globalThis.fetch;
  if (typeof originalFetch === 'function') {
    globalThis.fetch = function fetch(input, init) {
      const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input && input.url;
      let url;
      try {
        url = new URL(href);
      } catch {
        return originalFetch(input, init);
      }
      let local;
      try {
        local = localHostFor(url.hostname);
      } catch (error) {
        return Promise.reject(new TypeError('fetch failed', { cause: error }));
      }
      if (!local) return originalFetch(input, init);
      const rewritten = 'http://' + local + url.pathname + url.search;
      return originalFetch(input instanceof Request ? new Request(rewritten, input) : rewritten, init);
    };
  }
})();
`;
