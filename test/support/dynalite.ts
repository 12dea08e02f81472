import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { useDummyAwsEnvironment } from './aws-environment';
import { registryTableInput } from './registry-table';

/** An in-process DynamoDB holding registry tables shaped like the construct's. */
export interface LocalDynamo {
  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_DYNAMODB. */
  readonly endpoint: string;
  /** The registry table created at start. */
  readonly tableName: string;
  /** A client for the fixture's own reads and writes. */
  readonly client: DynamoDBClient;
  /** Creates another registry table, e.g. so a test starts from an empty registry. */
  createRegistryTable(tableName: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts dynalite on a free port and creates the registry table (call useDummyAwsEnvironment first). */
export async function startDynalite(tableName = 'connections'): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({ endpoint });

  const createRegistryTable = async (name: string): Promise<string> => {
    await client.send(new CreateTableCommand(registryTableInput(name)));
    return name;
  };
  await createRegistryTable(tableName);

  return {
    endpoint,
    tableName,
    client,
    createRegistryTable,
    close: async () => {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/**
 * Starts dynalite for the calling test file (beforeAll) with dummy AWS credentials, points the SDK's
 * DynamoDB endpoint at it, and closes it afterwards (afterAll). The returned object is filled in
 * when beforeAll has run, so tests use it as they would `startDynalite()`'s answer.
 */
export function useLocalDynamo(tableName?: string): LocalDynamo {
  const dynamo = {} as LocalDynamo;
  beforeAll(async () => {
    useDummyAwsEnvironment();
    Object.assign(dynamo, await startDynalite(tableName));
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo.endpoint;
  });
  afterAll(async () => {
    await dynamo.close();
  });
  return dynamo;
}
