import type { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';

/**
 * The EventBridge client and the one command the product sends, loaded on the first publish (never
 * when a function starts) and from their own modules of the SDK's ES build rather than its index:
 * the index brings every command and the aggregated client along, over twice the code (bench:
 * `npm run bench`). The SDK version is pinned exactly; should a new version move these files, the
 * bundling and the tests fail rather than the functions.
 */
export async function loadEventBridge(): Promise<{ EventBridgeClient: typeof EventBridgeClient; PutEventsCommand: typeof PutEventsCommand }> {
  const [client, command] = await Promise.all([
    import('@aws-sdk/client-eventbridge/dist-es/EventBridgeClient.js'),
    import('@aws-sdk/client-eventbridge/dist-es/commands/PutEventsCommand.js'),
  ]);
  return { EventBridgeClient: client.EventBridgeClient, PutEventsCommand: command.PutEventsCommand };
}
