import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrdersContext } from '../../lib/orders/context';
import { createOrder } from '../../lib/orders/create';
import { parseMerchantOrderRequest } from '../../lib/orders/create-request';
import { PaymentProviderError } from '../../lib/orders/errors';
import { followOrder, QUERY_INTERVAL_MS } from '../../lib/orders/query';
import { recoverOrders } from '../../lib/orders/recovery';
import { ordersContext } from '../../lib/runtime';
import { startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { countPaidTransitions, dynamoError, FAULT_KINDS, injectFault, reportFigures, requestPk, scanTable } from './support';
import { callback, create, get } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { sleep } from '../support/eventually';
import { wechatPayV2Gateways } from '../../lib/gateways/wechatpay-v2/gateway';

let stack: TestStack;
let ctx: OrdersContext;
let transitions: ReturnType<typeof countPaidTransitions>;
/** Every order a test paid in the emulator: each must end PAID, through exactly one transition. */
const paidOrders = new Set<string>();
const figures = {
  faultsInjected: 0,
  callbacksAnsweredFail: 0,
  callbacksSucceededOnRetry: 0,
  createsAnswered5xx: 0,
  createsSucceededOnRetry: 0,
  queriesFaulted: 0,
  recoveryRunsFaulted: 0,
  wechatPayFaults: 0,
};

beforeAll(async () => {
  stack = await startTestStack();
  ctx = await ordersContext();
  transitions = countPaidTransitions(ctx.store.db);
  // WeChat Pay's own callbacks are lost unless a test says otherwise: the tests deliver them.
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
});

afterAll(async () => {
  if (stack) {
    // Every paid order ended PAID, through exactly one accepted PENDING → PAID write.
    const rows = await scanTable(stack);
    const notPaid = [...paidOrders].filter((id) => rows[id]?.status !== 'PAID');
    const notOnce = [...paidOrders].filter((id) => transitions.counts.get(id) !== 1);
    transitions.stop();
    reportFigures('faults', {
      ...figures,
      paidOrders: paidOrders.size,
      endedPaid: paidOrders.size - notPaid.length,
      transitionsNotExactlyOne: notOnce.length,
    });
    await stack.close();
    expect(notPaid).toEqual([]);
    expect(notOnce).toEqual([]);
  }
});

const TIMINGS = ['before', 'after'] as const;
const onOrder = (id: string) => (_action: string, input: Parameters<typeof requestPk>[0]) => requestPk(input) === id;

async function newOrder(extra: Record<string, unknown> = {}) {
  const created = await create({ tradeType: 'NATIVE', totalFee: 321, description: 'faults', ...extra });
  expect(created.status, created.raw).toBe(201);
  return created.body.outTradeNo as string;
}

/** The user pays in the emulator; answers the signed callback WeChat Pay would send. */
async function pay(id: string, fee = 321): Promise<string> {
  expect((await stack.sim.pay(id)).status).toBe(200);
  paidOrders.add(id);
  const sim = await stack.sim.order(id);
  return paidCallback(id, fee, { transaction_id: sim.transaction_id });
}

const later = (ms: number): OrdersContext => ({ ...ctx, now: () => new Date(Date.now() + ms) });

describe('DynamoDB errors and throttling at each step of a payment callback', () => {
  for (const scenario of ['first callback', 'duplicate callback'] as const) {
    for (const timing of TIMINGS) {
      for (const kind of FAULT_KINDS) {
        it(`${scenario}, ${kind} ${timing} the request: answered FAIL, and WeChat Pay's retry succeeds`, async () => {
          for (let nth = 1; nth < 10; nth += 1) {
            const id = await newOrder();
            const document = await pay(id);
            if (scenario === 'duplicate callback') expect((await callback(document)).returnCode).toBe('SUCCESS');
            const fault = injectFault(ctx.store.db, { kind, timing, nth, matches: onOrder(id) });
            const reply = await callback(document);
            fault.stop();
            expect(reply.status).toBe(200);
            if (!fault.state.fired) {
              // Fewer than nth requests: every step has had its fault.
              expect(reply.returnCode).toBe('SUCCESS');
              expect(nth).toBeGreaterThan(1);
              break;
            }
            figures.faultsInjected += 1;
            if (reply.returnCode === 'SUCCESS') {
              // Only when the payment is durably recorded.
              expect((await ctx.store.get(id))?.status).toBe('PAID');
              continue;
            }
            figures.callbacksAnsweredFail += 1;
            expect(reply.returnMsg).toMatch(/retry/);
            const retried = await callback(document);
            expect(retried.returnCode).toBe('SUCCESS');
            figures.callbacksSucceededOnRetry += 1;
            expect((await ctx.store.get(id))?.status).toBe('PAID');
          }
        });
      }
    }
  }

  it("WeChat Pay's own retry schedule repairs callbacks that failed on throttling", async () => {
    const id = await newOrder();
    // The first attempt's write is throttled; the second's is applied but its answer is lost.
    let writes = 0;
    const name = 'throttle-two-callback-writes';
    ctx.store.db.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UpdateItemCommand' || requestPk(args.input as never) !== id) return next(args);
        writes += 1;
        if (writes === 1) throw dynamoError('ThrottlingException');
        if (writes === 2) {
          await next(args);
          throw dynamoError('ProvisionedThroughputExceededException');
        }
        return next(args);
      },
      { step: 'initialize', name },
    );
    await stack.sim.faults({ dropNotifies: 0 });
    try {
      await stack.sim.pay(id);
      paidOrders.add(id);
      const sim = await eventually(async () => {
        const view = await stack.sim.order(id);
        return view.notifications.some((n) => n.return_code === 'SUCCESS') ? view : undefined;
      });
      // The first two attempts answered FAIL (nothing recorded / recorded but unacknowledged), the third SUCCESS.
      expect(sim.notifications.map((n) => n.return_code)).toEqual(['FAIL', 'FAIL', 'SUCCESS']);
      figures.faultsInjected += 2;
      figures.callbacksAnsweredFail += 2;
      figures.callbacksSucceededOnRetry += 2;
    } finally {
      ctx.store.db.middlewareStack.remove(name);
      await stack.sim.faults({ dropNotifies: 1_000_000_000 });
    }
    expect((await ctx.store.get(id))?.status).toBe('PAID');
  });

  it('a throttle the SDK retries away never reaches the caller', async () => {
    const id = await newOrder();
    const document = await pay(id);
    let thrown = 0;
    const name = 'throttle-once-after-retries';
    ctx.store.db.middlewareStack.add(
      (next, context) => async (args) => {
        if (thrown === 0 && context.commandName === 'UpdateItemCommand') {
          thrown += 1;
          throw dynamoError('ThrottlingException');
        }
        return next(args);
      },
      // Below the SDK's retry middleware: each attempt passes through it.
      { step: 'finalizeRequest', priority: 'low', name },
    );
    try {
      expect((await callback(document)).returnCode).toBe('SUCCESS');
    } finally {
      ctx.store.db.middlewareStack.remove(name);
    }
    expect(thrown).toBe(1);
  });
});

describe('DynamoDB errors at each step of creating an order', () => {
  for (const timing of TIMINGS) {
    for (const kind of FAULT_KINDS) {
      it(`${kind} ${timing} the request: 503, and the same request again gets the same order, which can be paid`, async () => {
        for (let nth = 1; nth < 12; nth += 1) {
          const body = { tradeType: 'NATIVE', totalFee: 321, description: 'faults', idempotencyKey: randomUUID() };
          const fault = injectFault(ctx.store.db, { kind, timing, nth });
          const first = await create(body);
          fault.stop();
          if (!fault.state.fired) {
            expect(first.status, first.raw).toBe(201);
            expect(nth).toBeGreaterThan(3);
            break;
          }
          figures.faultsInjected += 1;
          expect(first.status, `${fault.state.commands.at(-1)}: ${first.raw}`).toBe(503);
          expect(first.body.error?.code).toBe('STORAGE_UNAVAILABLE');
          figures.createsAnswered5xx += 1;
          const again = await create(body);
          expect([200, 201], again.raw).toContain(again.status);
          expect(again.body.pay).toBeDefined();
          figures.createsSucceededOnRetry += 1;
          const id = again.body.outTradeNo as string;
          // One order for the key, and WeChat Pay accepted every unified order (identical parameters).
          const rows = Object.values(await scanTable(stack)).filter((row) => row.idempotencyKey === body.idempotencyKey);
          expect(rows.map((row) => row.pk)).toEqual([id]);
          const sim = await stack.sim.order(id);
          expect(sim.calls.filter((c) => c.endpoint === 'unifiedorder').every((c) => c.result_code === 'SUCCESS')).toBe(true);
          expect((await callback(await pay(id))).returnCode).toBe('SUCCESS');
        }
      });
    }
  }
});

describe('DynamoDB errors while a client follows an order', () => {
  for (const timing of TIMINGS) {
    for (const kind of FAULT_KINDS) {
      it(`${kind} ${timing} a request of GET: 503 or the stored state, and a later GET shows PAID`, async () => {
        for (let nth = 1; nth < 10; nth += 1) {
          const id = await newOrder();
          await pay(id);
          const fault = injectFault(ctx.store.db, { kind, timing, nth, matches: onOrder(id) });
          const answer = await get(id);
          fault.stop();
          if (!fault.state.fired) {
            expect(answer.body.status).toBe('PAID');
            break;
          }
          figures.faultsInjected += 1;
          figures.queriesFaulted += 1;
          if (answer.status === 503) expect(answer.body.error?.code).toBe('STORAGE_UNAVAILABLE');
          else expect(answer.status, answer.raw).toBe(200);
          // A poll after the query interval asks WeChat Pay again.
          const view = await followOrder(id, later(QUERY_INTERVAL_MS + 1));
          expect(view.status).toBe('PAID');
        }
      });
    }
  }
});

describe('DynamoDB errors during a recovery run', () => {
  for (const timing of TIMINGS) {
    for (const kind of FAULT_KINDS) {
      it(`${kind} ${timing} a request about an order: the next run records the payment`, async () => {
        for (let nth = 1; nth < 10; nth += 1) {
          const id = await newOrder();
          await pay(id);
          const fault = injectFault(ctx.store.db, { kind, timing, nth, matches: onOrder(id) });
          await recoverOrders(later(10_000), { deadline: Date.now() + 10_000 }).catch(() => undefined);
          fault.stop();
          if (!fault.state.fired) {
            expect((await ctx.store.get(id))?.status).toBe('PAID');
            break;
          }
          figures.faultsInjected += 1;
          figures.recoveryRunsFaulted += 1;
          // The order was moved to its next check (30 s after creation) before the fault, or not at all.
          await recoverOrders(later(40_000), { deadline: Date.now() + 10_000 });
          expect((await ctx.store.get(id))?.status).toBe('PAID');
        }
      });
    }
  }

  it('a failed index query fails the run; the next run repairs', async () => {
    const id = await newOrder();
    await pay(id);
    const fault = injectFault(ctx.store.db, {
      kind: 'InternalServerError',
      timing: 'before',
      nth: 1,
      matches: (action) => action === 'Query',
    });
    await expect(recoverOrders(later(10_000), { deadline: Date.now() + 10_000 })).rejects.toThrow(/DynamoDB Query failed/);
    fault.stop();
    figures.faultsInjected += 1;
    figures.recoveryRunsFaulted += 1;
    const summary = await recoverOrders(later(10_000), { deadline: Date.now() + 10_000 });
    expect(summary.repaired).toBeGreaterThanOrEqual(1);
    expect((await ctx.store.get(id))?.status).toBe('PAID');
  });
});

describe('WeChat Pay SYSTEMERRORs and timeouts', () => {
  /** The product's context with a WeChat Pay client that gives up after 150 ms. */
  const impatient = (): OrdersContext => {
    return {
      ...ctx,
      gatewayFor: wechatPayV2Gateways({ ...ctx.config, baseUrl: stack.emulator.url }, { timeoutMs: 150, maxAttempts: 2, retryDelayMs: 10 }),
    };
  };
  const request = (idempotencyKey: string) =>
    parseMerchantOrderRequest({ tradeType: 'NATIVE', totalFee: 321, description: 'faults', idempotencyKey }, { clientIp: '203.0.113.7' });

  it('a single unifiedorder SYSTEMERROR is retried away; a lasting one answers 502 and the same request later succeeds', async () => {
    await stack.sim.faults({ systemError: { unifiedorder: 1 } });
    await newOrder();
    await stack.sim.faults({ systemError: { unifiedorder: 10 } });
    const body = { tradeType: 'NATIVE', totalFee: 321, description: 'faults', idempotencyKey: randomUUID() };
    const refused = await create(body);
    expect(refused.status).toBe(502);
    expect(refused.body.error?.code).toBe('SYSTEMERROR');
    const id = refused.body.error?.outTradeNo as string;
    expect((await ctx.store.get(id))?.status).toBe('PENDING');
    await stack.sim.faults({ systemError: { unifiedorder: 0 } });
    const again = await create(body);
    expect(again.body.outTradeNo).toBe(id);
    expect((await callback(await pay(id))).returnCode).toBe('SUCCESS');
    figures.wechatPayFaults += 11;
  });

  it('unifiedorder answers after the client timeout: the order stays PENDING, and the retry repeats the identical call', async () => {
    const key = randomUUID();
    await stack.sim.faults({ delayMs: 400 });
    let id: string;
    try {
      const error = await createOrder(request(key), impatient()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PaymentProviderError);
      expect((error as PaymentProviderError).code).toBe('TIMEOUT');
      expect((error as PaymentProviderError).retryable).toBe(true);
      id = (error as PaymentProviderError).outTradeNo;
    } finally {
      await stack.sim.faults({ delayMs: 0 });
    }
    figures.wechatPayFaults += 2;
    expect((await ctx.store.get(id))?.status).toBe('PENDING');
    const again = await createOrder(request(key), impatient());
    expect(again.outTradeNo).toBe(id);
    const sim = await stack.sim.order(id);
    // WeChat Pay saw the timed-out calls and the retry, and refused none as a changed repeat.
    expect(sim.calls.filter((c) => c.endpoint === 'unifiedorder').length).toBeGreaterThanOrEqual(2);
    expect(sim.calls.every((c) => c.result_code === 'SUCCESS')).toBe(true);
    expect((await callback(await pay(id))).returnCode).toBe('SUCCESS');
  });

  it('orderquery SYSTEMERRORs and timeouts: GET answers the stored state, recovery retries later, the payment is recorded', async () => {
    const id = await newOrder();
    await pay(id);
    await stack.sim.faults({ systemError: { orderquery: 100 } });
    expect((await get(id)).body.status).toBe('PENDING');
    expect((await recoverOrders(later(10_000), { deadline: Date.now() + 10_000 })).errors).toBeGreaterThanOrEqual(1);
    await stack.sim.faults({ systemError: { orderquery: 0 }, delayMs: 400 });
    try {
      expect((await followOrder(id, { ...impatient(), now: () => new Date(Date.now() + QUERY_INTERVAL_MS + 1) })).status).toBe('PENDING');
      expect(
        (await recoverOrders({ ...impatient(), now: () => new Date(Date.now() + 40_000) }, { deadline: Date.now() + 10_000 })).errors,
      ).toBeGreaterThanOrEqual(1);
    } finally {
      await stack.sim.faults({ delayMs: 0 });
    }
    figures.wechatPayFaults += 4;
    await recoverOrders(later(70_000), { deadline: Date.now() + 10_000 });
    expect((await ctx.store.get(id))?.status).toBe('PAID');
  });
});

describe('a crash between unifiedorder and storing the prepay id', () => {
  const onPrepay = (_action: string, input: { UpdateExpression?: string }) => /prepayId/.test(input.UpdateExpression ?? '');

  it('with an idempotency key: the retry stores the prepay id of the identical repeated call, and the order can be paid', async () => {
    const body = { tradeType: 'JSAPI', openid: 'oCrashTestOpenid', totalFee: 321, description: 'faults', idempotencyKey: randomUUID() };
    const fault = injectFault(ctx.store.db, { kind: 'InternalServerError', timing: 'before', nth: 1, matches: onPrepay });
    const crashed = await create(body);
    fault.stop();
    expect(crashed.status).toBe(503);
    figures.faultsInjected += 1;
    const again = await create(body);
    expect(again.status, again.raw).toBe(200);
    const id = again.body.outTradeNo as string;
    expect((again.body.pay as { package: string }).package).toMatch(/^prepay_id=wx/);
    expect((await callback(await pay(id))).returnCode).toBe('SUCCESS');
  });

  it('without one: the order WeChat Pay knows is closed by recovery at expiry, even after a closeorder SYSTEMERROR', async () => {
    const before = new Set(Object.keys(await scanTable(stack)));
    const fault = injectFault(ctx.store.db, { kind: 'ThrottlingException', timing: 'before', nth: 1, matches: onPrepay });
    expect((await create({ tradeType: 'APP', totalFee: 321, description: 'crash' })).status).toBe(503);
    fault.stop();
    figures.faultsInjected += 1;
    const [id] = Object.keys(await scanTable(stack)).filter((pk) => !before.has(pk));
    expect(await ctx.store.get(id!)).toMatchObject({ status: 'PENDING' });
    expect((await ctx.store.get(id!))?.prepayId).toBeUndefined();
    // WeChat Pay closes no order younger than 5 minutes: 300 ms on the emulator's clock.
    await sleep(350);
    await stack.sim.faults({ systemError: { closeorder: 100 } });
    await recoverOrders(later(31 * 60_000), { deadline: Date.now() + 10_000 });
    expect((await ctx.store.get(id!))?.status).toBe('PENDING');
    await stack.sim.faults({ systemError: { closeorder: 0 } });
    figures.wechatPayFaults += 1;
    await recoverOrders(later(32 * 60_000), { deadline: Date.now() + 10_000 });
    expect(await ctx.store.get(id!)).toMatchObject({ status: 'CLOSED' });
    expect((await stack.sim.order(id!)).trade_state).toBe('CLOSED');
  });
});
