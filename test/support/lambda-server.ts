import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGV4_AUTHORIZATION } from './aws-environment';

/** A function the server runs for Invoke, as Lambda would. */
export type InvokedHandler = (event: unknown) => Promise<unknown>;

/**
 * Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`, SigV4 for `lambda`) running
 * in-process handlers by name: the answer is the handler's JSON result, or a thrown error as
 * `X-Amz-Function-Error: Unhandled` with `{errorType, errorMessage}`, as Lambda answers it.
 */
export class LambdaServer {
  static async start(functions: Record<string, InvokedHandler>): Promise<LambdaServer> {
    const server = new LambdaServer(functions);
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  readonly invocations: { functionName: string; service?: string }[] = [];
  private readonly http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', (): void => {
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
      const auth = SIGV4_AUTHORIZATION.exec(req.headers.authorization ?? '');
      const handler = match ? this.functions[decodeURIComponent(match[1])] : undefined;
      if (!auth) {
        res.writeHead(403, { 'x-amzn-ErrorType': 'MissingAuthenticationTokenException' }).end('{}');
        return;
      }
      if (!match || !handler) {
        res.writeHead(404, { 'x-amzn-ErrorType': 'ResourceNotFoundException' }).end('{"Message":"Function not found"}');
        return;
      }
      this.invocations.push({ functionName: decodeURIComponent(match[1]), service: auth.groups?.service });
      handler(JSON.parse(Buffer.concat(chunks).toString('utf8'))).then(
        (result) => res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' }).end(JSON.stringify(result)),
        (err: Error) => res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' })
          .end(JSON.stringify({ errorType: err.name, errorMessage: err.message })),
      );
    });
  });

  private constructor(private readonly functions: Record<string, InvokedHandler>) {}

  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_LAMBDA. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
