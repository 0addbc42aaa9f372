/**
 * Reconciliation at size: a day of N paid orders (some whose callbacks were lost) and of refunds
 * (some recorded SUCCESS here that the bill lacks) beside another day's orders, reconciled in one run
 * that reads only that day's indexes. CI size here; the full size (`npm run test:reliability`) is
 * 10,000 orders and 1,000 refunds a day and prints the time and reads.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { reconcileDay } from '../../lib/orders/reconcile';
import type { OrdersContext } from '../../lib/orders/context';
import { requestRefund } from '../../lib/orders/refunds';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../lib/wechatpay/time';
import { create, refundCallback } from '../support/api';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { inParallel, recordCommands, reportFigures, scale } from './support';

const ORDERS = scale(300, 10_000);
const OTHER_DAY_ORDERS = scale(60, 1_000);
const LOST = scale(20, 100);
/** Refunds requested that day (one per order paid that day), and those of them the bill lacks. */
const REFUNDS = scale(30, 1_000);
const REFUNDS_NOT_BILLED = scale(3, 10);

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { refunds: true });

const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);

async function payOn(outTradeNo: string, billDay: string) {
  const answer = await fetch(`${stack.emulator.url}/__sim/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      out_trade_no: outTradeNo,
      time_end: `${billDay}12${String(Math.floor(Math.random() * 60)).padStart(2, '0')}00`,
    }),
  });
  expect(answer.status).toBe(200);
}

describe('reconciliation at size', () => {
  it(`${ORDERS} payments (${LOST} callbacks lost) and ${REFUNDS} refunds (${REFUNDS_NOT_BILLED} not in the bill) in a day beside ${OTHER_DAY_ORDERS} payments of another day: one run repairs the lost ones, reports the refunds the bill lacks and reads only that day`, async () => {
    const billDay = day(1);
    const seedStarted = Date.now();
    const orders = await inParallel(
      Array.from({ length: ORDERS + OTHER_DAY_ORDERS }, (_, i) => i),
      16,
      async (i) => {
        const created = await create({ tradeType: 'APP', totalFee: 100 + (i % 900), description: `day ${i}` });
        expect(created.status, created.raw).toBe(201);
        return created.body.outTradeNo as string;
      },
    );
    await inParallel(orders.slice(LOST, ORDERS), 16, (outTradeNo) => payOn(outTradeNo, billDay));
    await inParallel(orders.slice(ORDERS), 16, (outTradeNo) => payOn(outTradeNo, day(2)));
    // Every delivered callback recorded before the bill is read.
    for (;;) {
      if ((await ctx.store.paidOnDay(billDay)).length === ORDERS - LOST) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Refunds requested that day of orders paid that day, their first sending lost on its way to
    // WeChat Pay (PROCESSING here). WeChat Pay received all but REFUNDS_NOT_BILLED of them that day
    // after all (a resend), and their callbacks recorded them SUCCESS: the bill lists them. The others
    // are recorded SUCCESS here from callbacks that WeChat Pay's bill knows nothing of.
    const refunded = orders.slice(LOST, LOST + REFUNDS);
    const onBillDay: OrdersContext = { ...ctx, now: () => fromBeijingTimestamp(`${billDay}130000`)! };
    await stack.sim.faults({ systemError: { refund: 1_000_000_000 } });
    const refundNos = await inParallel(
      refunded,
      16,
      async (outTradeNo) => (await requestRefund({ outTradeNo, refundFee: 50, idempotencyKey: randomUUID() }, onBillDay)).outRefundNo,
    );
    await stack.sim.faults({ systemError: { refund: 0 } });
    await inParallel(refunded.slice(REFUNDS_NOT_BILLED), 16, async (outTradeNo, i) => {
      const answer = await fetch(`${stack.emulator.url}/__sim/refund`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          out_trade_no: outTradeNo,
          refund_fee: 50,
          out_refund_no: refundNos[REFUNDS_NOT_BILLED + i],
          refund_time: `${billDay}130030`,
          notify_url: stack.refundNotifyUrl,
        }),
      });
      expect(answer.status).toBe(200);
    });
    await inParallel(refunded.slice(0, REFUNDS_NOT_BILLED), 16, async (outTradeNo, i) => {
      const order = (await ctx.store.get(outTradeNo))!;
      const notBilled = encryptedRefundNotification({
        apiKey: TEST_MERCHANT.apiKey,
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        fields: {
          transaction_id: order.transactionId!,
          out_trade_no: outTradeNo,
          out_refund_no: refundNos[i]!,
          total_fee: String(order.totalFee),
          refund_fee: '50',
          refund_status: 'SUCCESS',
        },
      });
      expect((await refundCallback(notBilled)).returnCode).toBe('SUCCESS');
    });
    // Every refund's callback recorded before the bill is read.
    await inParallel(refunded, 16, (outTradeNo, i) =>
      eventually(
        async () => ((await ctx.store.get(outTradeNo))?.refunds?.[refundNos[i]!]?.status === 'SUCCESS' ? true : undefined),
        60_000,
      ),
    );
    // Then LOST more payments that day whose callbacks never arrive (and recovery does not run).
    await stack.sim.faults({ dropNotifies: 1_000_000_000 });
    await inParallel(orders.slice(0, LOST), 16, (outTradeNo) => payOn(outTradeNo, billDay));
    const billedRefunds = REFUNDS - REFUNDS_NOT_BILLED;
    const seedSeconds = (Date.now() - seedStarted) / 1000;

    const recorder = recordCommands(ctx.store.db);
    const started = Date.now();
    let report;
    try {
      report = await reconcileDay(billDay, ctx);
    } finally {
      recorder.stop();
    }
    const runMs = Date.now() - started;
    const queries = recorder.commands.filter((command) => command.command === 'Query');
    expect(report).toMatchObject({
      status: 'MISMATCHED',
      counts: {
        billRows: ORDERS + billedRefunds,
        matched: ORDERS - LOST + billedRefunds,
        repaired: LOST,
        missingFromBill: REFUNDS_NOT_BILLED,
        amountMismatches: 0,
      },
    });
    expect(
      report.items
        .filter((item) => item.kind === 'REFUND_MISSING_FROM_BILL')
        .map((item) => item.outRefundNo)
        .sort(),
    ).toEqual(refundNos.slice(0, REFUNDS_NOT_BILLED).sort());
    // The day's payments, then the day's refund requests: 16 shards each.
    expect(queries.map((command) => command.index)).toEqual([...Array(16).fill('paidByDay'), ...Array(16).fill('refundsByRequestDay')]);
    expect(recorder.commands.filter((command) => command.command === 'Scan')).toEqual([]);
    const again = await reconcileDay(billDay, ctx);
    expect(again.counts).toEqual({
      billRows: ORDERS + billedRefunds,
      matched: ORDERS + billedRefunds,
      repaired: 0,
      missingFromBill: REFUNDS_NOT_BILLED,
      amountMismatches: 0,
    });
    reportFigures('reconciliation', {
      ordersThatDay: ORDERS,
      ordersAnotherDay: OTHER_DAY_ORDERS,
      lostCallbacks: LOST,
      refundsThatDay: REFUNDS,
      refundsNotInBill: REFUNDS_NOT_BILLED,
      repaired: report.counts.repaired,
      runMs,
      dynamodbRequests: recorder.commands.length,
      indexQueries: queries.length,
      rerunChanged: again.counts.repaired,
      seedSeconds,
    });
  }, 900_000);
});
