import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GuardedUpdate } from '../store/guarded-update';
import { shardPages, type ShardPage } from '../store/sharded-index';
import { StoreError, Table } from '../store/table';
import { OUTBOX_INDEX, OUTBOX_SHARDS, type EventSchema, type OutboxEntry, type OutboxItem } from './outbox';

/** A DynamoDB call of the outbox failed for a reason other than a condition. */
export class OutboxStoreError extends StoreError {
  override readonly name = 'OutboxStoreError';
}

/**
 * The outbox side of a table whose items (orders) hold outboxes, keyed by `pk`: the sparse index of
 * items whose outbox holds events, and the conditional writes that take an outbox for one sweep and
 * remove the events that were delivered. Entries are added only by the transitions themselves
 * (lib/orders/store/order-item.ts). `schema` tells the sweep and the confirmation what the items and
 * their events are.
 */
export class OutboxStore<Item extends OutboxItem> {
  readonly #table: Table;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware. */
    readonly db: DynamoDBDocumentClient,
    table: string,
    readonly schema: EventSchema<Item>,
  ) {
    this.#table = new Table(db, table, OutboxStoreError);
  }

  /** The items whose outbox is due at `now` (outboxDue <= now), shard by shard (pages of `pageSize`), the longest waiting first in each. */
  due(now: number, pageSize: number): AsyncGenerator<ShardPage<Item>> {
    const query = { index: OUTBOX_INDEX, shards: OUTBOX_SHARDS, partition: { attribute: 'outboxShard', valueIn: String }, atMost: { attribute: 'outboxDue', value: now }, pageSize };
    return shardPages(this.#table, query, (item) => item as Item);
  }

  /**
   * Moves an item's outbox to its next due time, only if it is still due at `seen`: of two sweeps
   * that read the same item, only one takes it, and a sweep that dies leaves it due again at `next`.
   */
  reschedule(key: string, seen: number, next: number): Promise<boolean> {
    return new GuardedUpdate(this.#table, { pk: key })
      .when('dueAsSeen', 'outboxDue = :seen', { ':seen': seen })
      .set('outboxDue = :next', { ':next': next })
      .applied();
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
        const item = await this.#table.get({ pk: key }, 'outbox, outboxShard');
        if (!item) return 0;
        outbox = (item.outbox ?? []) as OutboxEntry[];
        // Nothing of ours left, and out of the index already: nothing to write.
        if (!outbox.some((entry) => wanted.has(entry.eventId)) && (outbox.length > 0 || item.outboxShard === undefined)) return 0;
      }
      const seen = outbox;
      const positions = seen.flatMap((entry, i) => (wanted.has(entry.eventId) ? [i] : []));
      const emptied = positions.length === seen.length;
      if (positions.length === 0 && !emptied) return 0;
      // Highest first: DynamoDB removes list elements by their places before the write, dynalite one
      // after another (its places shift), and from the end both remove the same elements.
      const update = new GuardedUpdate(this.#table, { pk: key }).remove(...positions.map((i) => `outbox[${i}]`).reverse());
      if (emptied) update.remove('outboxShard', 'outboxDue');
      if (seen.length === 0) update.when('outboxAsSeen', 'attribute_not_exists(outbox) OR size(outbox) = :length', { ':length': 0 });
      else update.when('outboxAsSeen', 'size(outbox) = :length', { ':length': seen.length });
      for (const i of positions) update.when(`event${i}AsSeen`, `outbox[${i}].eventId = :id${i}`, { [`:id${i}`]: seen[i]!.eventId });
      if (await update.applied()) return positions.length;
      // The outbox is not as we thought (a guess, a new event, another removal): read it and retry.
      outbox = undefined;
    }
    throw new OutboxStoreError(`the outbox of ${this.schema.keyName} ${key} kept changing`, undefined);
  }
}
