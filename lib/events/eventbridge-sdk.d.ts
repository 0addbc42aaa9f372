// Types of the two SDK modules lib/events/eventbridge-client.ts loads by path: the package's own.
declare module '@aws-sdk/client-eventbridge/dist-es/EventBridgeClient.js' {
  export { EventBridgeClient } from '@aws-sdk/client-eventbridge';
}
declare module '@aws-sdk/client-eventbridge/dist-es/commands/PutEventsCommand.js' {
  export { PutEventsCommand } from '@aws-sdk/client-eventbridge';
}
