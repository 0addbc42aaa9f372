// A sample consumer of the payment backend's events: fulfils each paid order once.
//
// EventBridge delivers at least once, and the backend publishes an event again when it cannot tell
// it was delivered: the same transition always carries the same detail.eventId. So the first thing
// done with an event is to claim its eventId in this function's own table, with a conditional put.
// A claim is held for a while (LEASE_SECONDS, longer than the function's timeout): if the function
// dies mid-way, a later delivery takes the claim over once it has run out. The claim becomes DONE
// once the order is fulfilled; a failure releases it, so EventBridge's retry starts afresh.
//
// No dependencies: the Lambda Node.js runtime provides the AWS SDK's DynamoDB client.
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';

const LEASE_SECONDS = 120;
/** How long a processed event id is remembered (the table's TTL): well past EventBridge's 24 h of retries. */
const KEEP_SECONDS = 30 * 24 * 60 * 60;

/** Replace with the merchant's own work: ship the goods, grant the membership, send the receipt. */
async function fulfilOrder(detail) {
  console.log(JSON.stringify({ message: 'fulfil order', outTradeNo: detail.outTradeNo, totalFee: detail.totalFee, items: detail.items }));
}

const isConditionFailure = (error) => error?.name === 'ConditionalCheckFailedException';

/**
 * Handles one event. `options` lets tests (and other callers) pass their own client, table, clock
 * and work. Answers what happened: 'fulfilled' or 'duplicate'; throws, for EventBridge to deliver
 * again, when the work failed or another delivery of the same event is still at it.
 */
export async function fulfil(event, options = {}) {
  const db = options.db ?? (fulfil.db ??= new DynamoDBClient({}));
  const table = options.table ?? process.env.PROCESSED_EVENTS_TABLE;
  const work = options.work ?? fulfilOrder;
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const { eventId, outTradeNo } = event.detail ?? {};
  if (typeof eventId !== 'string' || eventId === '') throw new Error('an event without detail.eventId');
  const key = { eventId: { S: eventId } };
  try {
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          ...key,
          outTradeNo: { S: String(outTradeNo) },
          detailType: { S: String(event['detail-type']) },
          status: { S: 'IN_PROGRESS' },
          leaseUntil: { N: String(now + LEASE_SECONDS) },
          expiresAt: { N: String(now + KEEP_SECONDS) },
        },
        // New, or claimed by a delivery whose lease ran out (it died mid-way).
        ConditionExpression: 'attribute_not_exists(eventId) OR (#status = :inProgress AND leaseUntil < :now)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':inProgress': { S: 'IN_PROGRESS' }, ':now': { N: String(now) } },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    const { Item } = await db.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
    if (Item?.status?.S === 'DONE') return 'duplicate';
    // Another delivery of this event is at it right now: let EventBridge try again later.
    throw new Error(`event ${eventId} is being processed by another delivery; retry later`);
  }
  try {
    await work(event.detail);
  } catch (error) {
    await db.send(new DeleteItemCommand({ TableName: table, Key: key }));
    throw error;
  }
  await db.send(
    new UpdateItemCommand({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET #status = :done REMOVE leaseUntil',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':done': { S: 'DONE' } },
    }),
  );
  return 'fulfilled';
}

export const handler = (event) => fulfil(event);
