/**
 * A refund recorded FAILED (WeChat Pay refused it "for good", its amount given back) that WeChat Pay
 * then reports as SUCCESS: the money did go back. Through the real handlers on dynalite and the
 * emulator: the refund is recorded SUCCESS, its amount held and refunded again (even past the
 * order's amount), the order flagged for review, each transition published once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { eventId } from '../../lib/orders/events';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import { callback, create, getMerchantOrder, getRefund, refund, refundCallback } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { deliveriesById, eventsOf } from '../support/events';
import { sleep } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { refunds: true });

const { appId, mchId, apiKey } = TEST_MERCHANT;

/** A paid order of 100 fen, its callback delivered. */
async function paidOrder(): Promise<{ id: string; transactionId: string }> {
  const created = await create({ tradeType: 'NATIVE', totalFee: 100, description: 'refund after failure' });
  expect(created.status, created.raw).toBe(201);
  const id = created.body.outTradeNo as string;
  await stack.sim.pay(id);
  const transactionId = (await stack.sim.order(id)).transaction_id as string;
  expect((await callback(paidCallback(id, 100, { transaction_id: transactionId }))).returnCode).toBe('SUCCESS');
  return { id, transactionId };
}

/**
 * A refund of 50 fen that WeChat Pay (the emulator) refuses for good: 80 fen of the order were
 * refunded in the merchant platform first, their callback not (yet) here, so 50 more are NOTENOUGH.
 */
async function refusedRefund(id: string): Promise<string> {
  const platform = await fetch(`${stack.emulator.url}/__sim/refund`, {
    method: 'POST',
    body: JSON.stringify({ out_trade_no: id, refund_fee: 80, out_refund_no: `P${id}` }),
  });
  expect(platform.status).toBe(200);
  // Refunds of one order are a scaled minute apart at the emulator.
  await sleep(70);
  const answer = await refund(id, { refundFee: 50, idempotencyKey: randomUUID() });
  expect(answer.body).toMatchObject({ status: 'FAILED', code: 'NOTENOUGH' });
  const stored = await ctx.store.get(id);
  expect(stored).toMatchObject({ refundHeldFee: 0, refundCount: 0, openRefunds: 0 });
  return answer.body.outRefundNo as string;
}

/** WeChat Pay's SUCCESS refund callback for a refund of `id`, encrypted with the merchant's key. */
function successCallback(id: string, transactionId: string, outRefundNo: string, refundFee: number, refundId: string): string {
  return encryptedRefundNotification({
    apiKey,
    appid: appId,
    mch_id: mchId,
    fields: {
      transaction_id: transactionId,
      out_trade_no: id,
      out_refund_no: outRefundNo,
      refund_id: refundId,
      total_fee: '100',
      refund_fee: String(refundFee),
      refund_status: 'SUCCESS',
    },
  });
}

/** The order as stored once every event delivery has been confirmed (its outbox emptied). */
async function settledOrder(id: string) {
  await stack.events.settled();
  return ctx.store.get(id);
}

describe('a refund recorded FAILED that WeChat Pay reports SUCCESS', () => {
  it('by its genuine callback: recorded SUCCESS, its amount held and refunded again, flagged; one event per transition; the callback again changes nothing', async () => {
    const { id, transactionId } = await paidOrder();
    const outRefundNo = await refusedRefund(id);
    const refundId = `503${'7'.repeat(26)}`;

    const reply = await refundCallback(successCallback(id, transactionId, outRefundNo, 50, refundId));
    expect(reply.returnCode, reply.raw).toBe('SUCCESS');
    const stored = await settledOrder(id);
    expect(stored).toMatchObject({ status: 'PAID', refundedFee: 50, refundHeldFee: 50, refundCount: 1, openRefunds: 0 });
    expect(stored?.refundShard).toBeUndefined();
    expect(stored?.refunds?.[outRefundNo]).toMatchObject({ status: 'SUCCESS', refundFee: 50, refundId, origin: 'api' });
    expect(stored?.refunds?.[outRefundNo]).not.toHaveProperty('failureCode');
    expect(stored?.review).toEqual({
      [`refund:${outRefundNo}`]: expect.objectContaining({
        reason: 'REFUND_SUCCEEDED_AFTER_FAILURE',
        source: 'refund-notify',
        transactionId,
        outRefundNo,
        refundFee: 50,
        failureCode: 'NOTENOUGH',
        totalFee: 100,
      }),
    });
    expect((await getRefund(id, outRefundNo)).body).toMatchObject({ status: 'SUCCESS', refundId, succeededAt: expect.any(String) });
    expect((await getRefund(id, outRefundNo)).body).not.toHaveProperty('code');
    const view = (await getMerchantOrder(id)).body;
    expect(view).toMatchObject({ status: 'PAID', refundedFee: 50 });
    expect(view.review).toEqual([expect.objectContaining({ reason: 'REFUND_SUCCEEDED_AFTER_FAILURE', outRefundNo })]);

    const events = eventsOf(stack, id);
    expect(events.map((event) => event['detail-type'])).toEqual([
      'Order Paid',
      'Refund Failed',
      'Refund Succeeded',
      'Payment Needs Review',
    ]);
    expect([...deliveriesById(events)]).toEqual([
      [eventId(id, 'Order Paid', transactionId), 1],
      [eventId(id, 'Refund Failed', outRefundNo), 1],
      [eventId(id, 'Refund Succeeded', outRefundNo), 1],
      [eventId(id, 'Payment Needs Review', `${transactionId}:REFUND_SUCCEEDED_AFTER_FAILURE:${outRefundNo}`), 1],
    ]);
    expect(events[2]!.detail).toMatchObject({ status: 'PAID', refund: { outRefundNo, refundFee: 50, status: 'SUCCESS', refundId } });
    expect(events[2]!.detail.refund).not.toHaveProperty('code');
    expect(events[3]!.detail).toMatchObject({
      status: 'PAID',
      review: { reason: 'REFUND_SUCCEEDED_AFTER_FAILURE', outRefundNo, failureCode: 'NOTENOUGH' },
    });

    // WeChat Pay repeats its callback: acknowledged, nothing written, nothing published.
    const again = await refundCallback(successCallback(id, transactionId, outRefundNo, 50, refundId));
    expect(again.returnCode).toBe('SUCCESS');
    expect(await settledOrder(id)).toEqual(stored);
    expect(eventsOf(stack, id)).toHaveLength(4);
    // The same request of the merchant answers the refund as it now stands.
    expect((await getRefund(id, outRefundNo)).body.status).toBe('SUCCESS');
  });

  it("when the order's other refunds took its amount back: recorded all the same, past the order's amount, the order REFUNDED, flagged", async () => {
    const { id, transactionId } = await paidOrder();
    const outRefundNo = await refusedRefund(id);
    // The platform's refund of 80 reaches us now, by its own callback: recorded, 80 of 100 held.
    const platformRefund = (await stack.sim.order(id)).refunds.find((candidate) => candidate.out_refund_no === `P${id}`)!;
    expect((await refundCallback(successCallback(id, transactionId, `P${id}`, 80, platformRefund.refund_id))).returnCode).toBe('SUCCESS');
    expect(await ctx.store.get(id)).toMatchObject({ status: 'PAID', refundedFee: 80, refundHeldFee: 80 });

    const refundId = `503${'8'.repeat(26)}`;
    expect((await refundCallback(successCallback(id, transactionId, outRefundNo, 50, refundId))).returnCode).toBe('SUCCESS');
    const stored = await settledOrder(id);
    expect(stored).toMatchObject({
      status: 'REFUNDED',
      refundedFee: 130,
      refundHeldFee: 130,
      refundCount: 2,
      refundedAt: expect.any(String),
    });
    expect(stored?.refunds?.[outRefundNo]).toMatchObject({ status: 'SUCCESS', refundFee: 50 });
    expect(
      Object.values(stored?.review ?? {})
        .map((flag) => flag.reason)
        .sort(),
    ).toEqual(['REFUND_NOT_REQUESTED', 'REFUND_SUCCEEDED_AFTER_FAILURE']);

    const events = eventsOf(stack, id);
    const types = events.map((event) => event['detail-type']);
    expect(types.slice(-3)).toEqual(['Refund Succeeded', 'Order Refunded', 'Payment Needs Review']);
    expect(events.at(-2)!.detail).toMatchObject({ eventId: eventId(id, 'Order Refunded'), status: 'REFUNDED', refundedFee: 130 });
    expect(events.at(-1)!.detail).toMatchObject({ status: 'REFUNDED', review: { reason: 'REFUND_SUCCEEDED_AFTER_FAILURE', outRefundNo } });
    expect([...deliveriesById(events).values()].every((count) => count === 1)).toBe(true);
    // Nothing more can be refunded.
    const more = await refund(id, { refundFee: 1, idempotencyKey: randomUUID() });
    expect(more.body.error.code).toBe('ORDER_NOT_REFUNDABLE');
  });

  it("by recovery's refundquery, when the refund was recorded FAILED while recovery asked", async () => {
    const { id } = await paidOrder();
    // WeChat Pay's answer to the refund is lost: PROCESSING here, accepted there (and its callbacks lost).
    await stack.sim.faults({ dropNotifies: 1_000_000 });
    try {
      const answer = await refund(id, { refundFee: 30, idempotencyKey: randomUUID() });
      expect(answer.body.status).toBe('PROCESSING');
      const outRefundNo = answer.body.outRefundNo as string;
      const processing = (await ctx.store.get(id))!;
      // While recovery asks refundquery, another path records the refund FAILED (as a refusal for
      // good would): refundquery then says SUCCESS for a refund recorded FAILED.
      const racing: OrdersContext = {
        ...ctx,
        now: () => new Date(Date.now() + 61_000),
        gatewayFor: (order) => {
          const gateway = ctx.gatewayFor(order);
          return {
            ...gateway,
            queryRefund: async (number) => {
              const queried = await gateway.queryRefund(number);
              await ctx.refunds.settle(processing, outRefundNo, {
                status: 'FAILED',
                at: new Date().toISOString(),
                failureCode: 'NOTENOUGH',
                failureMessage: 'injected',
              });
              return queried;
            },
          };
        },
      };
      await sleep(50);
      const summary = await recoverOrders(racing, { deadline: Date.now() + 10_000 });
      expect(summary.refundsSettled).toBeGreaterThanOrEqual(1);
      const stored = await settledOrder(id);
      expect(stored?.refunds?.[outRefundNo]).toMatchObject({ status: 'SUCCESS' });
      expect(stored).toMatchObject({ refundedFee: 30, refundHeldFee: 30, refundCount: 1 });
      expect(stored?.review[`refund:${outRefundNo}`]).toMatchObject({
        reason: 'REFUND_SUCCEEDED_AFTER_FAILURE',
        source: 'recovery',
        failureCode: 'NOTENOUGH',
      });
      expect(eventsOf(stack, id).map((event) => event['detail-type'])).toEqual([
        'Order Paid',
        'Refund Failed',
        'Refund Succeeded',
        'Payment Needs Review',
      ]);
    } finally {
      await stack.sim.faults({ dropNotifies: 0 });
    }
  });
});
