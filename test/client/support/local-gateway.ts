import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { SignJWT } from 'jose';
import { AuthenticatedWebSocketApi, TokenLocation, WebSocketAuth } from '../../../src';
import { assertCliBundled, CLI } from '../../local/support/gateway-process';

/** Synthesizes a chat API whose token travels at `tokenLocation`, into a new temporary folder. */
export function synthesizeChat(tokenLocation: TokenLocation): string {
  const outdir = mkdtempSync(join(tmpdir(), 'authws-client-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'ClientChat');
  new AuthenticatedWebSocketApi(stack, 'Chat', { auth: WebSocketAuth.hmacSecret(new secretsmanager.Secret(stack, 'JwtSecret'), { tokenLocation }) });
  app.synth();
  return outdir;
}

/** An HS256 token as `authws token` signs it, valid `ttlSeconds`. */
export function signToken(secret: string, subject: string, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(subject).setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds).sign(new TextEncoder().encode(secret));
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const running = new Set<PinnedGateway>();

/** `authws local` on a fixed port, so a test can kill it and start it again at the same URL. */
export class PinnedGateway {
  static start(args: readonly string[], port: number): Promise<PinnedGateway> {
    assertCliBundled();
    const child = spawn(process.execPath, [CLI, 'local', ...args, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const gateway = new PinnedGateway(child);
    running.add(gateway);
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', () => {
        if (/^READY /m.test(gateway.output)) resolve(gateway);
      });
      child.once('exit', (code) => reject(new Error(`authws local exited with ${code} before it was ready:\n${gateway.output}`)));
    });
  }

  output = '';
  readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) => child.once('exit', () => {
      running.delete(this);
      resolve();
    }));
  }

  get url(): string {
    return /^READY (\S+)/m.exec(this.output)![1]; // the API's name may follow the URL
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export async function stopPinnedGateways(): Promise<void> {
  await Promise.all([...running].map((gateway) => gateway.stop('SIGKILL')));
}
