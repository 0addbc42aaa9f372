import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearDelivered } from '../../../lib/events/clear';
import { OUTBOX_GRACE_MS } from '../../../lib/events/outbox';
import { eventId } from '../../../lib/orders/events';
import { sweepOutbox } from '../../../lib/events/sweep';
import type { OrdersContext } from '../../../lib/orders/context';
import { recoverOrders } from '../../../lib/orders/recovery';
import { callback, create } from '../../support/api';
import { paidCallback } from '../../support/callbacks';
import { deliveriesById, eventsOf, faultPutEvents } from '../../support/events';
import type { TestStack } from '../../support/stack';
import { sleep } from '../../support/eventually';
import { useTestStack } from '../../support/use-stack';
import { inParallel, scanTable } from '../../reliability/support';

/**
 * The outbox sweep (run by the recovery schedule) and the confirmation (clearOutbox): an event whose
 * publish was not confirmed is published again after the grace period, with the same id, once; the
 * sweep reads the sparse outbox index only.
 */

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

beforeAll(async () => {
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
});
beforeEach(() => {
  stack.confirmEvents(true);
});

const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });
const soon = () => ({ deadline: Date.now() + 20_000 });
let sequence = 0;

/** An order paid by its callback (a transaction id of its own); answers its out_trade_no. */
async function paidOrder(): Promise<string> {
  const created = await create({ tradeType: 'NATIVE', totalFee: 700, description: 'sweep' });
  expect(created.status, created.raw).toBe(201);
  const id = created.body.outTradeNo as string;
  sequence += 1;
  const reply = await callback(paidCallback(id, 700, { transaction_id: `42000000002026112300${String(sequence).padStart(8, '0')}` }));
  expect(reply.returnCode).toBe('SUCCESS');
  return id;
}

async function stored(id: string) {
  await stack.events.settled();
  const order = await ctx.store.get(id);
  return { outbox: (order?.outbox ?? []).map((entry) => entry.detailType), inIndex: order?.outboxShard !== undefined };
}

describe('the sweep', () => {
  it('leaves an unpublished event alone during the grace period, then publishes it once, with its id, and the order leaves the index', async () => {
    const fault = await faultPutEvents(ctx, 'error');
    const id = await paidOrder();
    fault.stop();
    expect(eventsOf(stack, id)).toEqual([]);
    expect(await stored(id)).toEqual({ outbox: ['Order Paid'], inIndex: true });

    expect((await sweepOutbox(later(OUTBOX_GRACE_MS - 5_000), soon())).republished).toBe(0);
    expect(eventsOf(stack, id)).toEqual([]);

    const summary = await sweepOutbox(later(OUTBOX_GRACE_MS + 1_000), soon());
    expect(summary).toMatchObject({ republished: 1, failed: 0, errors: 0 });
    const events = eventsOf(stack, id);
    expect(events).toHaveLength(1);
    expect(events[0]!.detail.eventId).toBe(eventId(id, 'Order Paid', (await ctx.store.get(id))!.transactionId));
    expect(await stored(id)).toEqual({ outbox: [], inIndex: false });

    expect((await sweepOutbox(later(3 * OUTBOX_GRACE_MS), soon())).orders).toBe(0);
    expect(eventsOf(stack, id)).toHaveLength(1);
  });

  it('publishes again an event whose confirmation never came: a second delivery with the same id, then nothing more', async () => {
    stack.confirmEvents(false);
    const id = await paidOrder();
    expect(eventsOf(stack, id)).toHaveLength(1);
    expect(await stored(id)).toEqual({ outbox: ['Order Paid'], inIndex: true });
    await sweepOutbox(later(OUTBOX_GRACE_MS + 1_000), soon());
    await sweepOutbox(later(3 * OUTBOX_GRACE_MS), soon());
    expect([...deliveriesById(eventsOf(stack, id)).values()]).toEqual([2]);
    expect(await stored(id)).toEqual({ outbox: [], inIndex: false });
  });

  it('runs with every recovery run', async () => {
    const fault = await faultPutEvents(ctx, 'refused');
    const id = await paidOrder();
    fault.stop();
    const summary = await recoverOrders(later(OUTBOX_GRACE_MS + 1_000), soon());
    expect(summary.events).toMatchObject({ republished: 1 });
    expect(eventsOf(stack, id)).toHaveLength(1);
  });

  it('publishes only the events past their grace period, and comes back for the others on a later run', async () => {
    stack.confirmEvents(false);
    const id = await paidOrder();
    // Published and unconfirmed; then, a little later, a second payment flagged for review.
    await sleep(50);
    const order = (await ctx.store.get(id))!;
    await ctx.store.addReviewFlag(order, { reason: 'SECOND_PAYMENT', at: new Date().toISOString(), source: 'notify', transactionId: '4200000000202611239999990001', totalFee: 700 });
    expect(await stored(id)).toEqual({ outbox: ['Order Paid', 'Payment Needs Review'], inIndex: true });
    const [paid, review] = (await ctx.store.get(id))!.outbox!;
    const paidDue = Date.parse(paid!.at) + OUTBOX_GRACE_MS;
    const reviewDue = Date.parse(review!.at) + OUTBOX_GRACE_MS;
    expect(reviewDue).toBeGreaterThan(paidDue + 10);
    // Between the two: the paid event is due, the review's is not.
    const between: OrdersContext = { ...ctx, now: () => new Date(paidDue + 5) };
    expect((await sweepOutbox(between, soon())).republished).toBe(1);
    expect(await stored(id)).toEqual({ outbox: ['Payment Needs Review'], inIndex: true });
    // Due again once this sweep's hold on the order ends, past the review's grace period.
    expect((await ctx.store.get(id))!.outboxDue).toBe(paidDue + 5 + OUTBOX_GRACE_MS);
    await sweepOutbox(later(3 * OUTBOX_GRACE_MS), soon());
    expect(await stored(id)).toEqual({ outbox: [], inIndex: false });
    expect([...deliveriesById(eventsOf(stack, id)).values()]).toEqual([2, 2]);
  });

  it('two sweeps at once publish each event once (the first to move an order takes it)', async () => {
    const fault = await faultPutEvents(ctx, 'error', 5);
    const ids = [await paidOrder(), await paidOrder(), await paidOrder(), await paidOrder(), await paidOrder()];
    fault.stop();
    const at = later(OUTBOX_GRACE_MS + 1_000);
    const [a, b] = await Promise.all([sweepOutbox(at, soon()), sweepOutbox(at, soon())]);
    expect(a.republished + b.republished).toBe(5);
    for (const id of ids) expect(eventsOf(stack, id)).toHaveLength(1);
  });

  it('reads only the orders whose outbox holds events, however many orders have none', async () => {
    const sweepAt = Date.now() + OUTBOX_GRACE_MS + 60_000;
    const due = async () => Object.values(await scanTable(stack)).filter((row) => row.outboxShard !== undefined && (row.outboxDue as number) <= sweepAt).length;
    const before = await due();
    await inParallel(Array.from({ length: 40 }, (_, i) => i), 8, () => paidOrder());
    const fault = await faultPutEvents(ctx, 'error', 3);
    await paidOrder();
    await paidOrder();
    await paidOrder();
    fault.stop();
    await stack.events.settled();
    const waiting = await due();
    expect(waiting).toBe(before + 3);
    let itemsRead = 0;
    let queries = 0;
    const name = 'count-sweep-reads';
    ctx.store.db.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'QueryCommand') {
          queries += 1;
          itemsRead += (result.output as { Count?: number }).Count ?? 0;
        }
        return result;
      },
      { step: 'initialize', name },
    );
    try {
      await sweepOutbox({ ...ctx, now: () => new Date(sweepAt) }, soon());
    } finally {
      ctx.store.db.middlewareStack.remove(name);
    }
    expect(queries).toBe(16);
    expect(itemsRead).toBe(waiting);
  });
});

describe('the confirmation (clearOutbox)', () => {
  it('ignores events of another source or without an order and an event id', async () => {
    expect(await clearDelivered({ source: 'aws.partner', detail: { eventId: 'a'.repeat(32), outTradeNo: '20261123abcdef' } }, ctx.outbox)).toBe('ignored');
    expect(await clearDelivered({ source: 'wechatpay.orders', detail: { outTradeNo: '20261123abcdef' } }, ctx.outbox)).toBe('ignored');
    expect(await clearDelivered({ source: 'wechatpay.orders', detail: { eventId: 'not hex', outTradeNo: '20261123abcdef' } }, ctx.outbox)).toBe('ignored');
  });

  it('removes the event it was handed and nothing else, and finds it gone the second time', async () => {
    stack.confirmEvents(false);
    const id = await paidOrder();
    const order = (await ctx.store.get(id))!;
    await ctx.store.addReviewFlag(order, { reason: 'SECOND_PAYMENT', at: new Date().toISOString(), source: 'notify', transactionId: '4200000000202611239999990002', totalFee: 700 });
    const [paid, review] = eventsOf(stack, id);
    // The review's event first: its guess (the outbox's only entry) is wrong, so it reads the outbox.
    expect(await clearDelivered(review!, ctx.outbox)).toBe('cleared');
    expect(await stored(id)).toEqual({ outbox: ['Order Paid'], inIndex: true });
    expect(await clearDelivered(review!, ctx.outbox)).toBe('gone');
    expect(await clearDelivered(paid!, ctx.outbox)).toBe('cleared');
    expect(await stored(id)).toEqual({ outbox: [], inIndex: false });
  });
});
