import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TableModel } from './assembly';

/**
 * An embedded DynamoDB (dynalite, in memory, in this process) holding the template's tables, so
 * handlers read and write their registry through AWS_ENDPOINT_URL_DYNAMODB with the real SDK.
 */
export interface LocalDynamoDb {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

type Dynalite = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
// dynalite ships no types; it is bundled into the CLI by esbuild.
// eslint-disable-next-line @typescript-eslint/no-require-imports, import/no-extraneous-dependencies
const dynalite = require('dynalite') as Dynalite;

export async function startDynamoDb(tables: readonly TableModel[], host: string): Promise<LocalDynamoDb> {
  // Tables are ACTIVE at once: nothing waits for them locally.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const endpoint = `http://${host}:${(server.address() as AddressInfo).port}`;
  for (const table of tables) await createTable(endpoint, table);
  return {
    endpoint,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Sends CreateTable over DynamoDB's JSON protocol. dynalite wants a SigV4-shaped header but checks no signature. */
async function createTable(endpoint: string, table: TableModel): Promise<void> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': 'DynamoDB_20120810.CreateTable',
      'X-Amz-Date': new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, ''),
      'Authorization': 'AWS4-HMAC-SHA256 Credential=local/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00',
    },
    body: JSON.stringify(table.createTable),
  });
  if (!response.ok) {
    throw new Error(`Creating table ${table.tableName} (${table.logicalId}) in the local DynamoDB failed: ${response.status} ${await response.text()}`);
  }
}
