/**
 * The floor the functions' cold starts are measured against: the least a function of this service
 * can do, which is to create a DynamoDB document client and send one command (built lazily, on the
 * first invocation, like the functions' own context).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';

let db: DynamoDBDocumentClient | undefined;

export async function handler(event: { pk?: string }) {
  db ??= DynamoDBDocumentClient.from(new DynamoDBClient({}));
  return db.send(new GetCommand({ TableName: process.env.ORDERS_TABLE, Key: { pk: event.pk ?? 'floor' } }));
}
