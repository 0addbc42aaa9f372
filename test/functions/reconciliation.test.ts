/**
 * Daily reconciliation through its real entry points (the merchant routes and the schedule), on
 * dynalite and the emulator's own bill.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { listen, readBody } from '../../dev/emulator/http-server';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { handler as getReconciliation } from '../../functions/getReconciliation';
import { handler as reconcileSchedule } from '../../functions/reconcile';
import { handler as runReconciliation } from '../../functions/runReconciliation';
import type { OrdersContext } from '../../lib/orders/context';
import { GatewayError } from '../../lib/orders/gateway';
import { reconcileDay } from '../../lib/orders/reconcile';
import { requestRefund } from '../../lib/orders/refunds';
import { ordersContext } from '../../lib/runtime';
import { createWechatPayClient } from '../../lib/wechatpay/client';
import { paymentRow, writeBill } from '../../dev/wechatpay-documents/bill';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../lib/wechatpay/time';
import { apiEvent, callback, create, MERCHANT_AUTHORIZATION, refundCallback } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { wechatPayV2Bills } from '../../lib/gateways/wechatpay-v2/bills';

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true, refunds: true });

const DAY_MS = 86_400_000;
/** A Beijing day `days` before today, `yyyyMMdd`, and a `time_end` at noon that day. */
const beijingDay = (days: number) => toBeijingTimestamp(new Date(Date.now() - days * DAY_MS)).slice(0, 8);
const noonOf = (day: string) => `${day}120000`;

async function run(billDate: unknown) {
  const result = await runReconciliation(
    apiEvent({
      method: 'POST',
      path: '/merchant/reconciliations',
      body: JSON.stringify({ billDate }),
      authorization: MERCHANT_AUTHORIZATION,
    }),
  );
  return { status: result.statusCode as number, body: JSON.parse(result.body as string) };
}

async function read(billDate: string) {
  const result = await getReconciliation(
    apiEvent({
      method: 'GET',
      path: `/merchant/reconciliations/${billDate}`,
      pathParameters: { billDate },
      authorization: MERCHANT_AUTHORIZATION,
    }),
  );
  return { status: result.statusCode as number, body: JSON.parse(result.body as string) };
}

/** A refund WeChat Pay (the emulator) makes of a paid order at `refund_time` (`yyyyMMddHHmmss` Beijing); its callback only to a `notify_url`. */
async function refundAtWechatPay(refund: {
  out_trade_no: string;
  refund_fee: number;
  out_refund_no: string;
  refund_time: string;
  notify_url?: string;
}) {
  const answer = await fetch(`${stack.emulator.url}/__sim/refund`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(refund),
  });
  expect(answer.status).toBe(200);
}

/** A new order paid at WeChat Pay at noon of `day`, recorded PAID here by its callback. */
async function paidOnDay(day: string, totalFee: number, description: string): Promise<string> {
  const outTradeNo = (await create({ tradeType: 'NATIVE', totalFee, description })).body.outTradeNo as string;
  await payYesterday(outTradeNo, day);
  const ctx = await ordersContext();
  await eventually(async () => ((await ctx.store.get(outTradeNo))?.status === 'PAID' ? true : undefined), 10_000);
  return outTradeNo;
}

/** `ctx` whose WeChat Pay answers every refund with a refusal for good, before sending anything (an injected fault). */
function refusingRefunds(ctx: OrdersContext): OrdersContext {
  return {
    ...ctx,
    gatewayFor: (order) => ({
      ...ctx.gatewayFor(order),
      refund: async () => {
        throw new GatewayError('WeChat Pay refund failed with USER_ACCOUNT_ABNORMAL', 'REFUSED', 'USER_ACCOUNT_ABNORMAL', false, {
          description: '退款请求失败',
        });
      },
    }),
  };
}

async function payYesterday(outTradeNo: string, day: string) {
  const answer = await fetch(`${stack.emulator.url}/__sim/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ out_trade_no: outTradeNo, time_end: noonOf(day) }),
  });
  expect(answer.status).toBe(200);
}

/** `ctx` whose bill is `bill`, served as WeChat Pay's downloadbill answer; every other call still goes to the emulator. */
async function withBill(bill: string, body: (ctx: OrdersContext) => Promise<void>): Promise<void> {
  const server = createServer((request, response) => {
    void readBody(request, 1 << 20).then(() => response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(bill));
  });
  const listening = await listen(server, 0, '127.0.0.1');
  try {
    const ctx = await ordersContext();
    await body({ ...ctx, bills: wechatPayV2Bills({ ...ctx.config, baseUrl: listening.origin }) });
  } finally {
    await listening.close();
  }
}

describe('a payment that only the bill shows (security review 3, finding 7: the bill is the one unsigned document)', () => {
  it("is not recorded when WeChat Pay's signed orderquery does not show it: reported NOT_CONFIRMED, the order stays PENDING", async () => {
    const day = beijingDay(10);
    const pending = (await create({ tradeType: 'NATIVE', totalFee: 800, description: 'only a bill line says paid' })).body
      .outTradeNo as string;
    // A bill line for this order (its app, its amount) that WeChat Pay never made: the bill is not signed.
    const tradeTime = `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)} 12:00:00`;
    const row = paymentRow({
      tradeTime,
      appId: TEST_MERCHANT.appId,
      mchId: TEST_MERCHANT.mchId,
      transactionId: '4200000000202600000000000008',
      outTradeNo: pending,
      openid: 'oBillOnlyPayer00000000000000',
      tradeType: 'NATIVE',
      productName: 'forged',
      totalFeeFen: 800,
    });
    await withBill(writeBill([row]), async (ctx) => {
      const report = await reconcileDay(day, ctx);
      expect(report).toMatchObject({ status: 'MISMATCHED', counts: { billRows: 1, matched: 0, repaired: 0 } });
      expect(report.items).toEqual([
        expect.objectContaining({
          kind: 'NOT_CONFIRMED',
          outTradeNo: pending,
          transactionId: row.transactionId,
          note: expect.stringContaining('trade_state NOTPAY'),
        }),
      ]);
      const order = await ctx.store.get(pending);
      expect(order).toMatchObject({ status: 'PENDING' });
      expect(order?.transactionId).toBeUndefined();
      expect(order?.review).toEqual({});
    });
  });

  it('is left for the next run when WeChat Pay cannot be asked: reported UNCONFIRMED, then recorded by a rerun', async () => {
    const day = beijingDay(11);
    await stack.sim.faults({ dropNotifies: 1_000_000 });
    const lost = (await create({ tradeType: 'NATIVE', totalFee: 4300, description: 'lost callback, query down' })).body
      .outTradeNo as string;
    await payYesterday(lost, day);
    await stack.sim.faults({ systemError: { orderquery: 1_000 } });
    let first;
    try {
      first = await run(day);
    } finally {
      await stack.sim.faults({ systemError: { orderquery: 0 } });
    }
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ status: 'MISMATCHED', counts: { billRows: 1, repaired: 0 } });
    expect(first.body.items).toEqual([
      expect.objectContaining({ kind: 'UNCONFIRMED', outTradeNo: lost, note: expect.stringContaining('SYSTEMERROR') }),
    ]);
    const ctx = await ordersContext();
    expect(await ctx.store.get(lost)).toMatchObject({ status: 'PENDING' });

    const again = await run(day);
    expect(again.body).toMatchObject({
      status: 'MATCHED',
      counts: { repaired: 1 },
      items: [expect.objectContaining({ kind: 'REPAIRED', outTradeNo: lost })],
    });
    expect(await ctx.store.get(lost)).toMatchObject({
      status: 'PAID',
      paidVia: 'reconciliation',
      transactionId: (await stack.sim.order(lost)).transaction_id,
    });
  });
});

describe('daily reconciliation', () => {
  it('a day with a lost callback and recovery not run: the payment is recorded PAID once, and a rerun reports it matched', async () => {
    const day = beijingDay(1);
    await stack.sim.faults({ dropNotifies: 1_000_000 });
    const lost = (await create({ tradeType: 'NATIVE', totalFee: 4200, description: 'lost callback' })).body.outTradeNo;
    await payYesterday(lost, day);

    const first = await run(day);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({
      billDate: day,
      status: 'MATCHED',
      counts: { billRows: 1, matched: 0, repaired: 1, missingFromBill: 0, amountMismatches: 0 },
    });
    expect(first.body.items).toEqual([expect.objectContaining({ kind: 'REPAIRED', outTradeNo: lost, billFen: 4200 })]);
    const ctx = await ordersContext();
    const order = await ctx.store.get(lost);
    expect(order).toMatchObject({ status: 'PAID', paidVia: 'reconciliation', transactionId: (await stack.sim.order(lost)).transaction_id });
    expect(toBeijingTimestamp(new Date(order?.paidAt as string))).toBe(noonOf(day));

    const again = await run(day);
    expect(again.body).toMatchObject({
      status: 'MATCHED',
      counts: { billRows: 1, matched: 1, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
      items: [],
    });
    expect(await ctx.store.get(lost)).toEqual(order);
    expect((await read(day)).body).toEqual(again.body);
  });

  it('a payment recorded here that the bill lacks is reported, and raises the mismatch', async () => {
    const day = beijingDay(2);
    const paidHere = (await create({ tradeType: 'NATIVE', totalFee: 500, description: 'not in the bill' })).body.outTradeNo;
    // A genuine-looking callback the emulator never sent: the bill will not have it.
    const reply = await callback(paidCallback(paidHere, 500, { time_end: noonOf(day) }));
    expect(reply.returnCode).toBe('SUCCESS');
    const report = (await run(day)).body;
    expect(report.status).toBe('MISMATCHED');
    expect(report.counts).toMatchObject({ missingFromBill: 1 });
    expect(report.items).toEqual([expect.objectContaining({ kind: 'MISSING_FROM_BILL', outTradeNo: paidHere, recordedFen: 500 })]);
  });

  it('payments whose callbacks arrived are matched through the day index; a day without trades has no bill', async () => {
    const day = beijingDay(3);
    const made = [];
    for (let i = 0; i < 12; i++)
      made.push((await create({ tradeType: 'APP', totalFee: 100 + i, description: `day order ${i}` })).body.outTradeNo as string);
    for (const outTradeNo of made) await payYesterday(outTradeNo, day);
    const ctx = await ordersContext();
    await eventually(async () => ((await ctx.store.paidOnDay(day)).length === made.length ? true : undefined), 10_000);
    const report = (await run(day)).body;
    expect(report).toMatchObject({
      status: 'MATCHED',
      counts: { billRows: 12, matched: 12, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
    });

    expect((await run(beijingDay(40))).body).toMatchObject({ status: 'NO_BILL', counts: { billRows: 0 } });
  });

  it('a refund made in the merchant platform whose callback never came is recorded from the bill, flagged; a rerun matches it', async () => {
    const day = beijingDay(4);
    const paid = await paidOnDay(day, 5000, 'refunded by hand');
    const ctx = await ordersContext();
    // No notify_url: WeChat Pay's refund callback never reaches the backend.
    await refundAtWechatPay({ out_trade_no: paid, refund_fee: 1200, out_refund_no: 'platform-refund-1', refund_time: `${day}150000` });
    await eventually(
      async () =>
        ((await stack.sim.order(paid)) as unknown as { refunds: Array<{ refund_status: string }> }).refunds[0]?.refund_status === 'SUCCESS'
          ? true
          : undefined,
      10_000,
    );

    const first = (await run(day)).body;
    expect(first.counts).toMatchObject({ billRows: 2, matched: 1, repaired: 1 });
    expect(first.items).toEqual([expect.objectContaining({ kind: 'REFUND_REPAIRED', outTradeNo: paid, billFen: 1200 })]);
    const order = await ctx.store.get(paid);
    expect(order?.refunds?.['platform-refund-1']).toMatchObject({ status: 'SUCCESS', refundFee: 1200, origin: 'external' });
    expect(order?.refundedFee).toBe(1200);
    // Security review 3, finding 6: the flag said `refund-notify` whoever found the refund.
    expect(Object.values(order?.review ?? {})).toEqual([
      expect.objectContaining({ reason: 'REFUND_NOT_REQUESTED', source: 'reconciliation', outRefundNo: 'platform-refund-1' }),
    ]);

    const again = (await run(day)).body;
    expect(again).toMatchObject({ status: 'MATCHED', counts: { billRows: 2, matched: 2, repaired: 0 }, items: [] });
    expect(await ctx.store.get(paid)).toEqual(order);
  });

  it('a refund recorded FAILED that the bill shows SUCCESS is recorded SUCCESS from the bill, flagged; a rerun matches it', async () => {
    const day = beijingDay(5);
    const paid = await paidOnDay(day, 3000, 'refused, then refunded');
    const ctx = await ordersContext();
    // WeChat Pay answers the refund with a refusal for good (injected here)...
    const refund = await requestRefund({ outTradeNo: paid, refundFee: 1000, idempotencyKey: randomUUID() }, refusingRefunds(ctx));
    expect(refund).toMatchObject({ status: 'FAILED', code: 'USER_ACCOUNT_ABNORMAL' });
    // ...yet made it that day; its callback never reaches the backend (no notify_url).
    await refundAtWechatPay({ out_trade_no: paid, refund_fee: 1000, out_refund_no: refund.outRefundNo, refund_time: `${day}150000` });
    await eventually(async () => ((await stack.sim.order(paid)).refunds[0]?.refund_status === 'SUCCESS' ? true : undefined), 10_000);

    const first = (await run(day)).body;
    expect(first).toMatchObject({
      status: 'MATCHED',
      counts: { billRows: 2, matched: 1, repaired: 1, missingFromBill: 0, amountMismatches: 0 },
    });
    expect(first.items).toEqual([
      expect.objectContaining({
        kind: 'REFUND_REPAIRED',
        outTradeNo: paid,
        billFen: 1000,
        note: expect.stringContaining('recorded FAILED'),
      }),
    ]);
    const order = await ctx.store.get(paid);
    expect(order?.refunds?.[refund.outRefundNo]).toMatchObject({ status: 'SUCCESS', refundFee: 1000, origin: 'api' });
    expect(order).toMatchObject({ status: 'PAID', refundedFee: 1000, refundHeldFee: 1000, refundCount: 1 });
    expect(Object.values(order?.review ?? {})).toEqual([
      expect.objectContaining({
        reason: 'REFUND_SUCCEEDED_AFTER_FAILURE',
        source: 'reconciliation',
        outRefundNo: refund.outRefundNo,
        failureCode: 'USER_ACCOUNT_ABNORMAL',
      }),
    ]);

    const again = (await run(day)).body;
    expect(again).toMatchObject({ status: 'MATCHED', counts: { billRows: 2, matched: 2, repaired: 0 }, items: [] });
    expect(await ctx.store.get(paid)).toEqual(order);
  });

  /**
   * An order of 700 fen stored here under the default app whose unified order never reached WeChat
   * Pay; then another system of the merchant makes the same out_trade_no there (under `appId`, for
   * `totalFee`), and it is paid on `day`, its callbacks lost. Answers the out_trade_no and WeChat
   * Pay's transaction.
   */
  async function paidElsewhere(day: string, appId: string, totalFee: number): Promise<{ outTradeNo: string; paidThere: string }> {
    await stack.sim.faults({ dropNotifies: 1_000_000, systemError: { unifiedorder: 10 } });
    const refused = await create({ tradeType: 'NATIVE', totalFee: 700, description: 'ours, never at WeChat Pay' });
    await stack.sim.faults({ systemError: { unifiedorder: 0 } });
    expect(refused.status).toBe(502);
    const outTradeNo = refused.body.error.outTradeNo as string;
    const otherSystem = createWechatPayClient({
      appId,
      mchId: TEST_MERCHANT.mchId,
      apiKey: TEST_MERCHANT.apiKey,
      baseUrl: stack.emulator.url,
    });
    await otherSystem.unifiedOrder(
      {
        body: 'another system',
        out_trade_no: outTradeNo,
        total_fee: String(totalFee),
        spbill_create_ip: '203.0.113.9',
        notify_url: 'https://other.example.com/notify',
        trade_type: 'JSAPI',
        openid: 'oOtherSystemPayer',
      },
      { signType: 'HMAC-SHA256' },
    );
    await payYesterday(outTradeNo, day);
    return { outTradeNo, paidThere: (await stack.sim.order(outTradeNo)).transaction_id as string };
  }

  it("a payment in the bill under another app than its order's is not recorded as the order's: flagged and reported, and reported again by a rerun", async () => {
    const day = beijingDay(6);
    const { outTradeNo, paidThere } = await paidElsewhere(day, TEST_MINIPROGRAM.appId, 700);

    const first = (await run(day)).body;
    expect(first).toMatchObject({
      status: 'MISMATCHED',
      counts: { billRows: 1, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
    });
    expect(first.items).toEqual([
      expect.objectContaining({
        kind: 'APP_MISMATCH',
        outTradeNo,
        transactionId: paidThere,
        billFen: 700,
        note: expect.stringContaining(TEST_MINIPROGRAM.appId),
      }),
    ]);
    const ctx = await ordersContext();
    const order = await ctx.store.get(outTradeNo);
    expect(order).toMatchObject({ status: 'PENDING', appId: TEST_MERCHANT.appId });
    expect(order?.transactionId).toBeUndefined();
    expect(order?.review).toEqual({
      [paidThere]: expect.objectContaining({
        reason: 'APP_MISMATCH',
        source: 'reconciliation',
        appId: TEST_MINIPROGRAM.appId,
        totalFee: 700,
      }),
    });

    // A rerun reports it again (it was never recorded as the order's payment), and writes nothing.
    const again = (await run(day)).body;
    expect(again).toMatchObject({ status: 'MISMATCHED', items: [expect.objectContaining({ kind: 'APP_MISMATCH', outTradeNo })] });
    expect(await ctx.store.get(outTradeNo)).toEqual(order);
  });

  it("a payment in the bill for another amount than its order's is flagged and reported, and reported again by a rerun", async () => {
    const day = beijingDay(7);
    const { outTradeNo, paidThere } = await paidElsewhere(day, TEST_MERCHANT.appId, 900);
    const first = (await run(day)).body;
    expect(first).toMatchObject({ status: 'MISMATCHED', counts: { billRows: 1, matched: 0, amountMismatches: 1 } });
    expect(first.items).toEqual([expect.objectContaining({ kind: 'NOT_RECORDED', outTradeNo, billFen: 900, recordedFen: 700 })]);
    const ctx = await ordersContext();
    const order = await ctx.store.get(outTradeNo);
    expect(order?.status).toBe('PENDING');
    expect(order?.review[paidThere]).toMatchObject({ reason: 'AMOUNT_MISMATCH', totalFee: 900 });
    const again = (await run(day)).body;
    expect(again).toMatchObject({
      status: 'MISMATCHED',
      counts: { matched: 0, amountMismatches: 1 },
      items: [expect.objectContaining({ kind: 'NOT_RECORDED', outTradeNo })],
    });
    expect(await ctx.store.get(outTradeNo)).toEqual(order);
  });

  it('a refund requested that day and recorded SUCCESS here that the bill lacks is reported, and again by a rerun; those in the bill and those that failed are not', async () => {
    const day = beijingDay(8);
    const paid = await paidOnDay(day, 9000, 'refunds that day');
    const ctx = await ordersContext();
    const at = (time: string): OrdersContext => ({ ...ctx, now: () => fromBeijingTimestamp(`${day}${time}`)! });
    const lostOnTheWay = async (time: string, refundFee: number) => {
      // The refund request that day never reaches WeChat Pay: PROCESSING here.
      await stack.sim.faults({ systemError: { refund: 10 } });
      try {
        const view = await requestRefund({ outTradeNo: paid, refundFee, idempotencyKey: randomUUID() }, at(time));
        expect(view.status).toBe('PROCESSING');
        return view.outRefundNo;
      } finally {
        await stack.sim.faults({ systemError: { refund: 0 } });
      }
    };

    // In the bill: WeChat Pay received it that day after all (a resend), and its callback came.
    const billed = await lostOnTheWay('140000', 1000);
    await refundAtWechatPay({
      out_trade_no: paid,
      refund_fee: 1000,
      out_refund_no: billed,
      refund_time: `${day}140005`,
      notify_url: stack.refundNotifyUrl,
    });
    await eventually(async () => ((await ctx.store.get(paid))?.refunds?.[billed]?.status === 'SUCCESS' ? true : undefined), 10_000);
    // Not in the bill: recorded SUCCESS here from a callback WeChat Pay's bill knows nothing of.
    const missing = await lostOnTheWay('160000', 2000);
    const transactionId = (await ctx.store.get(paid))?.transactionId as string;
    const notInBill = encryptedRefundNotification({
      apiKey: TEST_MERCHANT.apiKey,
      appid: TEST_MERCHANT.appId,
      mch_id: TEST_MERCHANT.mchId,
      fields: {
        transaction_id: transactionId,
        out_trade_no: paid,
        out_refund_no: missing,
        total_fee: '9000',
        refund_fee: '2000',
        refund_status: 'SUCCESS',
      },
    });
    expect((await refundCallback(notInBill)).returnCode).toBe('SUCCESS');
    // Refused for good that day (injected): no money moved, nothing to find in the bill.
    expect(
      (await requestRefund({ outTradeNo: paid, refundFee: 500, idempotencyKey: randomUUID() }, refusingRefunds(at('170000')))).status,
    ).toBe('FAILED');

    const first = (await run(day)).body;
    expect(first).toMatchObject({
      status: 'MISMATCHED',
      counts: { billRows: 2, matched: 2, repaired: 0, missingFromBill: 1, amountMismatches: 0 },
    });
    expect(first.items).toEqual([
      expect.objectContaining({
        kind: 'REFUND_MISSING_FROM_BILL',
        outTradeNo: paid,
        outRefundNo: missing,
        transactionId,
        recordedFen: 2000,
      }),
    ]);
    const again = (await run(day)).body;
    expect(again).toMatchObject({ status: 'MISMATCHED', counts: first.counts, items: first.items });
    // The day before knows nothing of these refunds.
    expect((await run(beijingDay(9))).body.items).toEqual([]);
  });

  it("a refund of ours that the bill lacks is reported even when the bill has another system's refund under the same out_refund_no (refunds are matched on out_trade_no and out_refund_no together)", async () => {
    const day = beijingDay(10);
    const ours = await paidOnDay(day, 9000, 'ours');
    const ctx = await ordersContext();
    // Requested that day, never received by WeChat Pay; recorded SUCCESS here from a callback its bill knows nothing of.
    await stack.sim.faults({ systemError: { refund: 10 } });
    const requested = await requestRefund(
      { outTradeNo: ours, refundFee: 2000, idempotencyKey: randomUUID() },
      { ...ctx, now: () => fromBeijingTimestamp(`${day}160000`)! },
    );
    await stack.sim.faults({ systemError: { refund: 0 } });
    const transactionId = (await ctx.store.get(ours))?.transactionId as string;
    const notInBill = encryptedRefundNotification({
      apiKey: TEST_MERCHANT.apiKey,
      appid: TEST_MERCHANT.appId,
      mch_id: TEST_MERCHANT.mchId,
      fields: {
        transaction_id: transactionId,
        out_trade_no: ours,
        out_refund_no: requested.outRefundNo,
        total_fee: '9000',
        refund_fee: '2000',
        refund_status: 'SUCCESS',
      },
    });
    expect((await refundCallback(notInBill)).returnCode).toBe('SUCCESS');
    // Another system on the same merchant id: its order paid and refunded that day, its refund under the same out_refund_no.
    const theirs = `${day}other${randomUUID().slice(0, 8)}`;
    const otherSystem = createWechatPayClient({
      appId: TEST_MERCHANT.appId,
      mchId: TEST_MERCHANT.mchId,
      apiKey: TEST_MERCHANT.apiKey,
      baseUrl: stack.emulator.url,
    });
    await otherSystem.unifiedOrder(
      {
        body: 'another system',
        out_trade_no: theirs,
        total_fee: '3000',
        spbill_create_ip: '203.0.113.9',
        notify_url: 'https://other.example.com/notify',
        trade_type: 'NATIVE',
        product_id: 'p1',
      },
      { signType: 'HMAC-SHA256' },
    );
    await payYesterday(theirs, day);
    await refundAtWechatPay({ out_trade_no: theirs, refund_fee: 2000, out_refund_no: requested.outRefundNo, refund_time: `${day}170000` });
    // The bill lists it SUCCESS once WeChat Pay has settled it.
    await eventually(async () => ((await stack.sim.order(theirs)).refunds[0]?.refund_status === 'SUCCESS' ? true : undefined), 10_000);

    const report = (await run(day)).body;
    expect(report).toMatchObject({ status: 'MISMATCHED', counts: { billRows: 3, matched: 1, missingFromBill: 1, amountMismatches: 1 } });
    expect(report.items).toEqual([
      expect.objectContaining({ kind: 'UNKNOWN_ORDER', outTradeNo: theirs }),
      expect.objectContaining({
        kind: 'REFUND_MISMATCH',
        outTradeNo: theirs,
        outRefundNo: requested.outRefundNo,
        note: expect.stringContaining('UNKNOWN_ORDER'),
      }),
      expect.objectContaining({
        kind: 'REFUND_MISSING_FROM_BILL',
        outTradeNo: ours,
        outRefundNo: requested.outRefundNo,
        recordedFen: 2000,
      }),
    ]);
  });

  it('the schedule reconciles yesterday', async () => {
    const report = await reconcileSchedule({} as never);
    expect(report.billDate).toBe(beijingDay(1));
    expect((await read(beijingDay(1))).status).toBe(200);
  });

  it.each([
    ['today', () => beijingDay(0)],
    ['tomorrow', () => beijingDay(-1)],
    ['older than three months', () => beijingDay(100)],
    ['not a date', () => '20261340'],
    ['malformed', () => '2026-11-29'],
    ['a number', () => 20261129],
    ['missing', () => undefined],
  ])('a bill date that cannot have a bill (%s) is a 400 naming billDate', async (_name, date) => {
    const answer = await run(date());
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('billDate');
  });

  it('a day never reconciled is a 404; the merchant token is required', async () => {
    expect((await read(beijingDay(50))).status).toBe(404);
    const refused = await runReconciliation(
      apiEvent({ method: 'POST', path: '/merchant/reconciliations', body: JSON.stringify({ billDate: beijingDay(1) }) }),
    );
    expect(refused.statusCode).toBe(401);
  });
});
