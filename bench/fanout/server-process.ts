import { ChildProcess, fork } from 'node:child_process';

/**
 * The loopback @connections server (bench/fanout/server.ts) in a child process of its own, so its CPU
 * is not the measured client's; shared by the fan-out and channels benchmarks.
 */

/** What the server counted. */
export interface ServerStats {
  delivered: number;
  posts: number;
  signed: number;
  statuses: Record<string, number>;
  maxInFlight: number;
  deliveringMs: number;
}

/** The running server. */
export interface ServerHandle {
  port: number;
  /** The same API over TLS, when the server was given a certificate. */
  tlsPort?: number;
  configure(config: { latencyMs: number; stage: string; maxRate?: number; errorRate?: number }): Promise<void>;
  stats(): Promise<ServerStats>;
  stop(): void;
}

/** Starts the bundled server (`serverJs`), over TLS too when given a certificate. */
export async function startServer(serverJs: string, tls?: { key: string; cert: string }): Promise<ServerHandle> {
  const child = fork(serverJs, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...(tls ? { BENCH_TLS_KEY: tls.key, BENCH_TLS_CERT: tls.cert } : {}) },
  });
  const reply = <T>(type: string): Promise<T> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not answer ${type}`)), 10_000);
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
  });
  const { port, tlsPort } = await reply<{ port: number; tlsPort?: number }>('listening');
  return {
    port,
    tlsPort,
    configure: async (config) => {
      const answered = reply('configured');
      child.send({ type: 'configure', config });
      await answered;
    },
    stats: async () => {
      const answered = reply<ServerStats>('stats');
      child.send({ type: 'stats' });
      return answered;
    },
    stop: () => {
      child.send({ type: 'stop' });
      setTimeout(() => killIfAlive(child), 2_000).unref();
    },
  };
}

/** Kills a child process that has not exited by itself. */
export function killIfAlive(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill();
}
