import { beforeEach, describe, expect, it } from 'vitest';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { handler as recoverOrdersHandler } from '../../../functions/recoverOrders';
import { recoverOrders, type RecoverySummary } from '../../../lib/orders/recovery';
import { applyQueryResult } from '../../../lib/orders/settle';
import type { OrdersContext } from '../../../lib/orders/context';
import { create as createMerchantOrder } from '../../support/api';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';

let stack: TestStack;
let ctx: OrdersContext;

useTestStack((started) => ({ stack, ctx } = started));
beforeEach(async () => {
  await stack.sim.reset();
  // Every callback is lost: only recovery can learn of payments.
  await stack.sim.faults({ dropNotifies: 1_000_000 });
});

async function create(totalFee = 100): Promise<string> {
  const { body } = await createMerchantOrder({ tradeType: 'NATIVE', totalFee, description: 'recovery' });
  // A failed unified order still names the order it stored.
  return body.outTradeNo ?? body.error.outTradeNo;
}

/** The same context seen from later on: recovery's notion of "due" and "expired" moves with it. */
function later(ms: number): OrdersContext {
  return { ...ctx, now: () => new Date(Date.now() + ms) };
}

const soon = () => ({ deadline: Date.now() + 20_000 });

/** Counts the DynamoDB requests and items read by one recovery run. */
async function countedRun(run: () => Promise<RecoverySummary>) {
  const counts = { queries: 0, itemsRead: 0 };
  const name = `count-${Math.random()}`;
  ctx.store.db.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'QueryCommand') {
        counts.queries += 1;
        counts.itemsRead += (result.output as { Count?: number }).Count ?? 0;
      }
      return result;
    },
    { step: 'initialize', name },
  );
  try {
    return { summary: await run(), ...counts };
  } finally {
    ctx.store.db.middlewareStack.remove(name);
  }
}

describe('recovery', () => {
  it('paid orders whose callbacks were all lost become PAID through the scheduled handler alone', async () => {
    const orders = await Promise.all([create(), create(), create()]);
    for (const outTradeNo of orders) expect((await stack.sim.pay(outTradeNo)).status).toBe(200);
    // The first check comes after a short grace period left to the callback.
    await new Promise((resolve) => setTimeout(resolve, 5_200));
    const summary = await recoverOrdersHandler({} as never);
    expect(summary.repaired).toBeGreaterThanOrEqual(3);
    for (const outTradeNo of orders) {
      const stored = await ctx.store.get(outTradeNo);
      expect(stored).toMatchObject({ status: 'PAID', paidVia: 'recovery' });
      expect(stored).not.toHaveProperty('pendingShard');
    }
  });

  it('expired unpaid orders are closed with WeChat Pay, then CLOSED', async () => {
    const outTradeNo = await create();
    // WeChat Pay closes no order younger than 5 minutes: 300 ms on the emulator's scaled clock.
    await new Promise((resolve) => setTimeout(resolve, 350));
    const summary = await recoverOrders(later(31 * 60_000), soon());
    expect(summary.closed).toBeGreaterThanOrEqual(1);
    expect(await ctx.store.get(outTradeNo)).toMatchObject({ status: 'CLOSED' });
    const sim = await stack.sim.order(outTradeNo);
    expect(sim.trade_state).toBe('CLOSED');
    expect(sim.calls.filter((c) => c.endpoint === 'closeorder')).toHaveLength(1);
  });

  it('a pending order that is not yet expired is left and checked again later', async () => {
    const outTradeNo = await create();
    const summary = await recoverOrders(later(10_000), soon());
    expect(summary.left).toBeGreaterThanOrEqual(1);
    const stored = await ctx.store.get(outTradeNo);
    expect(stored?.status).toBe('PENDING');
    expect(stored?.checkCount).toBe(1);
    expect(stored?.nextCheckAt).toBe(Date.parse(stored!.createdAt) + 30_000);
  });

  it('an order that never reached WeChat Pay is closed once expired', async () => {
    await stack.sim.faults({ systemError: { unifiedorder: 100 } });
    const outTradeNo = await create();
    expect((await ctx.store.get(outTradeNo))?.prepayId).toBeUndefined();
    expect((await recoverOrders(later(60_000), soon())).closed).toBe(0);
    const summary = await recoverOrders(later(31 * 60_000), soon());
    expect(summary.closed).toBeGreaterThanOrEqual(1);
    expect(await ctx.store.get(outTradeNo)).toMatchObject({ status: 'CLOSED', closeReason: 'expired; never reached WeChat Pay' });
  });

  it('a SYSTEMERROR leaves the order pending for a later run', async () => {
    const outTradeNo = await create();
    await stack.sim.pay(outTradeNo);
    await stack.sim.faults({ systemError: { orderquery: 1_000 } });
    const summary = await recoverOrders(later(10_000), soon());
    expect(summary.errors).toBeGreaterThanOrEqual(1);
    expect((await ctx.store.get(outTradeNo))?.status).toBe('PENDING');
    await stack.sim.faults({ systemError: { orderquery: 0 } });
    await recoverOrders(later(40_000), soon());
    expect((await ctx.store.get(outTradeNo))?.status).toBe('PAID');
  });

  it('a payment refunded before it was recorded (trade_state REFUND) is still recorded PAID, not queried forever', async () => {
    const outTradeNo = await create(100);
    const order = (await ctx.store.get(outTradeNo))!;
    // The emulator has no refunds yet: this is the answer WeChat Pay gives for such an order.
    const refunded = { tradeState: 'REFUND', transactionId: '4200000000202611230000000077', totalFee: 100 };
    const after = await applyQueryResult(order, refunded, 'recovery', ctx);
    expect(after).toMatchObject({ status: 'PAID', transactionId: '4200000000202611230000000077', paidVia: 'recovery' });
  });

  it('two concurrent runs double nothing', async () => {
    const orders = await Promise.all(Array.from({ length: 6 }, () => create()));
    for (const outTradeNo of orders) await stack.sim.pay(outTradeNo);
    const [a, b] = await Promise.all([recoverOrders(later(10_000), soon()), recoverOrders(later(10_000), soon())]);
    expect(a.repaired + b.repaired).toBeGreaterThanOrEqual(6);
    for (const outTradeNo of orders) {
      expect((await ctx.store.get(outTradeNo))?.status).toBe('PAID');
      const queries = (await stack.sim.order(outTradeNo)).calls.filter((c) => c.endpoint === 'orderquery');
      expect(queries).toHaveLength(1);
    }
  });

  it('stops taking up orders at the deadline', async () => {
    await create();
    const summary = await recoverOrders(later(10_000), { deadline: Date.now() - 1 });
    expect(summary).toMatchObject({ examined: 0, stoppedEarly: true });
  });

  it('20,000 settled orders beside 50 pending cost the same reads as 50 pending alone', async () => {
    // Settle everything left by earlier tests, then make 50 pending orders due.
    await recoverOrders(later(60 * 60_000), soon());
    await Promise.all(Array.from({ length: 50 }, () => create()));
    // The same 50 due orders read before seeding and again (each run moves their next check) after.
    const before = await countedRun(() => recoverOrders(later(35_000), soon()));
    const settled = Array.from({ length: 20_000 }, (_, i) => ({
      pk: `SETTLED${String(i).padStart(8, '0')}`,
      outTradeNo: `SETTLED${String(i).padStart(8, '0')}`,
      status: 'PAID',
      totalFee: 100,
      review: {},
    }));
    for (let i = 0; i < settled.length; i += 25) {
      const batch = settled.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      await ctx.store.db.send(new BatchWriteCommand({ RequestItems: { [stack.table]: batch } }));
    }
    const after = await countedRun(() => recoverOrders(later(65_000), soon()));
    expect(before.itemsRead).toBe(50);
    expect(after.itemsRead).toBe(50);
    expect(after.queries).toBe(before.queries);
  }, 120_000);
});
