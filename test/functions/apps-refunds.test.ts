/**
 * Refunds of the merchant's second app's orders go under that app, as the order was made and paid:
 * the refund, its query, and its callback (WeChat Pay, here the emulator, holds an order to its app).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import { callback, create, getRefund, refund, refundCallback } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

const MINI = TEST_MINIPROGRAM.appId;

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { refunds: true, reset: true });

/** A paid JSAPI order of the mini-program (its callback delivered). */
async function paidMiniProgramOrder(totalFee = 100): Promise<{ id: string; transactionId: string }> {
  const created = await create({ tradeType: 'JSAPI', appId: MINI, openid: 'oMiniRefundPayer', totalFee, description: 'second app refund' });
  expect(created.status, created.raw).toBe(201);
  const id = created.body.outTradeNo;
  await stack.sim.pay(id);
  const transactionId = (await stack.sim.order(id)).transaction_id as string;
  expect((await callback(paidCallback(id, totalFee, { appid: MINI, transaction_id: transactionId }))).returnCode).toBe('SUCCESS');
  return { id, transactionId };
}

describe("refunds of the second app's orders", () => {
  it("are sent under the order's app and recorded from its callback", async () => {
    const { id } = await paidMiniProgramOrder(100);
    const answer = await refund(id, { refundFee: 40, idempotencyKey: randomUUID() });
    expect(answer.status, answer.raw).toBe(202);
    const settled = await eventually(async () => {
      const view = await getRefund(id, answer.body.outRefundNo as string);
      return view.body.status === 'SUCCESS' ? view : undefined;
    }, 10_000);
    expect(settled.body.refundId).toMatch(/^503/);
    // The refund is visible as soon as it is written, a moment before its callback is answered
    // (answering also publishes its event).
    const atWechatPay = await eventually(async () => {
      const [view] = (await stack.sim.order(id)).refunds;
      return view && view.notifications.length > 0 ? view : undefined;
    });
    expect(atWechatPay).toMatchObject({ refund_fee: 40, refund_status: 'SUCCESS' });
    expect(atWechatPay.notifications.at(-1)?.return_code).toBe('SUCCESS');
  });

  it("whose callbacks were lost are settled by recovery's refundquery under the order's app", async () => {
    const { id } = await paidMiniProgramOrder(100);
    await stack.sim.faults({ dropNotifies: 1_000 });
    const answer = await refund(id, { refundFee: 25, idempotencyKey: randomUUID() });
    expect(answer.status).toBe(202);
    // Asked under the wrong app, WeChat Pay would say REFUNDNOTEXIST and the refund be sent again.
    await eventually(async () => ((await stack.sim.order(id)).refunds[0]?.refund_status === 'SUCCESS' ? true : undefined), 10_000);
    await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 62 * 60_000) }, { deadline: Date.now() + 10_000 });
    expect((await getRefund(id, answer.body.outRefundNo as string)).body.status).toBe('SUCCESS');
    expect((await stack.sim.order(id)).refunds).toHaveLength(1);
  });

  it("refuse a refund callback carrying the first app's appid, and record the order's own", async () => {
    const { id, transactionId } = await paidMiniProgramOrder(100);
    const fields = {
      out_trade_no: id,
      transaction_id: transactionId,
      out_refund_no: `external-${randomUUID().slice(0, 8)}`,
      total_fee: '100',
      refund_fee: '10',
    };
    const document = (appid: string) =>
      encryptedRefundNotification({ apiKey: TEST_MERCHANT.apiKey, appid, mch_id: TEST_MERCHANT.mchId, fields });
    const refused = await refundCallback(document(TEST_MERCHANT.appId));
    expect(refused).toMatchObject({
      returnCode: 'FAIL',
      returnMsg: `sent under appid ${TEST_MERCHANT.appId}, but the order was made under ${MINI}`,
    });
    expect((await ctx.store.get(id))?.refunds?.[fields.out_refund_no]).toBeUndefined();
    expect((await refundCallback(document(MINI))).returnCode).toBe('SUCCESS');
    expect((await ctx.store.get(id))?.refunds?.[fields.out_refund_no]).toMatchObject({ refundFee: 10, status: 'SUCCESS' });
  });
});
