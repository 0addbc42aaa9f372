/**
 * Orders under the merchant's several apps (WECHAT_APPS): each order is made, paid, asked about and
 * closed under its own app, through the real handlers, with the emulator holding WeChat Pay to it (an
 * order asked about under another app does not exist there).
 */
import { describe, expect, it } from 'vitest';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import { recoverOrders } from '../../lib/orders/recovery';
import type { OrdersContext } from '../../lib/orders/context';
import { verifySignature } from '../../lib/wechatpay/sign';
import { callback, create, get } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { waitFor } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

const MINI = TEST_MINIPROGRAM.appId;
const DEFAULT_APP = TEST_MERCHANT.appId;

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { reset: true });

async function miniProgramOrder(totalFee = 250, extra: Record<string, unknown> = {}) {
  const created = await create({
    tradeType: 'JSAPI',
    appId: MINI,
    openid: 'oMiniProgramPayer01',
    totalFee,
    description: 'second app',
    ...extra,
  });
  expect(created.status, created.raw).toBe(201);
  return created;
}

describe("an order of the merchant's second app", () => {
  it('is made under that app: unifiedorder and the JSAPI pay parameters carry its app id', async () => {
    const created = await miniProgramOrder();
    const pay = created.body.pay;
    expect(pay.appId).toBe(MINI);
    // paySign covers appId: the parameters are signed for the mini-program.
    const { paySign, ...signed } = pay;
    expect(verifySignature({ ...signed, sign: paySign as string }, TEST_MERCHANT.apiKey, 'HMAC-SHA256').ok).toBe(true);
    const id = created.body.outTradeNo;
    expect((await ctx.store.get(id))?.appId).toBe(MINI);
    const atWechatPay = (await stack.sim.order(id)) as unknown as { appid: string; openid: string };
    expect(atWechatPay).toMatchObject({ appid: MINI, openid: 'oMiniProgramPayer01' });
  });

  it("is paid through WeChat Pay's callback, verified against that app, and recorded PAID", async () => {
    const id = (await miniProgramOrder()).body.outTradeNo;
    await stack.sim.pay(id);
    await waitFor(async () => (await ctx.store.get(id))?.status === 'PAID');
    // The payment is visible as soon as it is written, a moment before the callback is answered.
    await waitFor(async () => (await stack.sim.order(id)).notifications.length > 0);
    const order = await stack.sim.order(id);
    expect(order.notifications.at(-1)).toMatchObject({ return_code: 'SUCCESS' });
    expect((await get(id)).body).toMatchObject({ status: 'PAID', transactionId: order.transaction_id });
  });

  it("is refused a genuinely signed callback that carries the first app's appid, and stays PENDING", async () => {
    const id = (await miniProgramOrder()).body.outTradeNo;
    const reply = await callback(paidCallback(id, 250, { appid: DEFAULT_APP }));
    expect(reply.returnCode).toBe('FAIL');
    expect(reply.returnMsg).toBe(`sent under appid ${DEFAULT_APP}, but the order was made under ${MINI}`);
    expect((await ctx.store.get(id))?.status).toBe('PENDING');
    // Its own app's callback is then recorded.
    expect((await callback(paidCallback(id, 250, { appid: MINI }))).returnCode).toBe('SUCCESS');
    expect((await ctx.store.get(id))?.status).toBe('PAID');
  });

  it("and an order of the first app is refused a callback with the second app's appid", async () => {
    const created = await create({ tradeType: 'NATIVE', totalFee: 120, description: 'first app' });
    const id = created.body.outTradeNo;
    expect((await callback(paidCallback(id, 120, { appid: MINI }))).returnCode).toBe('FAIL');
    expect((await callback(paidCallback(id, 120))).returnCode).toBe('SUCCESS');
  });

  it("a callback for an app that is not the merchant's is refused before any order is read", async () => {
    const id = (await miniProgramOrder()).body.outTradeNo;
    const reply = await callback(paidCallback(id, 250, { appid: 'wx0000000000000bad' }));
    expect(reply).toMatchObject({ returnCode: 'FAIL', returnMsg: 'callback is for appid "wx0000000000000bad", not ours' });
  });

  it("a lost callback: GET asks WeChat Pay under the order's app and records the payment", async () => {
    await stack.sim.faults({ dropNotifies: 100 });
    const id = (await miniProgramOrder()).body.outTradeNo;
    await stack.sim.pay(id);
    expect((await get(id)).body).toMatchObject({ status: 'PAID' });
    expect((await ctx.store.get(id))?.paidVia).toBe('query');
  });

  it("recovery repairs a lost payment and closes an expired order, each under the order's app", async () => {
    await stack.sim.faults({ dropNotifies: 100 });
    const paid = (await miniProgramOrder(310)).body.outTradeNo;
    const unpaid = (await miniProgramOrder(320)).body.outTradeNo;
    await stack.sim.pay(paid);
    // Asked under the wrong app, WeChat Pay would say ORDERNOTEXIST: the paid order would be left
    // pending and the unpaid one closed as never placed, without closeorder.
    const later = (ms: number) => ({ ...ctx, now: () => new Date(Date.now() + ms) });
    await recoverOrders(later(10_000), { deadline: Date.now() + 10_000 });
    expect((await ctx.store.get(paid))?.paidVia).toBe('recovery');
    await new Promise((resolve) => setTimeout(resolve, 350));
    await recoverOrders(later(31 * 60_000), { deadline: Date.now() + 10_000 });
    expect((await ctx.store.get(unpaid))?.status).toBe('CLOSED');
    expect((await ctx.store.get(unpaid))?.closeReason).toBe('expired unpaid; closed with WeChat Pay');
    expect((await stack.sim.order(unpaid)).trade_state).toBe('CLOSED');
  });

  it('an idempotent repeat names the same app; the same key for another app is another request (409)', async () => {
    const first = await miniProgramOrder(250, { idempotencyKey: 'apps-key-1' });
    const repeat = await create({
      tradeType: 'JSAPI',
      appId: MINI,
      openid: 'oMiniProgramPayer01',
      totalFee: 250,
      description: 'second app',
      idempotencyKey: 'apps-key-1',
    });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toMatchObject({ outTradeNo: first.body.outTradeNo, pay: { appId: MINI } });
    const otherApp = await create({
      tradeType: 'JSAPI',
      openid: 'oMiniProgramPayer01',
      totalFee: 250,
      description: 'second app',
      idempotencyKey: 'apps-key-1',
    });
    expect(otherApp.status).toBe(409);
    expect(otherApp.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it("an app that is not the merchant's is refused with a 400 naming appId, and nothing is stored", async () => {
    const refused = await create({ tradeType: 'NATIVE', appId: 'wx0000000000000bad', totalFee: 100, description: 'unknown app' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ field: 'appId', message: "appId wx0000000000000bad is not one of this merchant's apps" });
  });

  it('an order made before apps were recorded (no appId) belongs to the default app', async () => {
    const legacy = async () => {
      const id = (await create({ tradeType: 'NATIVE', totalFee: 130, description: 'legacy' })).body.outTradeNo;
      await ctx.store.db.send(new UpdateCommand({ TableName: stack.table, Key: { pk: id }, UpdateExpression: 'REMOVE appId' }));
      expect((await ctx.store.get(id))?.appId).toBeUndefined();
      return id;
    };
    const refused = await legacy();
    expect((await callback(paidCallback(refused, 130, { appid: MINI }))).returnMsg).toBe(
      `sent under appid ${MINI}, but the order was made under ${DEFAULT_APP}`,
    );
    const paid = await legacy();
    expect((await callback(paidCallback(paid, 130))).returnCode).toBe('SUCCESS');
    expect((await ctx.store.get(paid))?.status).toBe('PAID');
  });
});
