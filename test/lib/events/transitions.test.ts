import { beforeAll, describe, expect, it } from 'vitest';
import { eventId } from '../../../lib/orders/events';
import type { OrdersContext } from '../../../lib/orders/context';
import { recoverOrders } from '../../../lib/orders/recovery';
import { callback, create, get, order, putProduct } from '../../support/api';
import { pendingOrder } from '../../support/orders';
import { paidCallback } from '../../support/callbacks';
import { countPutEvents, eventsOf } from '../../support/events';
import { sleep } from '../../support/eventually';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';

/**
 * Every transition of an order, made through the real handlers, publishes exactly one event to the
 * stage's bus (the local EventBridge stand-in), with the detail of its order; EventBridge hands it
 * to clearOutbox, which empties the order's outbox.
 */

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

beforeAll(async () => {
  // WeChat Pay's own callbacks are lost: each test delivers the ones it means.
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
  await putProduct('ev-croissant', { name: 'Croissant', priceFen: 1200 });
});

const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });
const soon = () => ({ deadline: Date.now() + 20_000 });

const merchantOrder = () => pendingOrder(500, 'events');

/** The user pays in the emulator; answers the transaction id and the callback WeChat Pay would send. */
async function pay(id: string, fee = 500): Promise<{ transactionId: string; document: string }> {
  expect((await stack.sim.pay(id)).status).toBe(200);
  const sim = await stack.sim.order(id);
  return { transactionId: sim.transaction_id!, document: paidCallback(id, fee, { transaction_id: sim.transaction_id }) };
}

/** Once every delivery to clearOutbox has ended: the order's outbox as stored. */
async function outboxOf(id: string) {
  await stack.events.settled();
  const stored = await ctx.store.get(id);
  return { outbox: stored?.outbox ?? [], inIndex: stored?.outboxShard !== undefined || stored?.outboxDue !== undefined };
}

describe('Order Paid', () => {
  it("a frontend's order paid by its callback: one event with the order's items, app and payer; its outbox emptied by the confirmation", async () => {
    const created = await order({ tradeType: 'JSAPI', openid: 'oEventsTestOpenid_0001', attach: 'table 7', items: [{ sku: 'ev-croissant', quantity: 2 }] });
    expect(created.status, created.raw).toBe(201);
    const id = created.body.outTradeNo as string;
    const { transactionId, document } = await pay(id, 2400);
    expect((await callback(document)).returnCode).toBe('SUCCESS');
    const events = eventsOf(stack, id);
    expect(events).toHaveLength(1);
    const stored = (await ctx.store.get(id))!;
    expect(events[0]).toMatchObject({ 'detail-type': 'Order Paid', source: 'wechatpay.orders' });
    expect(events[0]!.detail).toStrictEqual({
      schemaVersion: 1,
      eventId: eventId(id, 'Order Paid', transactionId),
      outTradeNo: id,
      status: 'PAID',
      totalFee: 2400,
      description: 'Croissant ×2',
      items: [{ sku: 'ev-croissant', name: 'Croissant', quantity: 2, unitPriceFen: 1200 }],
      attach: 'table 7',
      appId: stored.appId,
      openid: 'oEventsTestOpenid_0001',
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      transactionId,
      paidAt: stored.paidAt,
      paidVia: 'notify',
    });
    expect(events[0]!.time).toBe(`${(events[0]!.detail.occurredAt as string).slice(0, 19)}Z`);
    expect(await outboxOf(id)).toEqual({ outbox: [], inIndex: false });
  });

  it('duplicate callbacks, polls and recovery runs publish nothing more', async () => {
    const id = await merchantOrder();
    const { document } = await pay(id);
    const put = await countPutEvents(ctx);
    try {
      await Promise.all(Array.from({ length: 10 }, () => callback(document)));
      for (let i = 0; i < 3; i += 1) expect((await get(id)).body.status).toBe('PAID');
      await recoverOrders(later(10_000), soon());
      await recoverOrders(later(2 * 60_000), soon());
    } finally {
      put.stop();
    }
    expect(eventsOf(stack, id).map((event) => event['detail-type'])).toEqual(['Order Paid']);
    expect(put.counts.entries).toBe(1);
  });

  it('a payment learnt from a poll, or by recovery, publishes the same way (paidVia says which)', async () => {
    const polled = await merchantOrder();
    const recovered = await merchantOrder();
    await pay(polled);
    await pay(recovered);
    expect((await get(polled)).body.status).toBe('PAID');
    await recoverOrders(later(10_000), soon());
    expect(eventsOf(stack, polled).map((event) => [event['detail-type'], event.detail.paidVia])).toEqual([['Order Paid', 'query']]);
    expect(eventsOf(stack, recovered).map((event) => [event['detail-type'], event.detail.paidVia])).toEqual([['Order Paid', 'recovery']]);
  });
});

describe('Order Closed and Order Failed', () => {
  it('an expired order closed by recovery: one Order Closed', async () => {
    const id = await merchantOrder();
    // WeChat Pay closes no order younger than 5 minutes: 300 ms on the emulator's clock.
    await sleep(350);
    await recoverOrders(later(31 * 60_000), soon());
    await recoverOrders(later(33 * 60_000), soon());
    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual(['Order Closed']);
    expect(events[0]!.detail).toMatchObject({ status: 'CLOSED', closeReason: 'expired unpaid; closed with WeChat Pay', items: [], openid: null });
    expect(await outboxOf(id)).toEqual({ outbox: [], inIndex: false });
  });

  it('a unified order WeChat Pay refuses for good: one Order Failed, with its code', async () => {
    const refused = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'refused' }, { sourceIp: 'not-an-ip' });
    expect(refused.status).toBe(502);
    const id = refused.body.error.outTradeNo;
    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual(['Order Failed']);
    expect(events[0]!.detail).toMatchObject({ status: 'FAILED', failureCode: 'PARAM_ERROR' });
  });
});

describe('Payment Needs Review', () => {
  it('an amount mismatch, however often WeChat Pay repeats it: one event, the order still PENDING', async () => {
    const id = await merchantOrder();
    const wrong = paidCallback(id, 1, { transaction_id: '4200000000202611230000000101' });
    for (let i = 0; i < 3; i += 1) expect((await callback(wrong)).returnCode).toBe('FAIL');
    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual(['Payment Needs Review']);
    expect(events[0]!.detail).toMatchObject({ status: 'PENDING', review: { reason: 'AMOUNT_MISMATCH', transactionId: '4200000000202611230000000101', totalFee: 1, source: 'notify' } });
  });

  it('a second payment of a paid order: Order Paid, then one Payment Needs Review', async () => {
    const id = await merchantOrder();
    expect((await callback(paidCallback(id, 500, { transaction_id: '4200000000202611230000000201' }))).returnCode).toBe('SUCCESS');
    const second = paidCallback(id, 500, { transaction_id: '4200000000202611230000000202' });
    expect((await callback(second)).returnCode).toBe('SUCCESS');
    expect((await callback(second)).returnCode).toBe('SUCCESS');
    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual(['Order Paid', 'Payment Needs Review']);
    expect(events[1]!.detail).toMatchObject({ status: 'PAID', review: { reason: 'SECOND_PAYMENT', transactionId: '4200000000202611230000000202' } });
    expect(new Set(events.map((event) => event.detail.eventId)).size).toBe(2);
  });

  it('money for a closed order: the order becomes PAID and is flagged, with Payment Needs Review and no Order Paid', async () => {
    const id = await merchantOrder();
    await sleep(350);
    await recoverOrders(later(31 * 60_000), soon());
    expect((await ctx.store.get(id))?.status).toBe('CLOSED');
    const late = paidCallback(id, 500, { transaction_id: '4200000000202611230000000301' });
    expect((await callback(late)).returnCode).toBe('SUCCESS');
    expect((await callback(late)).returnCode).toBe('SUCCESS');
    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual(['Order Closed', 'Payment Needs Review']);
    expect(events[1]!.detail).toMatchObject({ status: 'PAID', review: { reason: 'PAID_AFTER_CLOSE', transactionId: '4200000000202611230000000301' } });
    expect(await outboxOf(id)).toEqual({ outbox: [], inIndex: false });
  });
});
