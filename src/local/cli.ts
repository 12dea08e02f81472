#!/usr/bin/env node
import { relative, resolve } from 'node:path';
import { LocalGateway } from './gateway';
import { parseClaim, signToken } from './token';

/**
 * The `authws` command:
 *   authws local [--assembly cdk.out] [--host 127.0.0.1] [--port 3001] [--secret VALUE] [--web DIR]
 *                [--idle-timeout 10m] [--max-lifetime 2h] [--concurrency 4]
 *   authws token [--secret VALUE] --sub USER [--ttl 1h] [--claim key=value ...]   (or AUTHWS_SECRET)
 */

const USAGE = `Usage:
  authws local [--assembly cdk.out] [--host 127.0.0.1] [--port 3001] [--secret VALUE] [--web DIR]
               [--idle-timeout 10m] [--max-lifetime 2h] [--concurrency 4]
      Serves every WebSocket API of a synthesized cloud assembly on this machine.
      --port 0 picks a free port. --secret (or the AUTHWS_SECRET variable) sets the value of every
      Secrets Manager secret (default: random, printed). --web serves a folder of static files
      (a browser client) at /. --concurrency caps the sandboxes (worker threads) each function runs at once.
      Functions reach a local Lambda Invoke API and EventBridge (PutEvents), whose URLs it prints: a
      backend on this machine publishes with AWS_ENDPOINT_URL_LAMBDA set to the first.

  authws token [--secret VALUE] --sub USER [--ttl 1h] [--claim key=value ...]
      Prints an HS256 token signed with VALUE (default: the AUTHWS_SECRET variable), for a gateway
      started with the same secret.
`;

/** Where both commands read the secret when --secret is absent, so it stays out of shell history and `ps`. */
const SECRET_VARIABLE = 'AUTHWS_SECRET';

type Flags = Map<string, string[]>;

function parseFlags(argv: readonly string[], known: readonly string[]): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(argument);
    if (!match || !known.includes(match[1])) throw new UsageError(`unknown argument ${argument}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${match[1]} needs a value`);
    flags.set(match[1], [...(flags.get(match[1]) ?? []), value]);
  }
  return flags;
}

class UsageError extends Error {}

/** `90` (seconds), `500ms`, `30s`, `10m`, `2h`, `1d` to milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${flag} ${text}: use a duration such as 90s, 10m or 2h`);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return Number(match[1]) * units[match[2] ?? 's'];
}

function single(flags: Flags, name: string): string | undefined {
  const values = flags.get(name);
  return values?.[values.length - 1];
}

async function local(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, ['assembly', 'host', 'port', 'secret', 'web', 'idle-timeout', 'max-lifetime', 'concurrency']);
  const concurrencyFlag = single(flags, 'concurrency');
  const concurrency = concurrencyFlag === undefined ? undefined : Number(concurrencyFlag);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new UsageError(`--concurrency ${concurrencyFlag}: use a whole number of sandboxes per function, at least 1`);
  }
  const port = Number(single(flags, 'port') ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${single(flags, 'port')}: use a port number, or 0 for a free one`);
  const idle = single(flags, 'idle-timeout');
  const lifetime = single(flags, 'max-lifetime');
  const web = single(flags, 'web');
  const secret = single(flags, 'secret') ?? (process.env[SECRET_VARIABLE] || undefined);
  const secretOrigin = single(flags, 'secret') !== undefined ? 'flag' : secret !== undefined ? 'environment' : 'random';
  const gateway = await LocalGateway.start({
    assemblyDirectory: single(flags, 'assembly') ?? 'cdk.out',
    host: single(flags, 'host'),
    port,
    secret,
    idleTimeoutMs: idle === undefined ? undefined : parseDuration(idle, '--idle-timeout'),
    maxLifetimeMs: lifetime === undefined ? undefined : parseDuration(lifetime, '--max-lifetime'),
    webDirectory: web === undefined ? undefined : resolve(web),
    concurrency,
    log: (line) => console.log(`${new Date().toISOString().slice(11, 23)} ${line}`),
  });

  // A secret the user chose is never printed (terminals are shared, scrolled back and recorded); a random one must be, to be usable.
  if (secretOrigin === 'random') console.log(`Secrets Manager secrets have the value: ${gateway.secret}  (set it with --secret or ${SECRET_VARIABLE})`);
  const tables = gateway.assembly.tables.map((table) => table.tableName).join(', ');
  if (tables) console.log(`DynamoDB (in memory) at ${gateway.dynamoDbEndpoint}: ${tables}`);
  // A backend on this machine reaches the functions (the publisher, for the publish helper) with AWS_ENDPOINT_URL_LAMBDA.
  const functionNames = [...gateway.assembly.functions.values()].map((fn) => fn.functionName).join(', ');
  console.log(`Lambda Invoke API at ${gateway.lambdaEndpoint} (AWS_ENDPOINT_URL_LAMBDA): ${functionNames}`);
  console.log(`EventBridge PutEvents at ${gateway.eventBridgeEndpoint} (AWS_ENDPOINT_URL_EVENTBRIDGE)`);
  // One line per served stage, naming its API: with several APIs, the URLs alone do not say which is which.
  for (const stage of gateway.stages) console.log(`READY ${stage.url}  ${stage.api.stackName}/${stage.api.name}`);
  await printHowToConnect(gateway, web !== undefined, secretOrigin === 'random');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second Ctrl-C does not wait
    stopping = true;
    console.log(`${signal}: closing connections`);
    setTimeout(() => process.exit(1), 5_000).unref();
    gateway.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** With one API whose `$connect` takes a token, a ready-to-paste wscat command (and a page, with --web). */
async function printHowToConnect(gateway: LocalGateway, servesWeb: boolean, randomSecret: boolean): Promise<void> {
  if (gateway.stages.length !== 1 || gateway.assembly.secrets.length === 0) return;
  const [{ api, url }] = gateway.stages;
  const authorizer = api.routes.get('$connect')?.authorizer;
  const sources = authorizer?.identitySources ?? [];
  if (sources.length !== 1) return;
  const token = await signToken({ secret: gateway.secret, subject: 'alice', ttlSeconds: 3600 });
  const header = /^route\.request\.header\.(.+)$/.exec(sources[0]);
  const query = /^route\.request\.querystring\.(.+)$/.exec(sources[0]);
  // A token in Sec-WebSocket-Protocol (TokenLocation.subprotocol) travels as a second subprotocol
  // beside the protocol name, which the authorizer's AUTH_TOKEN_LOCATION (`subprotocol:<name>`) gives.
  const subprotocol = header && header[1].toLowerCase() === 'sec-websocket-protocol'
    ? (/^subprotocol:(.+)$/.exec(gateway.assembly.functions.get(authorizer?.functionArn ?? '')?.environment.AUTH_TOKEN_LOCATION ?? '')?.[1] ?? 'authws')
    : undefined;
  let command: string;
  if (subprotocol) command = `npx wscat -c ${url} -s ${subprotocol} -s ${token}`;
  else if (header) command = `npx wscat -c ${url} -H "${header[1]}: Bearer ${token}"`;
  else if (query) command = `npx wscat -c "${url}?${query[1]}=${token}"`;
  else return;
  console.log('');
  console.log('Connect as alice (token valid 1 hour):');
  console.log(`  ${command}`);
  console.log('then send: {"action":"broadcast","message":"Hello everyone"}');
  if (randomSecret) console.log(`Another user's token: ${selfCommand()} token --secret '${gateway.secret}' --sub bob`);
  else console.log(`Another user's token, with ${SECRET_VARIABLE} set to your secret: ${selfCommand()} token --sub bob`);
  if (servesWeb && (query || subprotocol)) {
    const page = new URL(url.replace(/^ws/, 'http'));
    console.log(`Browser page: http://${page.host}/?stage=${encodeURIComponent(page.pathname.slice(1))}&token=${token}`);
  } else if (servesWeb) {
    console.log('Browser page: not shown, because this API takes its token in a header and browsers cannot set headers on a WebSocket.');
  }
}

/** How to run this CLI again: `npx authws` when installed as a package, else `node <path>` (as in this repository). */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  return script.includes('node_modules') ? 'npx authws' : `node ${relative(process.cwd(), script) || script}`;
}

async function printToken(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv, ['secret', 'sub', 'ttl', 'claim']);
  const secret = single(flags, 'secret') ?? process.env[SECRET_VARIABLE];
  const subject = single(flags, 'sub');
  if (!secret || !subject) throw new UsageError(`authws token needs --sub, and --secret or ${SECRET_VARIABLE}`);
  const ttlMs = parseDuration(single(flags, 'ttl') ?? '1h', '--ttl');
  const claims = Object.fromEntries((flags.get('claim') ?? []).map(parseClaim));
  console.log(await signToken({ secret, subject, ttlSeconds: Math.max(1, Math.round(ttlMs / 1000)), claims }));
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'local': return local(rest);
    case 'token': return printToken(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`authws: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(`authws: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
