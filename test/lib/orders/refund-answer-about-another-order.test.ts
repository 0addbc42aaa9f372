import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { OrdersContext } from '../../../lib/orders/context';
import { recoverOrders } from '../../../lib/orders/recovery';
import { outRefundNoFor, parseRefundRequest, refundClaimFor, requestRefund } from '../../../lib/orders/refunds';
import { get, getMerchantOrder, getRefund, refund } from '../../support/api';
import { eventually, sleep } from '../../support/eventually';
import { paidOrder } from '../../support/orders';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';

/**
 * Security review 3, finding 1: out_refund_no is unique per MERCHANT at WeChat Pay, and one merchant
 * id often serves several deployments (staging and production, a recreated table) or systems. Refund
 * numbers were made from the idempotency key alone, so another deployment sending the same key made
 * the same number for another order; and recovery took refundquery's answer about that other order's
 * refund as this order's: this order became REFUNDED while its payer got nothing. Every answer about a
 * refund must be about this order (out_trade_no and transaction_id) before anything is recorded.
 */
let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { refunds: true });
const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });

describe('refundquery answering about another order with the same out_refund_no', () => {
  it("is not recorded as this order's refund, and flags the order for review", async () => {
    const key = 'return-0001'; // a merchant's own sequential refund number, reused by another system
    const mine = await paidOrder(stack.sim, 50, 'this deployment');
    // Another system on the same merchant refunded ITS order under the very number this refund will have.
    const other = await paidOrder(stack.sim, 50, 'another system');
    expect((await stack.sim.platformRefund(other, 50, outRefundNoFor(mine, key))).status).toBe(200);
    await eventually(async () => ((await stack.sim.order(other)).refunds[0]?.refund_status === 'SUCCESS' ? true : undefined));

    // This deployment refunds its own order with that key; WeChat Pay does not answer for good.
    await stack.sim.faults({ systemError: { refund: 10 } });
    let answer;
    try {
      answer = await refund(mine, { refundFee: 50, idempotencyKey: key });
    } finally {
      await stack.sim.faults({ systemError: { refund: 0 } });
    }
    expect(answer.status, answer.raw).toBe(202);
    expect(answer.body.status).toBe('PROCESSING');
    expect((await stack.sim.order(mine)).refunds).toHaveLength(0);

    // Recovery asks refundquery by out_refund_no: WeChat Pay answers the OTHER order's refund.
    await recoverOrders(later(61_000), { deadline: Date.now() + 10_000 });
    await sleep(50);

    // WeChat Pay never refunded this order's payer a single fen...
    expect((await stack.sim.order(mine)).refunds).toHaveLength(0);
    // ...so this order's refund must not be SUCCESS, nor the order REFUNDED.
    const view = await getRefund(mine, answer.body.outRefundNo as string);
    expect(view.body.status).toBe('PROCESSING');
    expect((await get(mine)).body).toMatchObject({ status: 'PAID' });
    expect((await get(mine)).body.refundedFee ?? 0).toBe(0);
    // A person sees it on the order.
    const merchantView = await getMerchantOrder(mine);
    expect(merchantView.body.review).toEqual([
      expect.objectContaining({
        reason: 'REFUND_ANSWER_FOR_ANOTHER_ORDER',
        source: 'recovery',
        outRefundNo: answer.body.outRefundNo,
        refundFee: 50,
        answeredOutTradeNo: other,
      }),
    ]);
    // Asked again, it is refused again and flagged no more.
    await recoverOrders(later(400_000), { deadline: Date.now() + 10_000 });
    expect((await getRefund(mine, answer.body.outRefundNo as string)).body.status).toBe('PROCESSING');
    expect((await getMerchantOrder(mine)).body.review).toHaveLength(1);
  });
});

describe('refund numbers', () => {
  it("name the order: the same key on another deployment's order makes another number, and both refunds are made", async () => {
    const key = 'return-0002';
    const mine = await paidOrder(stack.sim, 40, 'this deployment');
    const other = await paidOrder(stack.sim, 40, 'another deployment, an earlier version');
    // The number an earlier version of this backend made from the key alone, used by another deployment.
    expect((await stack.sim.platformRefund(other, 40, refundClaimFor(key))).status).toBe(200);
    const answer = await refund(mine, { refundFee: 40, idempotencyKey: key });
    expect(answer.status, answer.raw).toBe(202);
    expect(answer.body.outRefundNo).toBe(outRefundNoFor(mine, key));
    expect(answer.body.outRefundNo).not.toBe(refundClaimFor(key));
    await eventually(async () => ((await getRefund(mine, answer.body.outRefundNo as string)).body.status === 'SUCCESS' ? true : undefined));
    expect((await stack.sim.order(mine)).refunds).toEqual([
      expect.objectContaining({ out_refund_no: outRefundNoFor(mine, key), refund_fee: 40, refund_status: 'SUCCESS' }),
    ]);
  });

  it('keep the number a refund requested before numbers named their order was sent with', async () => {
    const key = 'return-0003';
    const mine = await paidOrder(stack.sim, 30, 'refunded by an earlier version');
    // What an earlier version wrote before asking WeChat Pay (then it stopped): the claim, under the key's own number.
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([mine, 30, null]))
      .digest('base64url');
    const claimed = await ctx.claims.refund(refundClaimFor(key), {
      outRefundNo: refundClaimFor(key),
      outTradeNo: mine,
      fingerprint,
      createdAt: new Date().toISOString(),
    });
    expect(claimed.ok).toBe(true);
    const again = await refund(mine, { refundFee: 30, idempotencyKey: key });
    expect(again.status, again.raw).toBe(202);
    expect(again.body.outRefundNo).toBe(refundClaimFor(key));
    expect((await stack.sim.order(mine)).refunds).toEqual([
      expect.objectContaining({ out_refund_no: refundClaimFor(key), refund_fee: 30 }),
    ]);
    // The same key for another order of this deployment is still the key reused.
    const another = await paidOrder(stack.sim, 30, 'another order');
    const reused = await refund(another, { refundFee: 30, idempotencyKey: key });
    expect(reused.status, reused.raw).toBe(409);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('a refund answer about another order', () => {
  it('is not recorded as accepted: the refund stays PROCESSING and the order is flagged', async () => {
    const mine = await paidOrder(stack.sim, 20, 'answered about another order');
    // WeChat Pay's answer, as a system sharing the merchant id could provoke it: about another order's payment.
    const answeringAboutAnother: OrdersContext = {
      ...ctx,
      gatewayFor: (order) => {
        const gateway = ctx.gatewayFor(order);
        return {
          ...gateway,
          refund: async (call) => ({
            ...(await gateway.refund(call)),
            outTradeNo: 'ANOTHER0000000001',
            transactionId: '4200000000000000000000000001',
          }),
        };
      },
    };
    const view = await requestRefund(
      parseRefundRequest(mine, { refundFee: 20, idempotencyKey: 'answered-elsewhere' }),
      answeringAboutAnother,
    );
    expect(view).toMatchObject({ status: 'PROCESSING' });
    expect(view.refundId).toBeUndefined();
    const merchantView = await getMerchantOrder(mine);
    expect(merchantView.body.refunds).toEqual([expect.objectContaining({ status: 'PROCESSING' })]);
    expect((merchantView.body.refunds as Array<{ refundId?: string }>)[0]?.refundId).toBeUndefined();
    expect(merchantView.body.review).toEqual([
      expect.objectContaining({
        reason: 'REFUND_ANSWER_FOR_ANOTHER_ORDER',
        source: 'refund-request',
        answeredOutTradeNo: 'ANOTHER0000000001',
      }),
    ]);
  });
});
