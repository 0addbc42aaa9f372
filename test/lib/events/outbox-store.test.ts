import { describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../../lib/events/outbox';
import { OutboxStore, OutboxStoreError } from '../../../lib/events/outbox-store';
import type { Order } from '../../../lib/orders/model';
import { ORDER_EVENTS } from '../../../lib/orders/events';
import { useRefusals, useTable } from '../../support/store';

/** The outbox's index and its guarded writes on dynalite. */

const tables = useTable();
const refusals = useRefusals();
const outbox = () => new OutboxStore<Order>(tables.db, tables.table, ORDER_EVENTS);

const entry = (eventId: string): OutboxEntry => ({ eventId, detailType: 'Order Paid', at: '2026-03-01T02:05:00.000Z', facts: {} });

/** An order item whose outbox holds these events, due at `due`. */
async function withOutbox(pk: string, ids: string[], due = 1_000, shard = '3'): Promise<void> {
  await tables.put({ pk, status: 'PAID', outbox: ids.map(entry), outboxShard: shard, outboxDue: due });
}

describe('OutboxStore.due', () => {
  it('walks the items whose outbox is due, every shard', async () => {
    await withOutbox('due-a', ['e1'], 1_000, '0');
    await withOutbox('due-b', ['e2'], 2_000, '15');
    await withOutbox('later', ['e3'], 9_000, '0');
    const seen: string[] = [];
    for await (const page of outbox().due(5_000, 10)) seen.push(...page.items.map((item) => item.outTradeNo ?? String((item as unknown as { pk: string }).pk)));
    expect(seen).toEqual(['due-a', 'due-b']);
  });
});

describe('OutboxStore.reschedule', () => {
  it('takes an outbox for one sweep only while it is due as seen (dueAsSeen)', async () => {
    await withOutbox('a', ['e1'], 1_000);
    expect(await outbox().reschedule('a', 1_000, 61_000)).toBe(true);
    expect(await outbox().reschedule('a', 1_000, 62_000)).toBe(false);
    expect((await tables.item({ pk: 'a' }))?.outboxDue).toBe(61_000);
    expect(refusals()).toEqual([['dueAsSeen']]);
  });
});

describe('OutboxStore.remove', () => {
  it('removes delivered events by id where the outbox as known holds them (outboxAsSeen, event<i>AsSeen)', async () => {
    await withOutbox('a', ['e1', 'e2', 'e3']);
    expect(await outbox().remove('a', ['e2'], [entry('e1'), entry('e2'), entry('e3')])).toBe(1);
    expect((await tables.item({ pk: 'a' }))?.outbox).toEqual([entry('e1'), entry('e3')]);
    expect(refusals()).toEqual([]);
  });

  it('removes several events at once, those and no others', async () => {
    await withOutbox('a', ['e1', 'e2', 'e3', 'e4']);
    expect(await outbox().remove('a', ['e1', 'e3'], [entry('e1'), entry('e2'), entry('e3'), entry('e4')])).toBe(2);
    expect((await tables.item({ pk: 'a' }))?.outbox).toEqual([entry('e2'), entry('e4')]);
  });

  it('reads the outbox again when the guess was wrong, and with its last event the item leaves the index', async () => {
    await withOutbox('a', ['e1', 'e2']);
    // A guess that e2 is alone: refused (the outbox is longer), read, removed where it is.
    expect(await outbox().remove('a', ['e1', 'e2'], [entry('e2')])).toBe(2);
    expect(refusals()).toEqual([['outboxAsSeen', 'event0AsSeen']]);
    const item = await tables.item({ pk: 'a' });
    expect(item?.outbox).toEqual([]);
    expect(item).not.toHaveProperty('outboxShard');
    expect(item).not.toHaveProperty('outboxDue');
  });

  it('removes nothing of an item whose events are gone, or that is gone', async () => {
    await withOutbox('a', ['e9']);
    expect(await outbox().remove('a', ['e1'])).toBe(0);
    expect(await outbox().remove('missing', ['e1'])).toBe(0);
    expect((await tables.item({ pk: 'a' }))?.outbox).toEqual([entry('e9')]);
  });

  it('takes an emptied outbox still in the index out of it', async () => {
    await tables.put({ pk: 'a', status: 'PAID', outbox: [], outboxShard: '1', outboxDue: 5 });
    expect(await outbox().remove('a', ['e1'])).toBe(0);
    expect(await tables.item({ pk: 'a' })).toEqual({ pk: 'a', status: 'PAID', outbox: [] });
  });

  it('gives up with its error when the outbox keeps changing', async () => {
    await withOutbox('a', ['e1']);
    const name = 'outbox-keeps-changing';
    let reads = 0;
    tables.db.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        // Each read answers an outbox that is no longer so by the time the write comes.
        if (context.commandName === 'GetItemCommand') {
          reads += 1;
          (result.output as { Item?: Record<string, unknown> }).Item = { pk: 'a', outbox: [entry('e1'), entry(`new${reads}`)], outboxShard: '3' };
        }
        return result;
      },
      { step: 'initialize', name },
    );
    try {
      await expect(outbox().remove('a', ['e1'])).rejects.toThrow(OutboxStoreError);
      expect(reads).toBe(4);
    } finally {
      tables.db.middlewareStack.remove(name);
    }
  });
});
