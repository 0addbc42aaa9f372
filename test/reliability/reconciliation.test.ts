/**
 * Reconciliation at size: a day of N paid orders (some whose callbacks were lost) beside another
 * day's orders, reconciled in one run that reads only that day's index. CI size here; the full size
 * (`npm run test:reliability`) is 10,000 orders a day and prints the time and reads. The days are
 * seeded by copies of orders made through the handlers (test/support/seed.ts); `npm run bench`
 * measures the same at 1,000 and 10,000.
 */
import { describe, expect, it } from 'vitest';
import { reconcileDay } from '../../lib/orders/reconcile';
import type { OrdersContext } from '../../lib/orders/context';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { seedPaidDay } from '../support/seed';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { recordCommands, reportFigures, scale } from './support';

const ORDERS = scale(300, 10_000);
const OTHER_DAY_ORDERS = scale(60, 1_000);
const LOST = scale(20, 100);

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);

describe('reconciliation at size', () => {
  it(`${ORDERS} payments in a day (${LOST} callbacks lost) beside ${OTHER_DAY_ORDERS} of another day: one run repairs the lost ones and reads only that day`, async () => {
    const billDay = day(1);
    const seedStarted = Date.now();
    await seedPaidDay(stack, { day: billDay, orders: ORDERS, lost: LOST });
    await seedPaidDay(stack, { day: day(2), orders: OTHER_DAY_ORDERS, lost: 0 });
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    expect((await ctx.store.paidOnDay(billDay)).length).toBe(ORDERS - LOST);

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
  }, 120_000);
});
