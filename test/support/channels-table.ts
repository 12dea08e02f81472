import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { ChannelsTable } from '../../src/runtime/environment';

/** A channels table as the construct deploys it: pk/sk, and the sparse byConnection GSI. */
export function channelsTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: ChannelsTable.PARTITION_KEY, AttributeType: 'S' },
      { AttributeName: ChannelsTable.SORT_KEY, AttributeType: 'S' },
      { AttributeName: ChannelsTable.CONNECTION_ID, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: ChannelsTable.PARTITION_KEY, KeyType: 'HASH' },
      { AttributeName: ChannelsTable.SORT_KEY, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [{
      IndexName: ChannelsTable.CONNECTION_INDEX,
      KeySchema: [{ AttributeName: ChannelsTable.CONNECTION_ID, KeyType: 'HASH' }, { AttributeName: ChannelsTable.PARTITION_KEY, KeyType: 'RANGE' }],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    }],
  };
}
