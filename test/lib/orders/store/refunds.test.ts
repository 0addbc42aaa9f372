import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../../../lib/events/outbox';
import type { Order, OrderRefund, ReviewFlag } from '../../../../lib/orders/model';
import { MAX_REFUNDS_PER_ORDER, OrderStore, RefundStore, type RefundSettlement } from '../../../../lib/orders/store';
import { testOrder, useRefusals, useTable } from '../../../support/store';

/**
 * The refund store on dynalite: each write of a refund and of the order's totals is one guarded
 * write, and each of its named conditions refuses alone.
 */

const tables = useTable();
const refusals = useRefusals();

function storeTelling() {
  const told: string[][] = [];
  const refunds = new RefundStore(tables.db, tables.table, async (_order, entries: OutboxEntry[]) => {
    told.push(entries.map((entry) => entry.detailType));
  });
  return { refunds, told };
}

const read = async (outTradeNo: string): Promise<Order> => (await new OrderStore(tables.db, tables.table).get(outTradeNo))!;

/** A PAID order of 1000 fen as stored, with what `extra` sets; read back. */
async function paid(extra: Record<string, unknown> = {}): Promise<Order> {
  const order = testOrder({ status: 'PAID', transactionId: '4200000001202603011234567890', paidAt: '2026-03-01T02:05:00.000Z' });
  await tables.put({ pk: order.outTradeNo, ...order, ...extra });
  return read(order.outTradeNo);
}

/** Changes a stored order behind the back of what was read of it. */
async function meanwhile(order: Order, set: string, values: Record<string, unknown>, names?: Record<string, string>): Promise<void> {
  await tables.db.send(
    new UpdateCommand({
      TableName: tables.table,
      Key: { pk: order.outTradeNo },
      UpdateExpression: `SET ${set}`,
      ExpressionAttributeValues: values,
      ExpressionAttributeNames: names,
    }),
  );
}

const refund = (outRefundNo: string, refundFee: number, overrides: Partial<OrderRefund> = {}): OrderRefund => ({
  outRefundNo,
  refundFee,
  status: 'PROCESSING',
  createdAt: '2026-03-02T01:00:00.000Z',
  origin: 'api',
  fingerprint: 'f',
  ...overrides,
});

const ended = (status: RefundSettlement['status'], extra: Partial<RefundSettlement> = {}): RefundSettlement => ({
  status,
  at: '2026-03-02T01:05:00.000Z',
  ...extra,
});

const flagOf = (reason: ReviewFlag['reason'], outRefundNo: string): ReviewFlag => ({
  reason,
  at: '2026-03-02T01:06:00.000Z',
  source: 'refund-notify',
  transactionId: '4200000001202603011234567890',
  totalFee: 1000,
  outRefundNo,
  refundFee: 100,
});

/** An order with PROCESSING refunds reserved through the store: read back. */
async function withProcessing(...refunds: OrderRefund[]): Promise<Order> {
  let order = await paid();
  const store = new RefundStore(tables.db, tables.table);
  for (const one of refunds) order = (await store.reserve(order, one, 60_000))!;
  return order;
}

describe('RefundStore.reserve', () => {
  it("stores the first refund PROCESSING with the order's map, holds its amount, counts it and puts the order in the open-refunds index", async () => {
    const order = await paid();
    const reserved = await new RefundStore(tables.db, tables.table).reserve(order, refund('R1', 300), 60_000);
    expect(reserved).toMatchObject({
      refunds: { R1: refund('R1', 300) },
      refundHeldFee: 300,
      refundCount: 1,
      openRefunds: 1,
      refundShard: expect.stringMatching(/^([0-9]|1[0-5])$/),
      refundCheckAt: 60_000,
      refundCheckCount: 0,
    });
    const second = await new RefundStore(tables.db, tables.table).reserve(reserved!, refund('R2', 700), 70_000);
    expect(second).toMatchObject({
      refunds: { R1: { refundFee: 300 }, R2: { refundFee: 700 } },
      refundHeldFee: 1000,
      refundCount: 2,
      openRefunds: 2,
      refundShard: reserved!.refundShard,
      refundCheckAt: 70_000,
    });
  });

  it.each([
    ['orderIsPaid', async () => paid({ status: 'PENDING' }), 100],
    ['orderIsPaid', async () => paid({ status: 'REFUNDED' }), 100],
    ['withinAmount', async () => paid({ refundHeldFee: 900 }), 101],
    ['underMaxRefunds', async () => paid({ refundCount: MAX_REFUNDS_PER_ORDER }), 1],
  ] as const)('refuses when %s does not hold, nothing written', async (_condition, orderOf, fee) => {
    const order = await orderOf();
    const before = await tables.item({ pk: order.outTradeNo });
    expect(await new RefundStore(tables.db, tables.table).reserve(order, refund('R1', fee), 60_000)).toBeUndefined();
    expect(await tables.item({ pk: order.outTradeNo })).toEqual(before);
    expect(refusals()).toEqual([['orderIsPaid', 'withinAmount', 'underMaxRefunds', 'refundIsNew']]);
  });

  it("holds up to the order's amount exactly, and the 50th refund", async () => {
    const store = new RefundStore(tables.db, tables.table);
    expect(await store.reserve(await paid({ refundHeldFee: 900 }), refund('R1', 100), 60_000)).toMatchObject({ refundHeldFee: 1000 });
    expect(await store.reserve(await paid({ refundCount: MAX_REFUNDS_PER_ORDER - 1 }), refund('R1', 1), 60_000)).toMatchObject({
      refundCount: MAX_REFUNDS_PER_ORDER,
    });
  });

  it('refuses (refundIsNew) a refund already there, and a first map another request wrote since the order was read', async () => {
    const store = new RefundStore(tables.db, tables.table);
    const once = (await store.reserve(await paid(), refund('R1', 100), 60_000))!;
    expect(await store.reserve(once, refund('R1', 100), 60_000)).toBeUndefined();
    const bare = await paid();
    await store.reserve(bare, refund('R2', 100), 60_000);
    expect(await store.reserve(bare, refund('R3', 100), 60_000)).toBeUndefined();
    expect((await read(bare.outTradeNo)).refunds).toEqual({ R2: refund('R2', 100) });
    expect(refusals()).toEqual([
      ['orderIsPaid', 'withinAmount', 'underMaxRefunds', 'refundIsNew'],
      ['orderIsPaid', 'withinAmount', 'underMaxRefunds', 'refundIsNew'],
    ]);
  });
});

describe('RefundStore.markAccepted', () => {
  it("notes WeChat Pay's refund id on a PROCESSING refund (its first acceptance time kept); refused (refundIsProcessing) otherwise", async () => {
    const order = await withProcessing(refund('R1', 100));
    const store = new RefundStore(tables.db, tables.table);
    expect(await store.markAccepted(order.outTradeNo, 'R1', { refundId: '50000001', at: 'first' })).toBe(true);
    expect(await store.markAccepted(order.outTradeNo, 'R1', { refundId: '50000001', at: 'second' })).toBe(true);
    expect((await read(order.outTradeNo)).refunds?.R1).toMatchObject({ refundId: '50000001', acceptedAt: 'first' });
    expect(await store.markAccepted(order.outTradeNo, 'R9', { refundId: '50000009', at: 'x' })).toBe(false);
    await store.settle(await read(order.outTradeNo), 'R1', ended('SUCCESS'));
    expect(await store.markAccepted(order.outTradeNo, 'R1', { refundId: '50000002', at: 'x' })).toBe(false);
    expect((await read(order.outTradeNo)).refunds?.R1?.refundId).toBe('50000001');
    expect(refusals()).toEqual([['refundIsProcessing'], ['refundIsProcessing']]);
  });
});

describe('RefundStore.settle', () => {
  it('SUCCESS: adds to refundedFee, records the facts, and the order leaves the open-refunds index with its last PROCESSING refund (Refund Succeeded)', async () => {
    const order = await withProcessing(refund('R1', 300));
    const { refunds, told } = storeTelling();
    const settled = await refunds.settle(
      order,
      'R1',
      ended('SUCCESS', { refundId: '50000001', succeededAt: '2026-03-02 09:05:00', receivedBy: 'balance' }),
    );
    expect(settled).toMatchObject({
      status: 'PAID',
      refundedFee: 300,
      refundHeldFee: 300,
      refundCount: 1,
      openRefunds: 0,
      refunds: { R1: { status: 'SUCCESS', settledAt: '2026-03-02T01:05:00.000Z', refundId: '50000001', receivedBy: 'balance' } },
    });
    for (const gone of ['refundShard', 'refundCheckAt', 'refundCheckCount']) expect(settled).not.toHaveProperty(gone);
    expect(told).toEqual([['Refund Succeeded']]);
  });

  it('SUCCESS that covers the amount makes the order REFUNDED (Order Refunded); one still PROCESSING keeps it in the index', async () => {
    const order = await withProcessing(refund('R1', 400), refund('R2', 600));
    const { refunds, told } = storeTelling();
    const first = (await refunds.settle(order, 'R2', ended('SUCCESS')))!;
    expect(first).toMatchObject({ status: 'PAID', refundedFee: 600, openRefunds: 1, refundShard: order.refundShard });
    const whole = await refunds.settle(first, 'R1', ended('SUCCESS'));
    expect(whole).toMatchObject({ status: 'REFUNDED', refundedFee: 1000, refundedAt: '2026-03-02T01:05:00.000Z', openRefunds: 0 });
    expect(told).toEqual([['Refund Succeeded'], ['Refund Succeeded', 'Order Refunded']]);
  });

  it('FAILED gives back the amount and the place among the 50; REFUNDCLOSE the amount only (Refund Failed)', async () => {
    const order = await withProcessing(refund('R1', 100), refund('R2', 200));
    const { refunds, told } = storeTelling();
    const failed = (await refunds.settle(order, 'R1', ended('FAILED', { failureCode: 'NOTENOUGH', failureMessage: 'no balance' })))!;
    expect(failed).toMatchObject({
      refundHeldFee: 200,
      refundCount: 1,
      openRefunds: 1,
      refunds: { R1: { status: 'FAILED', failureCode: 'NOTENOUGH' } },
    });
    const closed = await refunds.settle(failed, 'R2', ended('REFUNDCLOSE'));
    expect(closed).toMatchObject({ refundHeldFee: 0, refundCount: 1, openRefunds: 0 });
    expect(closed).not.toHaveProperty('refundedFee');
    expect(told).toEqual([['Refund Failed'], ['Refund Failed']]);
  });

  it('refuses when the refund is no longer PROCESSING (refundIsProcessing)', async () => {
    const { refunds, told } = storeTelling();
    const order = await withProcessing(refund('R1', 100), refund('R2', 100));
    await refunds.settle(order, 'R1', ended('FAILED'));
    const again = await read(order.outTradeNo);
    const before = await tables.item({ pk: order.outTradeNo });
    expect(await refunds.settle(again, 'R1', ended('SUCCESS'))).toBeUndefined();
    expect(await tables.item({ pk: order.outTradeNo })).toEqual(before);
    expect(told).toHaveLength(1);
    expect(refusals()).toEqual([['orderIsPaid', 'refundIsProcessing', 'openRefundsAsSeen', 'refundedFeeAsSeen']]);
  });

  it('refuses when another refund ended since the order was read (openRefundsAsSeen)', async () => {
    const { refunds } = storeTelling();
    const order = await withProcessing(refund('R1', 100), refund('R2', 100));
    await refunds.settle(order, 'R1', ended('FAILED'));
    expect(await refunds.settle(order, 'R2', ended('REFUNDCLOSE'))).toBeUndefined();
    expect((await read(order.outTradeNo)).refunds?.R2?.status).toBe('PROCESSING');
    expect(refusals()).toEqual([['orderIsPaid', 'refundIsProcessing', 'openRefundsAsSeen']]);
  });

  it("refuses a SUCCESS when refundedFee moved since the order was read (refundedFeeAsSeen), and when the order's status did (orderIsPaid)", async () => {
    const { refunds } = storeTelling();
    const order = await withProcessing(refund('R1', 100));
    await meanwhile(order, 'refundedFee = :fee', { ':fee': 50 });
    expect(await refunds.settle(order, 'R1', ended('SUCCESS'))).toBeUndefined();
    const fresh = await read(order.outTradeNo);
    await meanwhile(fresh, '#status = :refunded', { ':refunded': 'REFUNDED' }, { '#status': 'status' });
    expect(await refunds.settle(fresh, 'R1', ended('SUCCESS'))).toBeUndefined();
    expect((await read(order.outTradeNo)).refunds?.R1?.status).toBe('PROCESSING');
    expect(refusals()).toEqual([
      ['orderIsPaid', 'refundIsProcessing', 'openRefundsAsSeen', 'refundedFeeAsSeen'],
      ['orderIsPaid', 'refundIsProcessing', 'openRefundsAsSeen', 'refundedFeeAsSeen'],
    ]);
    expect(await refunds.settle(await read(order.outTradeNo), 'R1', ended('SUCCESS'))).toMatchObject({
      status: 'REFUNDED',
      refundedFee: 150,
    });
  });

  it("is a caller's mistake for a refund the order does not have", async () => {
    const order = await paid();
    expect(() => new RefundStore(tables.db, tables.table).settle(order, 'R1', ended('SUCCESS'))).toThrow(/has no refund R1/);
  });
});

describe('RefundStore.recordExternal', () => {
  it('records a refund made outside the backend, with its review flag: the map made, the amounts counted (Refund Succeeded, Payment Needs Review)', async () => {
    const order = await paid();
    const { refunds, told } = storeTelling();
    const external = refund('platform-1', 1000, { status: 'SUCCESS', origin: 'external', settledAt: '2026-03-02T01:00:00.000Z' });
    const flag = flagOf('REFUND_NOT_REQUESTED', 'platform-1');
    const recorded = await refunds.recordExternal(order, external, flag);
    expect(recorded).toMatchObject({
      status: 'REFUNDED',
      refundedFee: 1000,
      refundedAt: '2026-03-02T01:00:00.000Z',
      refundHeldFee: 1000,
      refundCount: 1,
      refunds: { 'platform-1': external },
      review: { 'refund:platform-1': flag },
    });
    expect(told).toEqual([['Refund Succeeded', 'Order Refunded', 'Payment Needs Review']]);
  });

  it("holds no amount for a FAILED one, and publishes a PROCESSING one's refund events only when it settles", async () => {
    const { refunds, told } = storeTelling();
    const order = await paid();
    const failed = (await refunds.recordExternal(
      order,
      refund('p-failed', 100, { status: 'FAILED', origin: 'external' }),
      flagOf('REFUND_NOT_REQUESTED', 'p-failed'),
    ))!;
    expect(failed).toMatchObject({ refundCount: 1 });
    expect(failed).not.toHaveProperty('refundHeldFee');
    const processing = await refunds.recordExternal(
      failed,
      refund('p-open', 100, { origin: 'external' }),
      flagOf('REFUND_NOT_REQUESTED', 'p-open'),
    );
    expect(processing).toMatchObject({ refundCount: 2, refundHeldFee: 100, refunds: { 'p-open': { status: 'PROCESSING' } } });
    expect(told).toEqual([['Refund Failed', 'Payment Needs Review'], ['Payment Needs Review']]);
  });

  it('refuses a refund already recorded (refundIsNew), a status (orderIsPaid) or refundedFee (refundedFeeAsSeen) that moved since the order was read', async () => {
    const { refunds } = storeTelling();
    const external = refund('platform-1', 100, { status: 'SUCCESS', origin: 'external' });
    const flag = flagOf('REFUND_NOT_REQUESTED', 'platform-1');
    const order = await paid({ refunds: {} });
    const recorded = (await refunds.recordExternal(order, external, flag))!;
    expect(await refunds.recordExternal(recorded, external, flag)).toBeUndefined();
    const other = await paid();
    await meanwhile(other, 'refundedFee = :fee', { ':fee': 10 });
    expect(await refunds.recordExternal(other, external, flag)).toBeUndefined();
    const third = await paid();
    await meanwhile(third, '#status = :refunded', { ':refunded': 'REFUNDED' }, { '#status': 'status' });
    expect(await refunds.recordExternal(third, external, flag)).toBeUndefined();
    expect(refusals()).toEqual([
      ['orderIsPaid', 'refundIsNew', 'refundedFeeAsSeen'],
      ['orderIsPaid', 'refundIsNew', 'refundedFeeAsSeen'],
      ['orderIsPaid', 'refundIsNew', 'refundedFeeAsSeen'],
    ]);
    expect((await read(other.outTradeNo)).refunds).toBeUndefined();
  });

  it('writes a refund named __proto__ by its path: the empty map first (noRefundsYet), then the refund', async () => {
    const { refunds } = storeTelling();
    const order = await paid();
    const proto = refund('__proto__', 100, { status: 'SUCCESS', origin: 'external' });
    const flag = flagOf('REFUND_NOT_REQUESTED', '__proto__');
    expect(await refunds.recordExternal(order, proto, flag)).toBeUndefined();
    expect((await tables.item({ pk: order.outTradeNo }))?.refunds).toEqual({});
    const recorded = (await refunds.recordExternal(await read(order.outTradeNo), proto, flag))!;
    expect(Object.keys(recorded.refunds!)).toEqual(['__proto__']);
    expect(recorded).toMatchObject({ refundedFee: 100, refundCount: 1 });
  });
});

describe('RefundStore.recordSuccessAfterFailure', () => {
  it('records SUCCESS a refund recorded FAILED: the amount held and counted again, refundedFee, the refusal gone, the flag (Refund Succeeded, Payment Needs Review)', async () => {
    const { refunds, told } = storeTelling();
    const order = await withProcessing(refund('R1', 100));
    const failed = (await refunds.settle(order, 'R1', ended('FAILED', { failureCode: 'NOTENOUGH', failureMessage: 'no balance' })))!;
    const flag = flagOf('REFUND_SUCCEEDED_AFTER_FAILURE', 'R1');
    const after = await refunds.recordSuccessAfterFailure(
      failed,
      'R1',
      { status: 'SUCCESS', at: '2026-03-03T00:00:00.000Z', refundId: '50000001' },
      flag,
    );
    expect(after).toMatchObject({
      refundedFee: 100,
      refundHeldFee: 100,
      refundCount: 1,
      review: { 'refund:R1': flag },
      refunds: { R1: { status: 'SUCCESS', settledAt: '2026-03-03T00:00:00.000Z', refundId: '50000001' } },
    });
    expect(after?.refunds?.R1).not.toHaveProperty('failureCode');
    expect(after?.refunds?.R1).not.toHaveProperty('failureMessage');
    expect(told).toEqual([['Refund Failed'], ['Refund Succeeded', 'Payment Needs Review']]);
  });

  it('refuses unless the refund is FAILED (refundIsFailed), and when refundedFee moved (refundedFeeAsSeen)', async () => {
    const { refunds } = storeTelling();
    const order = await withProcessing(refund('R1', 100));
    const flag = flagOf('REFUND_SUCCEEDED_AFTER_FAILURE', 'R1');
    const success = { status: 'SUCCESS' as const, at: '2026-03-03T00:00:00.000Z' };
    expect(await refunds.recordSuccessAfterFailure(order, 'R1', success, flag)).toBeUndefined();
    const failed = (await refunds.settle(order, 'R1', ended('FAILED')))!;
    await meanwhile(failed, 'refundedFee = :fee', { ':fee': 5 });
    expect(await refunds.recordSuccessAfterFailure(failed, 'R1', success, flag)).toBeUndefined();
    expect(refusals()).toEqual([
      ['orderIsPaid', 'refundIsFailed', 'refundedFeeAsSeen'],
      ['orderIsPaid', 'refundIsFailed', 'refundedFeeAsSeen'],
    ]);
    expect((await read(order.outTradeNo)).refunds?.R1?.status).toBe('FAILED');
  });
});

describe('RefundStore: the open-refunds index', () => {
  it('walks the orders whose refund check is due, and moves a check only from the one seen (checkIsAsSeen)', async () => {
    const due = await withProcessing(refund('R1', 100));
    const store = new RefundStore(tables.db, tables.table);
    await store.reserve(await paid(), refund('R2', 100), 90_000);
    const seen: string[] = [];
    for await (const page of store.due(60_000, 10)) seen.push(...page.items.map((order) => order.outTradeNo));
    expect(seen).toEqual([due.outTradeNo]);
    expect(await store.scheduleCheck(due.outTradeNo, 60_000, 120_000, 1)).toBe(true);
    expect(await store.scheduleCheck(due.outTradeNo, 60_000, 130_000, 1)).toBe(false);
    expect(await read(due.outTradeNo)).toMatchObject({ refundCheckAt: 120_000, refundCheckCount: 1 });
    expect(refusals()).toEqual([['checkIsAsSeen']]);
  });
});
