import { logger } from '../log';
import { countMetric } from '../metrics';
import { walkUntil } from '../store/sharded-index';
import { entryDue, OUTBOX_GRACE_MS, type OutboxEntry, type OutboxItem } from './outbox';
import type { OutboxStore } from './outbox-store';
import type { EventPublisher, PendingEvent } from './publisher';

/**
 * The outbox sweep, run by the recovery schedule: every event still in an outbox a grace period
 * after its transition (its inline publish failed, or the function died before it, or its
 * confirmation never came) is published again, with the same event id, and removed once EventBridge
 * accepted it. It reads only the sparse outbox index, shard by shard: items whose events were
 * delivered are not in it, so its reads grow with the events waiting, never with the table.
 */

export interface SweepContext<Item extends OutboxItem> {
  outbox: OutboxStore<Item>;
  events: EventPublisher<Item>;
  now: () => Date;
}

export interface SweepOptions {
  /** Epoch ms after which no new page is taken up. */
  deadline: number;
  /** Items read per index query page. */
  pageSize?: number;
  /** Items rescheduled or cleared at once. */
  concurrency?: number;
}

export interface SweepSummary {
  /** Due items (orders) read from the index. */
  orders: number;
  /** Events published again and removed from their outbox. */
  republished: number;
  /** Events EventBridge did not accept: they stay, due again after the grace period. */
  failed: number;
  /** Due items another sweep took first. */
  skipped: number;
  /** Storage failures on single items; they are due again later. */
  errors: number;
  stoppedEarly: boolean;
}

async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await task(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Takes an item's due events for this sweep, moving its outbox a grace period on first (the lease):
 * answers them, or nothing when the item holds none due yet or another sweep took it.
 */
async function take<Item extends OutboxItem>(item: Item, now: number, store: OutboxStore<Item>, summary: SweepSummary): Promise<OutboxEntry[]> {
  const outbox = item.outbox ?? [];
  const seen = item.outboxDue as number;
  const key = store.schema.keyOf(item);
  if (outbox.length === 0) {
    // In the index with nothing left to publish: leave it.
    await store.remove(key, [], []);
    return [];
  }
  const due = outbox.filter((entry) => entryDue(entry) <= now);
  if (due.length === 0) {
    // Only events younger than the grace period (their first publish may still be confirmed).
    await store.reschedule(key, seen, Math.min(...outbox.map(entryDue)));
    return [];
  }
  if (!(await store.reschedule(key, seen, now + OUTBOX_GRACE_MS))) {
    summary.skipped += 1;
    return [];
  }
  return due;
}

/** Publishes what the due items of one index page hold, and removes what EventBridge accepted. */
async function sweepPage<Item extends OutboxItem>(items: Item[], ctx: SweepContext<Item>, now: number, concurrency: number, summary: SweepSummary): Promise<void> {
  const { keyName, keyOf } = ctx.outbox.schema;
  const taken: Array<{ item: Item; entries: OutboxEntry[] }> = [];
  await eachLimited(items, concurrency, async (item) => {
    try {
      const entries = await take(item, now, ctx.outbox, summary);
      if (entries.length > 0) taken.push({ item, entries });
    } catch (error) {
      summary.errors += 1;
      logger.warn('the outbox sweep could not take an item; it is due again later', { [keyName]: keyOf(item), error });
    }
  });
  const events: PendingEvent<Item>[] = taken.flatMap(({ item, entries }) => entries.map((entry) => ({ item, entry })));
  if (events.length === 0) return;
  const accepted = await ctx.events.publish(events);
  summary.failed += events.length - accepted.size;
  await eachLimited(taken, concurrency, async ({ item, entries }) => {
    const delivered = entries.filter((entry) => accepted.has(entry.eventId)).map((entry) => entry.eventId);
    if (delivered.length === 0) return;
    summary.republished += delivered.length;
    logger.info('outbox sweep published events again', { [keyName]: keyOf(item), eventIds: delivered });
    try {
      await ctx.outbox.remove(keyOf(item), delivered, item.outbox);
    } catch (error) {
      // Published but still in the outbox: published again later, with the same event id.
      summary.errors += 1;
      logger.warn('the outbox sweep published events it could not remove', { [keyName]: keyOf(item), eventIds: delivered, error });
    }
  });
}

/** Sweeps every shard of the outbox index, until done or the deadline. */
export async function sweepOutbox<Item extends OutboxItem>(ctx: SweepContext<Item>, options: SweepOptions): Promise<SweepSummary> {
  const summary: SweepSummary = { orders: 0, republished: 0, failed: 0, skipped: 0, errors: 0, stoppedEarly: false };
  // Without a bus nothing can be published: the events wait in their outboxes.
  if (!ctx.events.busName) return summary;
  const pageSize = options.pageSize ?? 100;
  const concurrency = options.concurrency ?? 8;
  const now = ctx.now().getTime();
  try {
    summary.stoppedEarly = await walkUntil(ctx.outbox.due(now, pageSize), options.deadline, async (items) => {
      summary.orders += items.length;
      await sweepPage(items, ctx, now, concurrency, summary);
      return false;
    });
    return summary;
  } finally {
    if (summary.republished > 0) countMetric('EventsRepublished', summary.republished);
  }
}
