import { describe, expect, it } from 'vitest';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders, type RecoverySummary } from '../../lib/orders/recovery';
import type { SimOrder, TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { countPaidTransitions, inParallel, reportFigures, scale, scanTable } from './support';
import { callback, create, get } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { sleep } from '../support/eventually';
import { deliveriesById, eventsOf } from '../support/events';
import { eventId } from '../../lib/orders/events';

const ORDERS = scale(200, 1_000);
const COPIES = 10;

let stack: TestStack;
let ctx: OrdersContext;

useTestStack((started) => ({ stack, ctx } = started));

const TRADE_TYPES = [
  { tradeType: 'JSAPI', openid: 'oLoadTestOpenid_0123456789' },
  { tradeType: 'NATIVE' },
  { tradeType: 'MWEB', sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' } } },
  { tradeType: 'APP' },
] as const;

describe('load', () => {
  it(`${ORDERS} orders, each paid once and called back ${COPIES} times at once, while recovery runs and clients poll: exactly ${ORDERS} transitions to PAID, and one Order Paid event id for each`, async () => {
    const started = Date.now();
    const transitions = countPaidTransitions(ctx.store.db);
    try {
      const ids = await inParallel(
        Array.from({ length: ORDERS }, (_, i) => i),
        16,
        async (i) => {
          const created = await create({ totalFee: 100 + i, description: `load ${i}`, ...TRADE_TYPES[i % TRADE_TYPES.length] });
          expect(created.status, created.raw).toBe(201);
          return created.body.outTradeNo as string;
        },
      );
      const fees = new Map(ids.map((id, i) => [id, 100 + i]));
      const createdMs = Date.now() - started;

      // WeChat Pay's own deliveries are dropped; each payment's callback is delivered here instead,
      // COPIES identical copies at once straight to the notify handler (WeChat Pay calls back from
      // several servers within seconds), so every copy surely reaches it.
      await stack.sim.faults({ dropNotifies: 1_000_000_000 });
      let finished = false;

      // The recovery schedule, run back to back; each run sees the clock a minute further on, so
      // every run finds orders due (a run moves each order it looks at to its next check).
      const runs: RecoverySummary[] = [];
      const recovery = (async () => {
        for (let run = 0; !finished && run < 20; run += 1) {
          const later: OrdersContext = { ...ctx, now: () => new Date(Date.now() + 10_000 + run * 60_000) };
          runs.push(await recoverOrders(later, { deadline: Date.now() + 10_000 }));
        }
      })();

      // Clients following their orders.
      let polls = 0;
      const paidSeenAt = new Map<string, number>();
      const pollers = Promise.all(
        Array.from({ length: 8 }, async (_, p) => {
          while (!finished) {
            const id = ids[(p * 7919 + polls * 31) % ids.length]!;
            polls += 1;
            const askedAt = performance.now();
            const answer = await get(id);
            expect(answer.status, answer.raw).toBe(200);
            expect(answer.body).not.toHaveProperty('openid');
            // Once a client was told PAID, no later question is answered otherwise.
            if (askedAt > (paidSeenAt.get(id) ?? Infinity)) expect(answer.body.status, id).toBe('PAID');
            if (answer.body.status === 'PAID' && !paidSeenAt.has(id)) paidSeenAt.set(id, performance.now());
            await sleep(2);
          }
        }),
      ).then(
        () => undefined,
        (error: unknown) => {
          finished = true;
          return error;
        },
      );

      // Every user pays once; WeChat Pay calls back COPIES times at once.
      const sims = new Map<string, SimOrder>();
      const replies: string[] = [];
      await inParallel(ids, 8, async (id) => {
        expect((await stack.sim.pay(id)).status).toBe(200);
        const sim = await stack.sim.order(id);
        sims.set(id, sim);
        const document = paidCallback(id, fees.get(id)!, {
          transaction_id: sim.transaction_id,
          time_end: (sim as { time_end?: string }).time_end,
        });
        const answers = await Promise.all(Array.from({ length: COPIES }, () => callback(document)));
        for (const answer of answers) replies.push(answer.returnCode ?? 'none');
      });
      finished = true;
      const [, pollerError] = await Promise.all([recovery, pollers]);
      if (pollerError) throw pollerError;
      const elapsedMs = Date.now() - started;

      // The independent count: accepted UpdateItem requests that set PAID, per order.
      const counted = [...transitions.counts.values()].reduce((a, b) => a + b, 0);
      const doubled = [...transitions.counts].filter(([, count]) => count > 1).map(([id]) => id);
      const lost = ids.filter((id) => !transitions.counts.has(id));
      expect(doubled).toEqual([]);
      expect(lost).toEqual([]);
      expect(counted).toBe(ORDERS);
      expect(new Set(transitions.counts.keys())).toEqual(new Set(ids));

      // The rows agree with WeChat Pay.
      const rows = await scanTable(stack);
      const byPath: Record<string, number> = {};
      for (const id of ids) {
        const row = rows[id]!;
        const sim = sims.get(id)!;
        expect(row).toMatchObject({ status: 'PAID', totalFee: fees.get(id), transactionId: sim.transaction_id, review: {} });
        expect(row).not.toHaveProperty('pendingShard');
        byPath[row.paidVia as string] = (byPath[row.paidVia as string] ?? 0) + 1;
      }

      // Every copy got SUCCESS: a duplicate is acknowledged, never refused.
      const failed = replies.filter((code) => code !== 'SUCCESS');
      expect(failed).toEqual([]);
      expect(replies).toHaveLength(ORDERS * COPIES);

      // Events: once the confirmations in flight have ended and the schedule has run once more, every
      // transition's event is on the bus, under the id derived from it, and no outbox holds anything.
      await stack.events.settled();
      runs.push(await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 5 * 60_000) }, { deadline: Date.now() + 30_000 }));
      await stack.events.settled();
      const events = eventsOf(stack).filter((event) => fees.has(event.detail.outTradeNo as string));
      const deliveries = deliveriesById(events);
      expect(events.filter((event) => event['detail-type'] !== 'Order Paid')).toEqual([]);
      const eventLost: string[] = [];
      const eventIdsNotOne: string[] = [];
      for (const id of ids) {
        const ofOrder = new Set(events.filter((event) => event.detail.outTradeNo === id).map((event) => event.detail.eventId));
        if (!ofOrder.has(eventId(id, 'Order Paid', sims.get(id)!.transaction_id))) eventLost.push(id);
        if (ofOrder.size !== 1) eventIdsNotOne.push(id);
      }
      expect(eventLost).toEqual([]);
      expect(eventIdsNotOne).toEqual([]);
      expect(deliveries.size).toBe(counted);
      const waiting = ids.filter((id) => rows[id]!.outboxShard !== undefined);
      const afterSweep = await scanTable(stack);
      expect(ids.filter((id) => afterSweep[id]!.outboxShard !== undefined || (afterSweep[id]!.outbox as unknown[]).length > 0)).toEqual([]);

      const summary = runs.reduce(
        (sum, run) => ({ repaired: sum.repaired + run.repaired, examined: sum.examined + run.examined, errors: sum.errors + run.errors }),
        { repaired: 0, examined: 0, errors: 0 },
      );
      const republished = runs.reduce((sum, run) => sum + (run.events?.republished ?? 0), 0);
      reportFigures('load', {
        orders: ORDERS,
        callbacksDelivered: replies.length,
        callbacksFailed: failed.length,
        paidTransitionsCounted: counted,
        lost: lost.length,
        doubled: doubled.length,
        paidVia: byPath,
        clientPolls: polls,
        recoveryRuns: runs.length,
        recoveryExamined: summary.examined,
        recoveryRepaired: summary.repaired,
        recoveryErrors: summary.errors,
        events: {
          transitions: counted,
          eventsDelivered: events.length,
          distinctEventIds: deliveries.size,
          lost: eventLost.length,
          duplicatedIds: [...deliveries.values()].filter((count) => count > 1).length,
          unconfirmedAfterCallbacks: waiting.length,
          republishedBySweep: republished,
        },
        createMs: createdMs,
        totalMs: elapsedMs,
      });
    } finally {
      transitions.stop();
    }
  }, 300_000);
});
