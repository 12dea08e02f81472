import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { Registry } from '../../src/runtime/environment';

/**
 * A registry table as the construct deploys it: connectionId key, and the byUser GSI projecting what
 * readers need. Used by the tests' dynalite and by the fan-out benchmark.
 */
export function registryTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: Registry.PARTITION_KEY, AttributeType: 'S' },
      { AttributeName: Registry.USER_ID, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: Registry.PARTITION_KEY, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [{
      IndexName: Registry.USER_INDEX,
      KeySchema: [{ AttributeName: Registry.USER_ID, KeyType: 'HASH' }],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [Registry.TTL, Registry.EXPIRES_AT] },
    }],
  };
}
