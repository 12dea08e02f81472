import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** How the server answers key set requests. */
export type JwksMode =
  | 'ok' // 200 with the key set
  | 'down' // 503, as an issuer in an outage
  | 'hang' // never answers
  | 'html'; // 200 with an HTML error page, as behind a misconfigured proxy

/**
 * An OIDC issuer's key set endpoint on 127.0.0.1: `GET /.well-known/jwks.json`. Counts requests so
 * tests can prove the key set is fetched once and refetched at most once per cooldown.
 */
export class JwksServer {
  static async start(keys: JWK[] = []): Promise<JwksServer> {
    const server = new JwksServer(keys);
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** Key set requests received, answered or not. */
  requests = 0;
  mode: JwksMode = 'ok';

  private readonly http = createServer((req, res) => this.handle(req, res));

  private constructor(public keys: JWK[]) {}

  /** `http://127.0.0.1:<port>`: the issuer. */
  get issuer(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** The key set URL. */
  get jwksUrl(): string {
    return `${this.issuer}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections(); // hung requests included
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    this.requests += 1;
    switch (this.mode) {
      case 'hang': return;
      case 'down': res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable'); return;
      case 'html': res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>'); return;
      default: res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
    }
  }
}
