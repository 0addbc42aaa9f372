import { randomUUID } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { outRefundNoFor } from '../../lib/orders/refunds';
import { callback, create, get, getMerchantOrder, getRefund, refund } from '../support/api';
import { paidOrder } from '../support/orders';
import { paidCallback } from '../support/callbacks';
import { eventually, sleep } from '../support/eventually';
import { eventsOf } from '../support/events';
import type { SimRefund, TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { refunds: true });

const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });
/** Refunds of one order are a scaled minute apart at the emulator: 60 ms here. */
const spacing = () => sleep(70);

async function simRefunds(id: string): Promise<SimRefund[]> {
  return (await stack.sim.order(id)).refunds;
}

async function settledView(id: string, outRefundNo: string, status = 'SUCCESS') {
  return eventually(async () => {
    const answer = await getRefund(id, outRefundNo);
    return answer.body.status === status ? answer : undefined;
  }, 10_000);
}

describe('POST /merchant/orders/{outTradeNo}/refunds', () => {
  it('refunds part of a paid order: 202 PROCESSING, then the callback records SUCCESS; the views show it', async () => {
    const id = await paidOrder(stack.sim, 100);
    const key = randomUUID();
    const answer = await refund(id, { refundFee: 30, reason: '退货 return', idempotencyKey: key });
    expect(answer.status, answer.raw).toBe(202);
    expect(answer.body).toMatchObject({
      outRefundNo: outRefundNoFor(id, key),
      outTradeNo: id,
      refundFee: 30,
      status: 'PROCESSING',
      reason: '退货 return',
    });
    expect(answer.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(answer.body.outRefundNo).toMatch(/^[0-9A-Za-z_\-|*@]{1,64}$/);
    const settled = await settledView(id, answer.body.outRefundNo as string);
    expect(settled.body.refundId).toMatch(/^503/);
    expect(settled.body.succeededAt).toBeTruthy();
    const merchantView = await getMerchantOrder(id);
    expect(merchantView.body).toMatchObject({
      status: 'PAID',
      refundedFee: 30,
      refunds: [expect.objectContaining({ outRefundNo: outRefundNoFor(id, key), status: 'SUCCESS', refundFee: 30 })],
    });
    expect((await get(id)).body).toMatchObject({ status: 'PAID', refundedFee: 30 });
    // The refund is visible as soon as it is written, a moment before its callback is answered
    // (answering also publishes its event).
    const simRefund = await eventually(async () => {
      const [view] = await simRefunds(id);
      return view && view.notifications.length > 0 ? view : undefined;
    });
    expect(simRefund).toMatchObject({ out_refund_no: outRefundNoFor(id, key), refund_fee: 30, refund_status: 'SUCCESS' });
    expect(simRefund.notifications.at(-1)?.return_code).toBe('SUCCESS');
  });

  it('refunds adding up to the amount make the order REFUNDED', async () => {
    const id = await paidOrder(stack.sim, 100);
    const first = await refund(id, { refundFee: 40, idempotencyKey: randomUUID() });
    await spacing();
    const second = await refund(id, { refundFee: 60, idempotencyKey: randomUUID() });
    await settledView(id, first.body.outRefundNo as string);
    await settledView(id, second.body.outRefundNo as string);
    expect((await get(id)).body).toMatchObject({ status: 'REFUNDED', refundedFee: 100 });
    const over = await refund(id, { refundFee: 1, idempotencyKey: randomUUID() });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('ORDER_NOT_REFUNDABLE');
    // The payment callback again: still acknowledged, nothing changed.
    const sim = await stack.sim.order(id);
    expect((await callback(paidCallback(id, 100, { transaction_id: sim.transaction_id }))).returnCode).toBe('SUCCESS');
    expect((await get(id)).body.status).toBe('REFUNDED');
  });

  it('the same idempotencyKey answers the same refund: one refund at WeChat Pay', async () => {
    const id = await paidOrder(stack.sim, 100);
    const body = { refundFee: 25, idempotencyKey: randomUUID() };
    const first = await refund(id, body);
    const again = await refund(id, body);
    expect(again.status).toBe(202);
    expect(again.body.outRefundNo).toBe(first.body.outRefundNo);
    expect(again.body.createdAt).toBe(first.body.createdAt);
    await settledView(id, first.body.outRefundNo as string);
    const third = await refund(id, body);
    expect(third.body.status).toBe('SUCCESS');
    expect(await simRefunds(id)).toHaveLength(1);
    expect((await getMerchantOrder(id)).body.refundedFee).toBe(25);
  });

  it('a key used for another request is refused (409), on the same order or another', async () => {
    const id = await paidOrder(stack.sim, 100);
    const other = await paidOrder(stack.sim, 100);
    const key = randomUUID();
    expect((await refund(id, { refundFee: 10, idempotencyKey: key })).status).toBe(202);
    const changed = await refund(id, { refundFee: 11, idempotencyKey: key });
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await refund(other, { refundFee: 10, idempotencyKey: key })).status).toBe(409);
    expect(await simRefunds(other)).toHaveLength(0);
  });

  it('only a PAID order; never more than its amount; unknown orders; the body is checked', async () => {
    const pending = await create({ tradeType: 'NATIVE', totalFee: 100, description: 'unpaid' });
    const unpaid = await refund(pending.body.outTradeNo, { refundFee: 1, idempotencyKey: randomUUID() });
    expect(unpaid.status).toBe(409);
    expect(unpaid.body.error.code).toBe('ORDER_NOT_REFUNDABLE');
    const id = await paidOrder(stack.sim, 100);
    const tooMuch = await refund(id, { refundFee: 101, idempotencyKey: randomUUID() });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error.code).toBe('REFUND_EXCEEDS_AMOUNT');
    expect((await refund('20990101unknownOrder000000', { refundFee: 1, idempotencyKey: randomUUID() })).status).toBe(404);
    for (const [body, field] of [
      [{ refundFee: 0, idempotencyKey: 'k' }, 'refundFee'],
      [{ refundFee: 1.5, idempotencyKey: 'k' }, 'refundFee'],
      [{ refundFee: '10', idempotencyKey: 'k' }, 'refundFee'],
      [{ refundFee: 10 }, 'idempotencyKey'],
      [{ refundFee: 10, idempotencyKey: 'has space' }, 'idempotencyKey'],
      [{ refundFee: 10, idempotencyKey: 'x'.repeat(65) }, 'idempotencyKey'],
      [{ refundFee: 10, idempotencyKey: 'k', reason: 'x'.repeat(81) }, 'reason'],
      [{ refundFee: 10, idempotencyKey: 'k', reason: '退款😀' }, 'reason'],
      [{ refundFee: 10, idempotencyKey: 'k', reason: 'a\u0001b' }, 'reason'],
      [{ refundFee: 10, idempotencyKey: 'k', currency: 'CNY' }, 'currency'],
    ] as const) {
      const answer = await refund(id, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.field).toBe(field);
    }
    expect(await simRefunds(id)).toHaveLength(0);
    const unauthorized = await refund(id, { refundFee: 1, idempotencyKey: 'k' }, { authorization: 'Bearer wrong-token-0123456789' });
    expect(unauthorized.status).toBe(401);
  });

  it('at most 50 refunds per order: 409', async () => {
    const id = await paidOrder(stack.sim, 100);
    await ctx.store.db.send(
      new UpdateCommand({
        TableName: stack.table,
        Key: { pk: id },
        UpdateExpression: 'SET refundCount = :n',
        ExpressionAttributeValues: { ':n': 50 },
      }),
    );
    const answer = await refund(id, { refundFee: 1, idempotencyKey: randomUUID() });
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe('TOO_MANY_REFUNDS');
  });

  it('WeChat Pay refuses for good (NOTENOUGH): FAILED with its code, the amount given back', async () => {
    const id = await paidOrder(stack.sim, 100);
    // 80 fen refunded in the merchant platform, outside this backend, its callback not (yet) here:
    // only 20 are left at WeChat Pay.
    const platform = await fetch(`${stack.emulator.url}/__sim/refund`, {
      method: 'POST',
      body: JSON.stringify({ out_trade_no: id, refund_fee: 80, out_refund_no: `P${id}` }),
    });
    expect(platform.status).toBe(200);
    await spacing();
    const failing = { refundFee: 50, idempotencyKey: randomUUID() };
    const answer = await refund(id, failing);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ status: 'FAILED', code: 'NOTENOUGH' });
    expect((await refund(id, failing)).body).toMatchObject({ outRefundNo: answer.body.outRefundNo, status: 'FAILED' });
    const stored = await ctx.store.get(id);
    expect(stored).toMatchObject({ refundHeldFee: 0, refundCount: 0, openRefunds: 0 });
    expect(stored?.refundShard).toBeUndefined();
    expect((await getRefund(id, answer.body.outRefundNo as string)).body).toMatchObject({ status: 'FAILED', code: 'NOTENOUGH' });
    // The same request again answers the same FAILED refund; nothing is sent.
  });

  it('a refund made in the merchant platform reaches us by its callback: recorded on its order, flagged for review', async () => {
    const id = await paidOrder(stack.sim, 100);
    expect((await stack.sim.platformRefund(id, 80)).status).toBe(200);
    const view = await eventually(async () => {
      const order = await getMerchantOrder(id);
      return (order.body.refunds as unknown[]).length === 1 ? order : undefined;
    });
    expect(view.body).toMatchObject({
      refundedFee: 80,
      refunds: [expect.objectContaining({ origin: 'external', refundFee: 80, status: 'SUCCESS' })],
    });
    expect(view.body.review).toContainEqual(
      expect.objectContaining({ reason: 'REFUND_NOT_REQUESTED', source: 'refund-notify', refundFee: 80 }),
    );
    // The flag is announced like every other (the money model found it went unannounced).
    const reviews = await eventually(async () => {
      const published = eventsOf(stack, id).filter((event) => event['detail-type'] === 'Payment Needs Review');
      return published.length > 0 ? published : undefined;
    });
    expect(reviews.map((event) => event.detail.review)).toEqual([
      expect.objectContaining({ reason: 'REFUND_NOT_REQUESTED', refundFee: 80 }),
    ]);
    expect((await ctx.store.get(id))?.refundHeldFee).toBe(80);
    const tooMuch = await refund(id, { refundFee: 21, idempotencyKey: randomUUID() });
    expect(tooMuch.body.error.code).toBe('REFUND_EXCEEDS_AMOUNT');
    await spacing();
    const fits = await refund(id, { refundFee: 20, idempotencyKey: randomUUID() });
    expect(fits.body.status).toBe('PROCESSING');
    await settledView(id, fits.body.outRefundNo as string);
    expect((await get(id)).body).toMatchObject({ status: 'REFUNDED', refundedFee: 100 });
  });

  it('CHANGE and REFUNDCLOSE: recorded; REFUNDCLOSE gives the amount back, CHANGE keeps it (a person must act)', async () => {
    for (const outcome of ['CHANGE', 'REFUNDCLOSE'] as const) {
      const id = await paidOrder(stack.sim, 100);
      await stack.sim.faults({ refundOutcome: outcome });
      try {
        const answer = await refund(id, { refundFee: 100, idempotencyKey: randomUUID() });
        await settledView(id, answer.body.outRefundNo as string, outcome);
      } finally {
        await stack.sim.faults({ refundOutcome: 'SUCCESS' });
      }
      const stored = await ctx.store.get(id);
      expect(stored?.status).toBe('PAID');
      expect(stored?.refundedFee ?? 0).toBe(0);
      expect(stored?.refundHeldFee).toBe(outcome === 'CHANGE' ? 100 : 0);
      expect(stored?.openRefunds).toBe(0);
      expect(stored?.refundShard).toBeUndefined();
    }
  });

  it('SYSTEMERROR and timeouts leave it PROCESSING; recovery settles it with refundquery', async () => {
    const id = await paidOrder(stack.sim, 100);
    await stack.sim.faults({ systemError: { refund: 10 } });
    let answer;
    try {
      answer = await refund(id, { refundFee: 10, idempotencyKey: randomUUID() });
    } finally {
      await stack.sim.faults({ systemError: { refund: 0 } });
    }
    expect(answer.body.status).toBe('PROCESSING');
    expect(await simRefunds(id)).toHaveLength(0);
    // Recovery: refundquery says REFUNDNOTEXIST, so it sends the same out_refund_no again.
    const first = await recoverOrders(later(61_000), { deadline: Date.now() + 10_000 });
    expect(first.refundsResent).toBeGreaterThanOrEqual(1);
    expect((await simRefunds(id)).map((r) => r.out_refund_no)).toEqual([answer.body.outRefundNo]);
    await settledView(id, answer.body.outRefundNo as string);
  });

  it('GET .../refunds/{outRefundNo}: 404 for an unknown refund, 400 for a malformed one', async () => {
    const id = await paidOrder(stack.sim, 100);
    expect((await getRefund(id, 'Rnothere')).status).toBe(404);
    expect((await getRefund(id, 'bad no')).status).toBe(400);
  });
});
