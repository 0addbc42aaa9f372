import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../store/dynamo';
import { OUTBOX_INDEX, type EventSchema, type OutboxEntry, type OutboxItem } from './outbox';

/** A DynamoDB call of the outbox failed for a reason other than a condition. */
export class OutboxStoreError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'OutboxStoreError';
  }
}

/**
 * The outbox side of a table whose items (orders) hold outboxes, keyed by `pk`: the sparse index of
 * items whose outbox holds events, and the conditional writes that take an outbox for one sweep and
 * remove the events that were delivered. Entries are added only by the transitions themselves
 * (lib/orders/store.ts). `schema` tells the sweep and the confirmation what the items and their
 * events are.
 */
export class OutboxStore<Item extends OutboxItem> {
  constructor(
    /** Public so that tests and benchmarks can add SDK middleware. */
    readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    readonly schema: EventSchema<Item>,
  ) {}

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isConditionFailure(error)) throw error;
      throw new OutboxStoreError(`DynamoDB ${what} failed`, error);
    }
  }

  /** Items of one shard whose outbox is due (outboxDue <= now), the longest waiting first. */
  async due(shard: number, now: number, limit: number, startKey?: Record<string, unknown>) {
    const result = await this.send('Query', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: OUTBOX_INDEX,
          KeyConditionExpression: 'outboxShard = :shard AND outboxDue <= :now',
          ExpressionAttributeValues: { ':shard': String(shard), ':now': now },
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    return { items: (result.Items ?? []) as Item[], nextKey: result.LastEvaluatedKey };
  }

  /**
   * Moves an item's outbox to its next due time, only if it is still due at `seen`: of two sweeps
   * that read the same item, only one takes it, and a sweep that dies leaves it due again at `next`.
   */
  async reschedule(key: string, seen: number, next: number): Promise<boolean> {
    try {
      await this.send('UpdateItem', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: key },
            UpdateExpression: 'SET outboxDue = :next',
            ConditionExpression: 'outboxDue = :seen',
            ExpressionAttributeValues: { ':next': next, ':seen': seen },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Removes delivered events from an item's outbox, by event id; with its last event the item
   * leaves the outbox index. `known` is the outbox as last read, or a guess: the write holds only if
   * the outbox is still exactly that long and holds these ids where it says, so a guess costs one
   * write when right and a read when wrong. Answers how many events it removed (0: already gone).
   */
  async remove(key: string, eventIds: string[], known?: Array<Pick<OutboxEntry, 'eventId'>>): Promise<number> {
    const wanted = new Set(eventIds);
    let outbox = known;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      if (!outbox) {
        const { Item } = await this.send('GetItem', () =>
          this.db.send(new GetCommand({ TableName: this.table, Key: { pk: key }, ConsistentRead: true, ProjectionExpression: 'outbox, outboxShard' })),
        );
        if (!Item) return 0;
        outbox = (Item.outbox ?? []) as OutboxEntry[];
        // Nothing of ours left, and out of the index already: nothing to write.
        if (!outbox.some((entry) => wanted.has(entry.eventId)) && (outbox.length > 0 || Item.outboxShard === undefined)) return 0;
      }
      const positions = outbox.flatMap((entry, i) => (wanted.has(entry.eventId) ? [i] : []));
      const emptied = positions.length === outbox.length;
      const removals = positions.map((i) => `outbox[${i}]`);
      if (emptied) removals.push('outboxShard', 'outboxDue');
      if (removals.length === 0) return 0;
      const values: Record<string, unknown> = { ':length': outbox.length };
      positions.forEach((i) => (values[`:id${i}`] = outbox![i]!.eventId));
      const condition =
        outbox.length === 0
          ? 'attribute_not_exists(outbox) OR size(outbox) = :length'
          : ['size(outbox) = :length', ...positions.map((i) => `outbox[${i}].eventId = :id${i}`)].join(' AND ');
      try {
        await this.send('UpdateItem', () =>
          this.db.send(
            new UpdateCommand({
              TableName: this.table,
              Key: { pk: key },
              UpdateExpression: `REMOVE ${removals.join(', ')}`,
              ConditionExpression: condition,
              ExpressionAttributeValues: values,
            }),
          ),
        );
        return positions.length;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // The outbox is not as we thought (a guess, a new event, another removal): read it and retry.
        outbox = undefined;
      }
    }
    throw new OutboxStoreError(`the outbox of ${this.schema.keyName} ${key} kept changing`, undefined);
  }
}
