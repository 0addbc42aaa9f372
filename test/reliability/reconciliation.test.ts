/**
 * Reconciliation at size: a day of N paid orders (some whose callbacks were lost) beside another
 * day's orders, reconciled in one run that reads only that day's index. CI size here; the full size
 * (`npm run test:reliability`) is 10,000 orders a day and prints the time and reads.
 */
import { describe, expect, it } from 'vitest';
import { reconcileDay } from '../../lib/orders/reconcile';
import type { OrdersContext } from '../../lib/orders/context';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { create } from '../support/api';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { inParallel, recordCommands, reportFigures, scale } from './support';

const ORDERS = scale(300, 10_000);
const OTHER_DAY_ORDERS = scale(60, 1_000);
const LOST = scale(20, 100);

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);

async function payOn(outTradeNo: string, billDay: string) {
  const answer = await fetch(`${stack.emulator.url}/__sim/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ out_trade_no: outTradeNo, time_end: `${billDay}12${String(Math.floor(Math.random() * 60)).padStart(2, '0')}00` }),
  });
  expect(answer.status).toBe(200);
}

describe('reconciliation at size', () => {
  it(`${ORDERS} payments in a day (${LOST} callbacks lost) beside ${OTHER_DAY_ORDERS} of another day: one run repairs the lost ones and reads only that day`, async () => {
    const billDay = day(1);
    const seedStarted = Date.now();
    const orders = await inParallel(Array.from({ length: ORDERS + OTHER_DAY_ORDERS }, (_, i) => i), 16, async (i) => {
      const created = await create({ tradeType: 'APP', totalFee: 100 + (i % 900), description: `day ${i}` });
      expect(created.status, created.raw).toBe(201);
      return created.body.outTradeNo as string;
    });
    await inParallel(orders.slice(LOST, ORDERS), 16, (outTradeNo) => payOn(outTradeNo, billDay));
    await inParallel(orders.slice(ORDERS), 16, (outTradeNo) => payOn(outTradeNo, day(2)));
    // Every delivered callback recorded before the bill is read.
    for (;;) {
      if ((await ctx.store.paidOnDay(billDay)).length === ORDERS - LOST) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Then LOST more payments that day whose callbacks never arrive (and recovery does not run).
    await stack.sim.faults({ dropNotifies: 1_000_000_000 });
    await inParallel(orders.slice(0, LOST), 16, (outTradeNo) => payOn(outTradeNo, billDay));
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
    expect(report).toMatchObject({ status: 'MATCHED', counts: { billRows: ORDERS, matched: ORDERS - LOST, repaired: LOST, missingFromBill: 0, amountMismatches: 0 } });
    expect(queries.every((command) => command.index === 'paidByDay')).toBe(true);
    expect(recorder.commands.filter((command) => command.command === 'Scan')).toEqual([]);
    const again = await reconcileDay(billDay, ctx);
    expect(again.counts).toEqual({ billRows: ORDERS, matched: ORDERS, repaired: 0, missingFromBill: 0, amountMismatches: 0 });
    reportFigures('reconciliation', {
      ordersThatDay: ORDERS,
      ordersAnotherDay: OTHER_DAY_ORDERS,
      lostCallbacks: LOST,
      repaired: report.counts.repaired,
      runMs,
      dynamodbRequests: recorder.commands.length,
      indexQueries: queries.length,
      rerunChanged: again.counts.repaired,
      seedSeconds,
    });
  }, 900_000);
});
