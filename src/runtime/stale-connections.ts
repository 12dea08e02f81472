import { BatchWriteItemCommand, DynamoDBClient, WriteRequest } from '@aws-sdk/client-dynamodb';
import { Registry } from './environment';
import type { StaleConnections } from './fan-out';

/**
 * Deletes the registry rows of connections the @connections API reported gone, 25 to a
 * BatchWriteItem, retrying what DynamoDB leaves unprocessed (with backoff, a few times).
 */
export class DynamoStaleConnections implements StaleConnections {
  constructor(private readonly client: DynamoDBClient, private readonly tableName: string) {}

  async removeAll(connectionIds: readonly string[]): Promise<void> {
    let requests: WriteRequest[] = connectionIds.map((id) => ({ DeleteRequest: { Key: { [Registry.PARTITION_KEY]: { S: id } } } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 4) throw new Error(`${requests.length} stale rows left unprocessed by DynamoDB`);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * 2 ** attempt));
      }
      const answer = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: requests } }));
      requests = answer.UnprocessedItems?.[this.tableName] ?? [];
    }
  }
}
