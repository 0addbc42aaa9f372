import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../../../lib/events/outbox';
import type { Order, PaymentReport, ReviewFlag } from '../../../../lib/orders/model';
import { OrderStore } from '../../../../lib/orders/store';
import { testOrder, useRefusals, useTable } from '../../../support/store';

/** The order store on dynalite: each guarded write holds, and refuses as its conditions are named. */

const tables = useTable();
const refusals = useRefusals();

/** A store whose listener keeps what it was told: the order written and its events' types. */
function storeTelling() {
  const told: Array<{ order: Order; types: string[] }> = [];
  const store = new OrderStore(tables.db, tables.table, async (order, entries: OutboxEntry[]) => {
    told.push({ order, types: entries.map((entry) => entry.detailType) });
  });
  return { store, told };
}

/** A stored order as the store wrote it. */
async function stored(order: Order | string): Promise<Record<string, unknown> | undefined> {
  return tables.item({ pk: typeof order === 'string' ? order : order.outTradeNo });
}

async function pending(overrides: Partial<Order> = {}, firstCheckAt = 1_000): Promise<Order> {
  const order = testOrder(overrides);
  expect(await new OrderStore(tables.db, tables.table).createPending(order, firstCheckAt)).toBe(true);
  return order;
}

const report = (order: Order, overrides: Partial<PaymentReport> = {}): PaymentReport => ({
  outTradeNo: order.outTradeNo,
  transactionId: '4200000001202603011234567890',
  totalFee: order.totalFee,
  paidAt: '2026-03-01T02:05:00.000Z',
  source: 'notify',
  ...overrides,
});

const flag = (reason: ReviewFlag['reason'], transactionId = '4200000001202603019999999999'): ReviewFlag => ({
  reason,
  at: '2026-03-01T03:00:00.000Z',
  source: 'notify',
  transactionId,
  totalFee: 1000,
});

describe('OrderStore reads', () => {
  it('reads an order, never another record of the table', async () => {
    const order = await pending();
    const store = new OrderStore(tables.db, tables.table);
    expect(await store.get(order.outTradeNo)).toMatchObject({
      ...order,
      pendingShard: expect.stringMatching(/^([0-9]|1[0-5])$/),
      nextCheckAt: 1_000,
      checkCount: 0,
    });
    await tables.put({ pk: 'idempotency#merchant#k', outTradeNo: order.outTradeNo, fingerprint: 'f' });
    expect(await store.get('idempotency#merchant#k')).toBeUndefined();
    expect(await store.get('nothing')).toBeUndefined();
    const many = await store.getMany([order.outTradeNo, 'idempotency#merchant#k', 'nothing']);
    expect([...many.keys()]).toEqual([order.outTradeNo]);
  });

  it('keeps a refund named __proto__ an entry of the map it reads (lib-dynamodb would make it the prototype)', async () => {
    const order = testOrder({ status: 'PAID' });
    await tables.put({ pk: order.outTradeNo, ...order, refunds: {} });
    // Written by its path, as the refund store writes a refund into an existing map.
    await tables.db.send(
      new UpdateCommand({
        TableName: tables.table,
        Key: { pk: order.outTradeNo },
        UpdateExpression: 'SET refunds.#no = :refund',
        ExpressionAttributeNames: { '#no': '__proto__' },
        ExpressionAttributeValues: { ':refund': { outRefundNo: '__proto__', refundFee: 10, status: 'SUCCESS' } },
      }),
    );
    const read = await new OrderStore(tables.db, tables.table).get(order.outTradeNo);
    expect(Object.keys(read!.refunds!)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(read!.refunds, '__proto__')?.value).toMatchObject({ outRefundNo: '__proto__', refundFee: 10 });
  });

  it('walks the due pending orders of every shard, and the payments of a Beijing day', async () => {
    const due = await pending({}, 1_000);
    await pending({}, 9_000);
    const store = new OrderStore(tables.db, tables.table);
    const seen: string[] = [];
    for await (const page of store.duePending(5_000, 10)) seen.push(...page.items.map((order) => order.outTradeNo));
    expect(seen).toEqual([due.outTradeNo]);
    // 2026-03-01T02:05Z is 10:05 in Beijing, on the 1st; 2026-03-01T17:00Z is the 2nd there.
    const paid = await store.markPaid(report(due));
    const other = await pending();
    await store.markPaid(report(other, { paidAt: '2026-03-01T17:00:00.000Z', transactionId: '4200000001202603021234567890' }));
    expect((await store.paidOnDay('20260301')).map((order) => order.outTradeNo)).toEqual([due.outTradeNo]);
    const payments = [];
    for await (const payment of store.paymentsOnDay('20260301')) payments.push(payment);
    expect(payments).toEqual([{ outTradeNo: due.outTradeNo, transactionId: paid!.transactionId, totalFee: 1000 }]);
  });
});

describe('OrderStore.createPending', () => {
  it('stores a new order in the pending index; refused (orderIsNew) when its out_trade_no exists', async () => {
    const order = await pending({}, 1_234);
    expect(await stored(order)).toMatchObject({ pk: order.outTradeNo, status: 'PENDING', nextCheckAt: 1_234, checkCount: 0 });
    expect(await new OrderStore(tables.db, tables.table).createPending({ ...order, totalFee: 1 }, 1)).toBe(false);
    expect((await stored(order))?.totalFee).toBe(1000);
    expect(refusals()).toEqual([['orderIsNew']]);
  });
});

describe('OrderStore.recordPrepay', () => {
  it('notes the prepay on a PENDING order; refused (orderIsPending) once it moved on', async () => {
    const order = await pending();
    const store = new OrderStore(tables.db, tables.table);
    expect(
      await store.recordPrepay(order.outTradeNo, { prepayId: 'wx1', codeUrl: 'weixin://wxpay/1', issuedAt: '2026-03-01T02:00:01.000Z' }),
    ).toBe(true);
    expect(await stored(order)).toMatchObject({ prepayId: 'wx1', codeUrl: 'weixin://wxpay/1', prepayIssuedAt: '2026-03-01T02:00:01.000Z' });
    expect((await stored(order))?.mwebUrl).toBeUndefined();
    await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' });
    expect(await store.recordPrepay(order.outTradeNo, { prepayId: 'wx2', issuedAt: '2026-03-01T04:00:01.000Z' })).toBe(false);
    expect((await stored(order))?.prepayId).toBe('wx1');
    expect(refusals()).toEqual([['orderIsPending']]);
  });
});

describe('OrderStore.markFailed and markClosed', () => {
  it.each([
    ['markFailed', 'FAILED', 'Order Failed'],
    ['markClosed', 'CLOSED', 'Order Closed'],
  ] as const)(
    '%s: PENDING → %s with its event in the outbox, out of the pending index, the listener told',
    async (method, status, type) => {
      const order = await pending();
      const { store, told } = storeTelling();
      const moved =
        method === 'markFailed'
          ? await store.markFailed(order.outTradeNo, { code: 'PARAM_ERROR', message: 'bad', at: '2026-03-01T02:01:00.000Z' })
          : await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' });
      expect(moved).toBe(true);
      const item = await stored(order);
      expect(item).toMatchObject({
        status,
        outbox: [{ detailType: type }],
        outboxShard: expect.any(String),
        outboxDue: expect.any(Number),
      });
      for (const gone of ['pendingShard', 'nextCheckAt', 'checkCount']) expect(item).not.toHaveProperty(gone);
      expect(told).toEqual([{ order: expect.objectContaining({ status }), types: [type] }]);
    },
  );

  it('refuses (orderIsPending) an order that moved on: nothing written, nothing told', async () => {
    const order = await pending();
    const { store, told } = storeTelling();
    expect(await store.markPaid(report(order))).toBeDefined();
    const before = await stored(order);
    expect(await store.markFailed(order.outTradeNo, { code: 'X', message: 'x', at: '2026-03-01T02:06:00.000Z' })).toBe(false);
    expect(await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' })).toBe(false);
    expect(await stored(order)).toEqual(before);
    expect(told.map((telling) => telling.types)).toEqual([['Order Paid']]);
    expect(refusals()).toEqual([['orderIsPending'], ['orderIsPending']]);
  });

  it('keeps a transition written when its listener fails: its events stay in the outbox for the sweep', async () => {
    const order = await pending();
    const store = new OrderStore(tables.db, tables.table, async () => {
      throw new Error('EventBridge is down');
    });
    expect(await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' })).toBe(true);
    expect(await stored(order)).toMatchObject({ status: 'CLOSED', outbox: [{ detailType: 'Order Closed' }] });
  });
});

describe('OrderStore.markPaid', () => {
  it('PENDING → PAID in one write: the payment, its day in the paid-by-day index, out of the pending index, Order Paid', async () => {
    const order = await pending();
    const { store, told } = storeTelling();
    const paid = await store.markPaid(report(order, { signType: 'HMAC-SHA256' }));
    expect(paid).toMatchObject({
      status: 'PAID',
      transactionId: '4200000001202603011234567890',
      paidAt: '2026-03-01T02:05:00.000Z',
      paidVia: 'notify',
      paidDayShard: expect.stringMatching(/^20260301#([0-9]|1[0-5])$/),
    });
    expect(paid).not.toHaveProperty('pendingShard');
    expect(told.map((telling) => telling.types)).toEqual([['Order Paid']]);
  });

  it.each([
    [
      'orderIsPending',
      (order: Order) => report(order),
      async (store: OrderStore, order: Order) =>
        void (await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' })),
    ],
    ['amountMatches', (order: Order) => report(order, { totalFee: 999 }), async () => {}],
    ['signTypeMatches', (order: Order) => report(order, { signType: 'MD5' }), async () => {}],
    ['appMatches', (order: Order) => report(order, { appId: 'wx-other' }), async () => {}],
  ] as const)('refuses when %s does not hold: nothing written, nothing told', async (condition, reportOf, before) => {
    const order = await pending({ appId: 'wx-mine' });
    const { store, told } = storeTelling();
    await before(store, order);
    const was = await stored(order);
    told.length = 0;
    expect(await store.markPaid(reportOf(order))).toBeUndefined();
    expect(await stored(order)).toEqual(was);
    expect(told).toEqual([]);
    expect(refusals().at(-1)).toContain(condition);
  });

  it("takes an order made before apps were recorded as the default app's, and only the default app's", async () => {
    const store = new OrderStore(tables.db, tables.table);
    const older = await pending();
    expect(await store.markPaid(report(older, { appId: 'wx-other', defaultApp: false }))).toBeUndefined();
    expect(refusals()).toEqual([['orderIsPending', 'amountMatches', 'appMatches']]);
    expect(await store.markPaid(report(older, { appId: 'wx-default', defaultApp: true }))).toMatchObject({ status: 'PAID' });
  });

  it('records money that came for a CLOSED order, with its review flag (Payment Needs Review)', async () => {
    const order = await pending();
    const { store, told } = storeTelling();
    await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' });
    const late = flag('PAID_AFTER_CLOSE', '4200000001202603011234567890');
    expect(await store.markPaid(report(order), 'PENDING', late)).toBeUndefined();
    const paid = await store.markPaid(report(order), 'CLOSED', late);
    expect(paid).toMatchObject({ status: 'PAID', review: { '4200000001202603011234567890': late } });
    expect(told.map((telling) => telling.types)).toEqual([['Order Closed'], ['Payment Needs Review']]);
  });
});

describe('OrderStore.addReviewFlag', () => {
  it('adds a flag once per key (flagIsNew), with its event; a repeat writes and tells nothing, and answers the order with the flag', async () => {
    const order = await pending();
    const { store, told } = storeTelling();
    const paid = (await store.markPaid(report(order)))!;
    const second = flag('SECOND_PAYMENT');
    const flagged = await store.addReviewFlag(paid, second);
    expect(flagged.review).toEqual({ '4200000001202603019999999999': second });
    const again = await store.addReviewFlag(paid, { ...second, at: 'later' });
    expect(again.review['4200000001202603019999999999']).toEqual({ ...second, at: 'later' });
    expect((await stored(order))?.review).toEqual({ '4200000001202603019999999999': second });
    expect(told.map((telling) => telling.types)).toEqual([['Order Paid'], ['Payment Needs Review']]);
    expect((await stored(order))?.outbox).toHaveLength(2);
    expect(refusals()).toEqual([['flagIsNew']]);
    // Under a key of the caller's.
    expect((await store.addReviewFlag(paid, second, 'refund-answer:R1')).review).toHaveProperty('refund-answer:R1', second);
  });
});

describe('OrderStore.claimQuerySlot and scheduleNextCheck', () => {
  it('gives one query slot per interval (intervalPassed), on a PENDING order only (orderIsPending)', async () => {
    const order = await pending();
    const store = new OrderStore(tables.db, tables.table);
    expect(await store.claimQuerySlot(order.outTradeNo, 10_000, 2_000)).toBe(true);
    expect(await store.claimQuerySlot(order.outTradeNo, 11_000, 2_000)).toBe(false);
    expect(await store.claimQuerySlot(order.outTradeNo, 12_000, 2_000)).toBe(true);
    expect((await stored(order))?.lastQueriedAt).toBe(12_000);
    await store.markPaid(report(order));
    expect(await store.claimQuerySlot(order.outTradeNo, 20_000, 2_000)).toBe(false);
    expect(refusals()).toEqual([
      ['orderIsPending', 'intervalPassed'],
      ['orderIsPending', 'intervalPassed'],
    ]);
  });

  it('moves the next check only from the one seen (checkIsAsSeen), on a PENDING order only (orderIsPending)', async () => {
    const order = await pending({}, 1_000);
    const store = new OrderStore(tables.db, tables.table);
    expect(await store.scheduleNextCheck(order.outTradeNo, 1_000, 5_000, 1)).toBe(true);
    expect(await store.scheduleNextCheck(order.outTradeNo, 1_000, 6_000, 1)).toBe(false);
    expect(await stored(order)).toMatchObject({ nextCheckAt: 5_000, checkCount: 1 });
    await store.markClosed(order.outTradeNo, { reason: 'expired', at: '2026-03-01T04:00:00.000Z' });
    expect(await store.scheduleNextCheck(order.outTradeNo, 5_000, 9_000, 2)).toBe(false);
    expect(refusals()).toEqual([
      ['orderIsPending', 'checkIsAsSeen'],
      ['orderIsPending', 'checkIsAsSeen'],
    ]);
  });
});
