/**
 * The floor the functions are measured against: the least a function of this service can do, which
 * is to create a DynamoDB document client and send one UpdateItem (as a first payment callback
 * does), the client built lazily on the first invocation like the functions' own context.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';

let db: DynamoDBDocumentClient | undefined;

export async function handler(event: { pk?: string }) {
  db ??= DynamoDBDocumentClient.from(new DynamoDBClient({}));
  return db.send(
    new UpdateCommand({
      TableName: process.env.ORDERS_TABLE,
      Key: { pk: event.pk ?? 'floor' },
      UpdateExpression: 'SET touchedAt = :now',
      ExpressionAttributeValues: { ':now': Date.now() },
    }),
  );
}
