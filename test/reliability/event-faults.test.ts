import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTBOX_GRACE_MS } from '../../lib/events/outbox';
import { eventId, type OrderEventType } from '../../lib/orders/events';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { callback, create, get } from '../support/api';
import { pendingOrder } from '../support/orders';
import { paidCallback } from '../support/callbacks';
import { deliveriesById, eventsOf, faultPutEvents, type PutEventsFault } from '../support/events';
import { sleep } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { injectFault, reportFigures, requestPk, scanTable, type FaultKind } from './support';

/**
 * Never lost: whatever fails between a transition's write and its event reaching the bus (PutEvents
 * failing, refused, its answer lost, the function dying while it waits, DynamoDB's answer to the
 * write itself lost), the event arrives after the recovery schedule's sweep, exactly once per event
 * id, and no order is left with anything in its outbox.
 */

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

/** Every transition a test made: the order, its event type and its event id. */
const transitions: Array<{ outTradeNo: string; type: OrderEventType; eventId: string }> = [];
const figures = { scenarios: 0, putEventsFaults: 0, dynamoFaults: 0 };

beforeAll(async () => {
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
});

afterAll(async () => {
  if (!stack) return;
  // The last sweep, for anything still waiting; then every outbox is empty and out of the index.
  await stack.events.settled();
  await recoverOrders(later(10 * OUTBOX_GRACE_MS), soon());
  await stack.events.settled();
  const rows = await scanTable(stack);
  const events = eventsOf(stack);
  const deliveries = deliveriesById(events);
  const lost = transitions.filter((t) => !deliveries.has(t.eventId));
  const duplicated = [...deliveries.values()].filter((count) => count > 1).length;
  const waiting = Object.values(rows).filter((row) => (row.outbox as unknown[] | undefined)?.length || row.outboxShard !== undefined);
  reportFigures('event faults', {
    ...figures,
    transitions: transitions.length,
    eventsDelivered: events.length,
    distinctEventIds: deliveries.size,
    lost: lost.length,
    duplicatedIds: duplicated,
    ordersWithEventsWaiting: waiting.length,
  });
  expect(lost).toEqual([]);
  expect(deliveries.size).toBe(transitions.length);
  expect(waiting).toEqual([]);
});

const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });
const soon = () => ({ deadline: Date.now() + 20_000 });

const newOrder = () => pendingOrder(321, 'event faults');

/** The user pays in the emulator: the signed callback and the transaction id. */
async function pay(id: string): Promise<{ document: string; transactionId: string }> {
  expect((await stack.sim.pay(id)).status).toBe(200);
  const sim = await stack.sim.order(id);
  return { document: paidCallback(id, 321, { transaction_id: sim.transaction_id }), transactionId: sim.transaction_id! };
}

/** After the sweep: the transition's event was delivered, under its own id, once (twice at most when its answer was lost). */
async function expectDeliveredOnce(outTradeNo: string, type: OrderEventType, key = '') {
  const id = eventId(outTradeNo, type, key);
  transitions.push({ outTradeNo, type, eventId: id });
  figures.scenarios += 1;
  await stack.events.settled();
  await recoverOrders(later(OUTBOX_GRACE_MS + 1_000), soon());
  await stack.events.settled();
  const events = eventsOf(stack, outTradeNo);
  expect(events.map((event) => event['detail-type'])).toEqual([type]);
  expect(events[0]!.detail.eventId).toBe(id);
  // A later sweep adds nothing.
  await recoverOrders(later(3 * OUTBOX_GRACE_MS), soon());
  expect(eventsOf(stack, outTradeNo)).toHaveLength(1);
  const stored = await ctx.store.get(outTradeNo);
  expect(stored?.outbox ?? []).toEqual([]);
  expect(stored).not.toHaveProperty('outboxShard');
}

const KINDS: PutEventsFault[] = ['error', 'refused', 'lost answer', 'hang'];

describe('PutEvents fails after the transition was written', () => {
  for (const kind of KINDS) {
    it(`${kind}, on the first callback: answered SUCCESS, and Order Paid arrives once`, async () => {
      const id = await newOrder();
      const { document, transactionId } = await pay(id);
      const fault = await faultPutEvents(ctx, kind);
      figures.putEventsFaults += 1;
      const reply = callback(document);
      if (kind === 'hang') {
        // The function dies waiting: its answer never goes out, the payment is written.
        await sleep(50);
        expect((await ctx.store.get(id))?.status).toBe('PAID');
        await expectDeliveredOnce(id, 'Order Paid', transactionId);
        fault.release();
        // Whatever the dead function would have said, WeChat Pay's retry is acknowledged and publishes nothing.
        await reply;
        expect((await callback(document)).returnCode).toBe('SUCCESS');
      } else {
        expect((await reply).returnCode).toBe('SUCCESS');
        await expectDeliveredOnce(id, 'Order Paid', transactionId);
      }
      fault.stop();
      expect(eventsOf(stack, id)).toHaveLength(1);
    });

    it(`${kind}, on a client's poll that learns of the payment: Order Paid arrives once`, async () => {
      const id = await newOrder();
      const { transactionId } = await pay(id);
      const fault = await faultPutEvents(ctx, kind);
      figures.putEventsFaults += 1;
      const answer = get(id);
      if (kind === 'hang') {
        await sleep(50);
        await expectDeliveredOnce(id, 'Order Paid', transactionId);
        fault.release();
        await answer;
      } else {
        expect((await answer).body.status).toBe('PAID');
        await expectDeliveredOnce(id, 'Order Paid', transactionId);
      }
      fault.stop();
    });

    it(`${kind}, on recovery closing an expired order: Order Closed arrives once`, async () => {
      const id = await newOrder();
      // WeChat Pay closes no order younger than 5 minutes: 300 ms on the emulator's clock.
      await sleep(350);
      const fault = await faultPutEvents(ctx, kind);
      figures.putEventsFaults += 1;
      const run = recoverOrders(later(31 * 60_000), soon());
      if (kind === 'hang') {
        await sleep(100);
        expect((await ctx.store.get(id))?.status).toBe('CLOSED');
        await expectDeliveredOnce(id, 'Order Closed');
        fault.release();
        await run;
      } else {
        await run;
        expect((await ctx.store.get(id))?.status).toBe('CLOSED');
        await expectDeliveredOnce(id, 'Order Closed');
      }
      fault.stop();
    });
  }

  it('a unified order refused for good while PutEvents fails: Order Failed arrives once', async () => {
    const fault = await faultPutEvents(ctx, 'error');
    figures.putEventsFaults += 1;
    const refused = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'refused' }, { sourceIp: 'not-an-ip' });
    fault.stop();
    expect(refused.status).toBe(502);
    await expectDeliveredOnce(refused.body.error.outTradeNo, 'Order Failed');
  });
});

describe('a crash between the write and the publish', () => {
  /** Lets the order's payment be written, then fails its answer with `kind`: the writer never learns it was written. */
  const failAfterPaymentWrite = (id: string, kind: FaultKind) => {
    figures.dynamoFaults += 1;
    return injectFault(ctx.store.db, {
      kind,
      timing: 'after',
      nth: 1,
      matches: (action, input) =>
        action === 'UpdateItem' && requestPk(input) === id && /#status = :paid/.test(input.UpdateExpression ?? ''),
    });
  };

  it("DynamoDB applies the payment but its answer is lost: the callback answers FAIL, WeChat Pay's retry finds it done, and Order Paid arrives once", async () => {
    const id = await newOrder();
    const { document, transactionId } = await pay(id);
    const fault = failAfterPaymentWrite(id, 'InternalServerError');
    expect((await callback(document)).returnCode).toBe('FAIL');
    fault.stop();
    expect(fault.state.fired).toBe(true);
    // Written, never published: the function that wrote it did not learn it had.
    expect(eventsOf(stack, id)).toEqual([]);
    expect((await callback(document)).returnCode).toBe('SUCCESS');
    expect(eventsOf(stack, id)).toEqual([]);
    await expectDeliveredOnce(id, 'Order Paid', transactionId);
  });

  it('the same, when recovery learns of the payment: the next run finds it paid, and Order Paid arrives once', async () => {
    const id = await newOrder();
    const { transactionId } = await pay(id);
    const fault = failAfterPaymentWrite(id, 'ThrottlingException');
    await recoverOrders(later(10_000), soon());
    fault.stop();
    expect(fault.state.fired).toBe(true);
    expect((await ctx.store.get(id))?.status).toBe('PAID');
    expect(eventsOf(stack, id)).toEqual([]);
    await expectDeliveredOnce(id, 'Order Paid', transactionId);
  });

  it('the sweep itself fails to publish: the event waits for the next run, and arrives once', async () => {
    const id = await newOrder();
    const { document, transactionId } = await pay(id);
    const fault = await faultPutEvents(ctx, 'error', 2);
    figures.putEventsFaults += 2;
    expect((await callback(document)).returnCode).toBe('SUCCESS');
    const first = await recoverOrders(later(OUTBOX_GRACE_MS + 1_000), soon());
    fault.stop();
    expect(first.events).toMatchObject({ failed: 1, republished: 0 });
    expect(eventsOf(stack, id)).toEqual([]);
    // The failed sweep moved the order a grace period on.
    transitions.push({ outTradeNo: id, type: 'Order Paid', eventId: eventId(id, 'Order Paid', transactionId) });
    figures.scenarios += 1;
    await recoverOrders(later(2 * OUTBOX_GRACE_MS + 2_000), soon());
    expect(eventsOf(stack, id).map((event) => event.detail.eventId)).toEqual([eventId(id, 'Order Paid', transactionId)]);
  });
});
