import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableInput } from '../../dev/local/tables';
import { createOrdersTable, startDynalite } from '../support/dynalite';

describe('orders table created from serverless.yml on dynalite', () => {
  const tableName = 'wechatpay-test-orders';
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let client: DynamoDBClient;

  beforeAll(async () => {
    dynamo = await startDynalite();
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await createOrdersTable(dynamo.endpoint, tableName);
  });

  afterAll(async () => {
    client?.destroy();
    await dynamo?.close();
  });

  it('has the pk hash key and the sparse pendingByShard index', async () => {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    const index = Table?.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === 'pendingByShard');
    expect(index?.KeySchema).toEqual([
      { AttributeName: 'pendingShard', KeyType: 'HASH' },
      { AttributeName: 'nextCheckAt', KeyType: 'RANGE' },
    ]);
    expect(index?.Projection?.ProjectionType).toBe('ALL');
    expect(Table?.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'pendingShard', AttributeType: 'S' },
        { AttributeName: 'nextCheckAt', AttributeType: 'N' },
      ]),
    );
  });

  it('indexes only items that carry the shard attributes', async () => {
    const put = (pk: string, extra: Record<string, { S: string } | { N: string }> = {}) =>
      client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: pk }, ...extra } }));
    await put('pending-1', { pendingShard: { S: '3' }, nextCheckAt: { N: '100' } });
    await put('paid-1');
    const { Items } = await client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: 'pendingByShard',
        KeyConditionExpression: 'pendingShard = :shard AND nextCheckAt <= :now',
        ExpressionAttributeValues: { ':shard': { S: '3' }, ':now': { N: '200' } },
      }),
    );
    expect(Items?.map((item) => item.pk?.S)).toEqual(['pending-1']);
  });

  it('refuses what it cannot carry over rather than create a different table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'orders-table-'));
    let files = 0;
    const withTable = (properties: string) => {
      const file = join(dir, `serverless-${(files += 1)}.yml`);
      writeFileSync(
        file,
        `resources:\n  Resources:\n    Role:\n      Properties:\n        Name: !Sub '\${AWS::StackName}-role'\n` +
          `    OrdersTable:\n      Type: AWS::DynamoDB::Table\n      Properties:\n${properties}`,
      );
      return file;
    };
    try {
      const keyOnly = '        KeySchema: [{ AttributeName: pk, KeyType: HASH }]\n';
      // CloudFormation short forms elsewhere in the file parse; dynalite-only gaps are dropped.
      expect(tableInput('OrdersTable', 't', withTable(`${keyOnly}        DeletionProtectionEnabled: true\n`))).toEqual({
        TableName: 't',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      });
      expect(() =>
        tableInput('OrdersTable', 't', withTable(`${keyOnly}        KinesisStreamSpecification: { StreamArn: arn:aws:kinesis:x }\n`)),
      ).toThrow(/KinesisStreamSpecification is not supported/);
      expect(() => tableInput('OrdersTable', 't', withTable(`${keyOnly}        BillingMode: \${param:billing}\n`))).toThrow(
        /BillingMode is not a literal value/,
      );
      expect(() => tableInput('OrdersTable', 't', withTable(`        KeySchema: !Ref Keys\n`))).toThrow(/KeySchema is not a literal/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
