import WebSocket from 'ws';

/** How a connection ended, from the client's side. */
export interface Closed {
  readonly code: number;
  readonly reason: string;
}

const openClients = new Set<TestClient>();

/** A WebSocket client that queues what it receives, so a test can await messages in order. */
export class TestClient {
  /** Connects, resolving once the handshake succeeded (rejects with the HTTP status otherwise). */
  static connect(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
      socket.once('open', () => {
        const client = new TestClient(socket);
        openClients.add(client);
        resolve(client);
      });
      socket.once('unexpected-response', (_request, response) => {
        socket.terminate();
        reject(new HandshakeRefused(response.statusCode ?? 0));
      });
      socket.once('error', reject);
    });
  }

  readonly closed: Promise<Closed>;
  private readonly received: string[] = [];
  private waiting: Array<(message: string) => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = data.toString();
      const waiter = this.waiting.shift();
      if (waiter) waiter(text);
      else this.received.push(text);
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        openClients.delete(this);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** The protocol the server chose ('' for none). */
  get protocol(): string {
    return this.socket.protocol;
  }

  send(message: string | object): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message received (jest's timeout bounds the wait). */
  next(): Promise<string> {
    const queued = this.received.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async nextJson<T = any>(): Promise<T> {
    return JSON.parse(await this.next()) as T;
  }

  close(code?: number): Promise<Closed> {
    this.socket.close(code);
    return this.closed;
  }
}

export class HandshakeRefused extends Error {
  constructor(readonly statusCode: number) {
    super(`handshake refused with HTTP ${statusCode}`);
  }
}

/** The HTTP status a refused handshake got; fails the test when the connection opens. */
export async function refusalStatus(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<number> {
  try {
    const client = await TestClient.connect(url, options);
    await client.close();
  } catch (err) {
    if (err instanceof HandshakeRefused) return err.statusCode;
    throw err;
  }
  throw new Error(`expected ${url} to refuse the handshake, but it opened`);
}

/** Closes every client a test left open, so jest can exit. */
export async function closeAllClients(): Promise<void> {
  await Promise.all([...openClients].map((client) => {
    client.socket.terminate();
    return client.closed;
  }));
}
