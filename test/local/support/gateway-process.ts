import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The bundled CLI, as the package's `authws` bin runs it. `npx projen bundle` writes it. */
export const CLI = join(__dirname, '..', '..', '..', 'assets', 'local', 'authws.js');

export function assertCliBundled(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx projen bundle\` before these tests.`);
}

/** `authws local` running as a child process. */
export class GatewayProcess {
  /**
   * Starts `authws local <args> --port 0` and resolves once `apis` READY lines are printed. `cwd` is
   * the folder it runs in (the user's project), `env` what it adds to this process's environment.
   */
  static start(args: readonly string[], apis = 1, options: { cwd?: string; env?: Record<string, string> } = {}): Promise<GatewayProcess> {
    assertCliBundled();
    const child = spawn(process.execPath, [CLI, 'local', ...args, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    });
    const gateway = new GatewayProcess(child);
    running.add(gateway);
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', () => {
        if (gateway.urls.length >= apis) resolve(gateway);
      });
      child.once('exit', (code) => reject(new Error(`authws local exited with ${code} before it was ready:\n${gateway.output}`)));
    });
  }

  output = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code) => {
      running.delete(this);
      resolve(code);
    }));
  }

  /** The WebSocket URLs, in the order printed. */
  get urls(): string[] {
    return [...this.output.matchAll(/^READY (\S+)/gm)].map((match) => match[1]);
  }

  get dynamoDbEndpoint(): string {
    const match = /^DynamoDB \(in memory\) at (\S+):/m.exec(this.output);
    if (!match) throw new Error(`no DynamoDB line in:\n${this.output}`);
    return match[1];
  }

  /** Sends `signal` and resolves to the exit code. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

const running = new Set<GatewayProcess>();

/** Stops every gateway a test left running, so jest can exit. */
export async function stopAllGateways(): Promise<void> {
  await Promise.all([...running].map((gateway) => gateway.stop('SIGKILL')));
}

/** `authws token ...` through the bundled CLI. */
export function cliToken(secret: string, subject: string, ...extra: string[]): Promise<string> {
  assertCliBundled();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'token', '--secret', secret, '--sub', subject, ...extra], (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout.trim());
    });
  });
}
