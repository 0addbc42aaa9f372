import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localEndpointOptions } from '../core/aws';

/**
 * What every store over DynamoDB shares (the orders table's, the outbox's, the catalog's, the token
 * cache's): the document client, and telling a refused condition from a failure.
 */

/** The document client of every store; `endpoint` is a local DynamoDB's (DYNAMODB_ENDPOINT). */
export function createDocumentClient(endpoint?: string): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(localEndpointOptions(endpoint)), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/** Whether a write was refused because its condition did not hold (not a failure). */
export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error instanceof Error && error.name === 'ConditionalCheckFailedException');
}
