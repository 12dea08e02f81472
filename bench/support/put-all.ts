import { BatchWriteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Writes `items` into `tableName` (dynalite, for the benchmarks' recipients): batches of 25, eight
 * in flight, each retried until DynamoDB has processed every item.
 */
export async function putAll(client: DynamoDBClient, tableName: string, items: ReadonlyArray<Record<string, any>>): Promise<void> {
  const batches: Array<Array<{ PutRequest: { Item: Record<string, any> } }>> = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })));
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < batches.length) {
      let batch = batches[next++];
      for (let attempt = 0; batch.length > 0; attempt++) {
        if (attempt > 10) throw new Error('dynalite left items unprocessed');
        const answer = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: batch } }));
        batch = (answer.UnprocessedItems?.[tableName] ?? []) as typeof batch;
      }
    }
  }));
}
