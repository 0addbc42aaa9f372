import { randomInt } from 'node:crypto';

/**
 * The transactional outbox (docs/internals/architecture.md: The outbox). Every transition of an item (an order) writes its
 * events into the item's `outbox` in the same conditional write as the transition itself, so no
 * transition is ever recorded without its events. Once the write succeeded, the events are published
 * to EventBridge (publisher.ts); EventBridge hands each back to the clearOutbox function, which
 * removes it from the outbox (clear.ts); whatever is still in an outbox a minute later is published
 * again by the recovery schedule's sweep (sweep.ts). This file is the data: the outbox entries, the
 * sparse index of items with events waiting, the update that adds entries, and what the machinery is
 * told of the items and their events (`EventSchema`). No AWS here, and nothing of orders: their events
 * are lib/orders/events.ts.
 */

/**
 * How long an entry is left to its inline publish and its confirmation before the sweep publishes
 * it again. Confirmation normally comes within a second; the sweep runs every minute.
 */
export const OUTBOX_GRACE_MS = 60_000;
/** Items with unpublished events are spread over this many index partitions, as pending orders are. */
export const OUTBOX_SHARDS = 16;
/** The sparse index of items whose outbox holds events (only they carry outboxShard/outboxDue). */
export const OUTBOX_INDEX = 'outboxByShard';

/** One unpublished event, as its item stores it in its `outbox` list. */
export interface OutboxEntry<DetailType extends string = string> {
  /** 32 hex digits, the same for every publish of one transition. */
  eventId: string;
  detailType: DetailType;
  /** When the transition was written (ISO 8601): the event's `time`. */
  at: string;
  /** The transition's own fields of `detail`, `status` among them. */
  facts: Record<string, unknown>;
}

/** An item that holds an outbox, as the outbox index answers it. */
export interface OutboxItem {
  outbox?: OutboxEntry[];
  /** Present only while the outbox holds events (the outbox index is sparse). */
  outboxShard?: string;
  outboxDue?: number;
}

/**
 * What the outbox machinery is told of one kind of item and its events (lib/orders/events.ts for
 * orders): all it knows besides outbox entries.
 */
export interface EventSchema<Item extends OutboxItem> {
  /** `source` of every event published; a delivered event of another source is none of ours. */
  source: string;
  /** What the item's key is called in its events' `detail` and in logs. */
  keyName: string;
  /** The item's key in its table (`pk`). */
  keyOf(item: Item): string;
  /** Whether a key read from a delivered event's `detail` is one an item may have. */
  isKey(key: string): boolean;
  /** The `detail` of an entry's event. */
  detail(item: Item, entry: OutboxEntry): object;
}

/**
 * The part of an UpdateExpression that appends entries to an item's outbox and puts the item in the
 * sparse outbox index (a random shard, due once the grace period is over), to be ANDed into the SET
 * clause of the transition's own conditional write. Works on items stored before the outbox
 * existed: the list is created when missing.
 */
export function outboxUpdate(entries: OutboxEntry[]): { set: string; values: Record<string, unknown> } {
  const due = Math.min(...entries.map((entry) => Date.parse(entry.at))) + OUTBOX_GRACE_MS;
  return {
    set:
      'outbox = list_append(if_not_exists(outbox, :outboxNone), :outboxNew), ' +
      'outboxShard = if_not_exists(outboxShard, :outboxShard), outboxDue = if_not_exists(outboxDue, :outboxDue)',
    values: { ':outboxNone': [], ':outboxNew': entries, ':outboxShard': String(randomInt(OUTBOX_SHARDS)), ':outboxDue': due },
  };
}

/** When an entry is left to the sweep (epoch ms). */
export function entryDue(entry: OutboxEntry): number {
  return Date.parse(entry.at) + OUTBOX_GRACE_MS;
}
