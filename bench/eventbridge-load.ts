/**
 * The EventBridge client as the functions load it: after the DynamoDB client (whose shared SDK code
 * is then already loaded), on the first publish. bench/events.ts times `loadClient()` in fresh
 * processes: what the first publish of a container adds, once.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { loadEventBridge } from '../lib/events/eventbridge-client';

export const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'ap-southeast-1' }));

export async function loadClient(): Promise<unknown> {
  const { EventBridgeClient, PutEventsCommand } = await loadEventBridge();
  return [new EventBridgeClient({ region: 'ap-southeast-1' }), PutEventsCommand];
}
