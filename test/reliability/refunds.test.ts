import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { outRefundNoFor, refundClaimFor, requestRefund, parseRefundRequest } from '../../lib/orders/refunds';
import { ordersContext } from '../../lib/runtime';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { refund } from '../support/api';
import { paidOrder } from '../support/orders';
import { localCertificates, splitPem } from '../support/emulator';
import { sleep } from '../support/eventually';
import { startTestStack, type SimRefund, type TestStack } from '../support/stack';
import { FAULT_KINDS, FULL, injectFault, reportFigures, requestPk, scale, scanTable, type FaultKind } from './support';
import { wechatPayV2Gateways } from '../../lib/gateways/wechatpay-v2/gateway';

/**
 * One refund request is one refund, whatever fails: concurrent requests never refund more than the
 * order, and a DynamoDB or WeChat Pay fault at any step ends, once the retries and the recovery
 * schedule have run, with exactly one refund per request at WeChat Pay (the emulator), the same
 * refunded amount here and there, and no amount left reserved by a refund that is not under way.
 */
let stack: TestStack;
let ctx: OrdersContext;
const figures = {
  concurrentRequests: 0,
  concurrentAccepted: 0,
  concurrentRefusedOverAmount: 0,
  concurrentRefundedHere: 0,
  concurrentRefundedAtWechatPay: 0,
  refundRequests: 0,
  dynamoFaultsInjected: 0,
  wechatPayFaults: 0,
  requestsAnswered5xx: 0,
  requestsRetried: 0,
  callbacksAnsweredFail: 0,
  recoveryRuns: 0,
  refundsResentByRecovery: 0,
  refundsSettledByRecovery: 0,
  ordersChecked: 0,
  ordersDisagreeing: 0,
};

beforeAll(async () => {
  stack = await startTestStack({ refunds: true });
  ctx = await ordersContext();
});
afterAll(async () => {
  reportFigures('refunds', figures);
  await stack?.close();
});

let clock = 0;
/** A context whose clock is past every refund check so far: each call moves on by two hours. */
function nextRun(): OrdersContext {
  clock += 2 * 3_600_000;
  const offset = clock;
  return { ...ctx, now: () => new Date(Date.now() + offset) };
}

/** Runs recovery until every refund of the order has ended here and at WeChat Pay (or gives up). */
async function settleEverything(id: string): Promise<void> {
  for (let run = 0; run < 12; run += 1) {
    const sim = await stack.sim.order(id);
    const stored = await ctx.store.get(id);
    const open = Object.values(stored?.refunds ?? {}).filter((r) => r.status === 'PROCESSING').length;
    if (open === 0 && sim.refunds.every((r) => r.refund_status !== 'PROCESSING')) return;
    const summary = await recoverOrders(nextRun(), { deadline: Date.now() + 20_000 });
    figures.recoveryRuns += 1;
    figures.refundsResentByRecovery += summary.refundsResent;
    figures.refundsSettledByRecovery += summary.refundsSettled;
    await sleep(40);
  }
}

/** The books of one order, here and at WeChat Pay: they must agree, with nothing left reserved. */
async function checkBooks(id: string, expectedRefunds: number) {
  figures.ordersChecked += 1;
  const sim = await stack.sim.order(id);
  const stored = (await ctx.store.get(id))!;
  const refunds = Object.values(stored.refunds ?? {});
  const atWechatPay = sim.refunds.filter((r: SimRefund) => r.refund_status === 'SUCCESS').reduce((sum, r) => sum + r.refund_fee, 0);
  const held = refunds.filter((r) => r.status !== 'FAILED' && r.status !== 'REFUNDCLOSE').reduce((sum, r) => sum + r.refundFee, 0);
  const agree =
    sim.refunds.length === expectedRefunds &&
    (stored.refundedFee ?? 0) === atWechatPay &&
    (stored.refundHeldFee ?? 0) === held &&
    refunds.every((r) => r.status !== 'PROCESSING') &&
    (stored.openRefunds ?? 0) === 0 &&
    stored.refundShard === undefined;
  if (!agree) figures.ordersDisagreeing += 1;
  expect(sim.refunds, id).toHaveLength(expectedRefunds);
  expect(stored.refundedFee ?? 0).toBe(atWechatPay);
  expect(stored.refundHeldFee ?? 0).toBe(held);
  expect(refunds.filter((r) => r.status === 'PROCESSING')).toEqual([]);
  expect(stored.openRefunds ?? 0).toBe(0);
  expect(stored.refundShard).toBeUndefined();
  // Every refund at WeChat Pay is one this order knows, with the same amount.
  for (const r of sim.refunds) expect(stored.refunds?.[r.out_refund_no]?.refundFee).toBe(r.refund_fee);
  return { sim, stored };
}

describe('concurrent refunds', () => {
  it('20 concurrent refunds of 10 fen on a 100-fen order: never over 100 at WeChat Pay or here, and the two agree', async () => {
    const rounds = scale(1, 5);
    for (let round = 0; round < rounds; round += 1) {
      const id = await paidOrder(stack.sim, 100);
      const answers = await Promise.all(Array.from({ length: 20 }, () => refund(id, { refundFee: 10, idempotencyKey: randomUUID() })));
      figures.concurrentRequests += answers.length;
      const accepted = answers.filter((a) => a.status === 202);
      const refused = answers.filter((a) => a.status === 409);
      figures.concurrentAccepted += accepted.length;
      figures.concurrentRefusedOverAmount += refused.length;
      expect(accepted).toHaveLength(10);
      expect(refused.every((a) => a.body.error.code === 'REFUND_EXCEEDS_AMOUNT')).toBe(true);
      expect(refused).toHaveLength(10);
      // Never more held than the amount, at any moment after the requests.
      expect((await ctx.store.get(id))?.refundHeldFee).toBe(100);
      // WeChat Pay takes one refund of an order a minute: the others are sent again by recovery.
      await settleEverything(id);
      const { sim, stored } = await checkBooks(id, 10);
      // No request was refused NOTENOUGH: nobody asked WeChat Pay for more than was left.
      expect(Object.values(stored.refunds ?? {}).filter((r) => r.status === 'FAILED')).toEqual([]);
      expect(stored).toMatchObject({ status: 'REFUNDED', refundedFee: 100 });
      figures.concurrentRefundedHere += stored.refundedFee ?? 0;
      figures.concurrentRefundedAtWechatPay += sim.refunds.reduce((sum, r) => sum + r.refund_fee, 0);
    }
  });
});

const KINDS: FaultKind[] = FULL ? FAULT_KINDS : ['ThrottlingException', 'InternalServerError'];

describe('a DynamoDB fault at every step of a refund request', () => {
  for (const timing of ['before', 'after'] as const) {
    for (const kind of KINDS) {
      it(`${kind} ${timing} each request: a retry answers the same refund; in the end one refund, the books agree`, async () => {
        for (let nth = 1; nth < 12; nth += 1) {
          const id = await paidOrder(stack.sim, 100);
          const body = { refundFee: 40, idempotencyKey: randomUUID() };
          const claim = `refund#${refundClaimFor(body.idempotencyKey)}`;
          const fault = injectFault(ctx.store.db, {
            kind,
            timing,
            nth,
            matches: (_action, input) => [id, claim].includes(requestPk(input) ?? ''),
          });
          const first = await refund(id, body);
          fault.stop();
          figures.refundRequests += 1;
          if (!fault.state.fired) {
            expect(first.status, first.raw).toBe(202);
            await settleEverything(id);
            await checkBooks(id, 1);
            expect(nth).toBeGreaterThan(3);
            break;
          }
          figures.dynamoFaultsInjected += 1;
          if (first.status !== 202) {
            figures.requestsAnswered5xx += 1;
            expect(first.status, first.raw).toBe(503);
            figures.requestsRetried += 1;
            const again = await refund(id, body);
            expect(again.status, again.raw).toBe(202);
            expect(again.body.outRefundNo).toBe(outRefundNoFor(id, body.idempotencyKey));
          }
          await settleEverything(id);
          const { stored } = await checkBooks(id, 1);
          expect(stored.refundedFee).toBe(40);
        }
      });
    }
  }

  it("a fault while the refund callback is recorded: answered FAIL, and WeChat Pay's next attempt records it", async () => {
    for (const timing of ['before', 'after'] as const) {
      const id = await paidOrder(stack.sim, 100);
      // Only the callback's write (the settlement) fails: its condition names the refund's status.
      const fault = injectFault(ctx.store.db, {
        kind: 'ThrottlingException',
        timing,
        nth: 1,
        matches: (action, input) =>
          action === 'UpdateItem' &&
          requestPk(input) === id &&
          /openRefunds - /.test((input as { UpdateExpression?: string }).UpdateExpression ?? ''),
      });
      const answer = await refund(id, { refundFee: 25, idempotencyKey: randomUUID() });
      figures.refundRequests += 1;
      expect(answer.status).toBe(202);
      const sim = await waitForCallbacks(id);
      fault.stop();
      expect(fault.state.fired).toBe(true);
      figures.dynamoFaultsInjected += 1;
      const replies = sim.refunds[0]!.notifications.map((n) => n.return_code);
      if (timing === 'before') expect(replies.slice(0, 2)).toEqual(['FAIL', 'SUCCESS']);
      figures.callbacksAnsweredFail += replies.filter((r) => r === 'FAIL').length;
      await checkBooks(id, 1);
    }
  });
});

/** Waits until the order's refunds have an acknowledged callback each. */
async function waitForCallbacks(id: string) {
  for (let i = 0; i < 200; i += 1) {
    const sim = await stack.sim.order(id);
    if (sim.refunds.length > 0 && sim.refunds.every((r) => r.notifications.some((n) => n.return_code === 'SUCCESS'))) return sim;
    await sleep(20);
  }
  throw new Error(`no acknowledged refund callback for ${id}`);
}

describe('WeChat Pay faults at every step of a refund', () => {
  /** The product's context with a WeChat Pay client that gives up after 150 ms. */
  const impatient = (): OrdersContext => {
    const certs = localCertificates(TEST_MERCHANT.mchId);
    return {
      ...ctx,
      gatewayFor: wechatPayV2Gateways(
        { ...ctx.config, baseUrl: stack.emulator.url },
        {
          secapiBaseUrl: stack.emulator.secapiUrl,
          clientCertificate: async () => ({ ...splitPem(certs.clientPem), ca: certs.caPem }),
          timeoutMs: 150,
          maxAttempts: 2,
          retryDelayMs: 10,
        },
      ),
    };
  };

  it('SYSTEMERROR on every attempt of the call: PROCESSING; recovery sends the same out_refund_no again', async () => {
    const id = await paidOrder(stack.sim, 100);
    await stack.sim.faults({ systemError: { refund: 3 } });
    const answer = await refund(id, { refundFee: 30, idempotencyKey: randomUUID() });
    await stack.sim.faults({ systemError: { refund: 0 } });
    figures.refundRequests += 1;
    figures.wechatPayFaults += 3;
    expect(answer.body.status).toBe('PROCESSING');
    expect((await stack.sim.order(id)).refunds).toEqual([]);
    await settleEverything(id);
    const { sim } = await checkBooks(id, 1);
    expect(sim.refunds[0]!.out_refund_no).toBe(answer.body.outRefundNo);
  });

  it('the call times out after WeChat Pay took it: PROCESSING; the retried request and recovery make no second refund', async () => {
    const id = await paidOrder(stack.sim, 100);
    const key = randomUUID();
    await stack.sim.faults({ delayMs: 400 });
    let answer;
    try {
      answer = await requestRefund(parseRefundRequest(id, { refundFee: 30, idempotencyKey: key }), impatient());
    } finally {
      await stack.sim.faults({ delayMs: 0 });
    }
    figures.refundRequests += 1;
    figures.wechatPayFaults += 2;
    expect(answer.status).toBe('PROCESSING');
    figures.requestsRetried += 1;
    const again = await refund(id, { refundFee: 30, idempotencyKey: key });
    expect(again.body.outRefundNo).toBe(answer.outRefundNo);
    await settleEverything(id);
    await checkBooks(id, 1);
  });

  it('every callback lost: recovery learns the end from refundquery', async () => {
    const id = await paidOrder(stack.sim, 100);
    await stack.sim.faults({ dropNotifies: 1_000_000 });
    try {
      const answer = await refund(id, { refundFee: 100, idempotencyKey: randomUUID() });
      figures.refundRequests += 1;
      expect(answer.body.status).toBe('PROCESSING');
      await sleep(50);
      figures.wechatPayFaults += 1;
      await settleEverything(id);
    } finally {
      await stack.sim.faults({ dropNotifies: 0 });
    }
    const { stored } = await checkBooks(id, 1);
    expect(stored.status).toBe('REFUNDED');
  });

  it('refundquery SYSTEMERRORs: the refund stays PROCESSING until a later run reads it', async () => {
    const id = await paidOrder(stack.sim, 100);
    await stack.sim.faults({ dropNotifies: 1_000_000, systemError: { refundquery: 1_000 } });
    try {
      const answer = await refund(id, { refundFee: 60, idempotencyKey: randomUUID() });
      figures.refundRequests += 1;
      await sleep(50);
      const summary = await recoverOrders(nextRun(), { deadline: Date.now() + 10_000 });
      figures.recoveryRuns += 1;
      expect(summary.refundErrors).toBeGreaterThanOrEqual(1);
      figures.wechatPayFaults += 1;
      expect((await ctx.store.get(id))?.refunds?.[answer.body.outRefundNo as string]?.status).toBe('PROCESSING');
      await stack.sim.faults({ systemError: { refundquery: 0 } });
      await settleEverything(id);
    } finally {
      await stack.sim.faults({ dropNotifies: 0, systemError: { refundquery: 0 } });
    }
    await checkBooks(id, 1);
  });

  it('REFUNDCLOSE and CHANGE from WeChat Pay: the books agree (a closed refund holds nothing)', async () => {
    for (const outcome of ['REFUNDCLOSE', 'CHANGE'] as const) {
      const id = await paidOrder(stack.sim, 100);
      await stack.sim.faults({ refundOutcome: outcome });
      try {
        await refund(id, { refundFee: 50, idempotencyKey: randomUUID() });
        figures.refundRequests += 1;
        await waitForCallbacks(id);
      } finally {
        await stack.sim.faults({ refundOutcome: 'SUCCESS' });
      }
      const { stored } = await checkBooks(id, 1);
      expect(stored.refundHeldFee).toBe(outcome === 'CHANGE' ? 50 : 0);
    }
  });

  it('nothing the table holds is left reserved by a refund that is not under way', async () => {
    const rows = Object.values(await scanTable(stack)).filter((row) => row.refunds !== undefined) as Array<{
      pk: string;
      totalFee: number;
      refundHeldFee?: number;
      refunds: Record<string, { status: string; refundFee: number }>;
    }>;
    for (const row of rows) {
      const held = Object.values(row.refunds)
        .filter((r) => r.status !== 'FAILED' && r.status !== 'REFUNDCLOSE')
        .reduce((sum, r) => sum + r.refundFee, 0);
      expect(row.refundHeldFee ?? 0, row.pk).toBe(held);
      expect(held).toBeLessThanOrEqual(row.totalFee);
    }
  });
});
