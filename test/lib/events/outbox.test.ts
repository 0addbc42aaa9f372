import { describe, expect, it } from 'vitest';
import { OUTBOX_GRACE_MS, outboxUpdate } from '../../../lib/events/outbox';
import { DETAIL_SCHEMA_VERSION, eventDetail, eventId, ORDER_EVENT_TYPES, outboxEntry, type Transition } from '../../../lib/orders/events';
import { MAX_ITEMS } from '../../../lib/orders/create-request';
import type { Order } from '../../../lib/orders/model';

/** A frontend's JSAPI order of two catalog lines, as the store holds it. */
const ORDER: Order = {
  outTradeNo: '20261123Ab3dEf6hIj9kLm2nOp5q',
  status: 'PENDING',
  tradeType: 'JSAPI',
  totalFee: 5200,
  description: 'Croissant ×2, Latte (large)',
  attach: 'table 7',
  signType: 'HMAC-SHA256',
  createdAt: '2026-11-23T01:00:00.000Z',
  expiresAt: '2026-11-23T01:30:00.000Z',
  unifiedOrder: {
    body: 'Croissant ×2, Latte (large)',
    out_trade_no: '20261123Ab3dEf6hIj9kLm2nOp5q',
    total_fee: '5200',
    spbill_create_ip: '203.0.113.7',
    notify_url: 'https://pay.example.com/wechatpay/notify',
    trade_type: 'JSAPI',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    attach: 'table 7',
  },
  appId: 'wxd930ea5d5a258f4f',
  review: {},
  items: [
    { sku: 'croissant', name: 'Croissant', quantity: 2, unitPriceFen: 1200 },
    { sku: 'latte-large', name: 'Latte (large)', quantity: 1, unitPriceFen: 2800 },
  ],
};

/** An order of the merchant's server: no catalog lines, no payer, no attach. */
const MERCHANT_ORDER: Order = {
  ...ORDER,
  outTradeNo: '20261123Zz9yXx8wVv7uTt6sRr5q',
  tradeType: 'NATIVE',
  totalFee: 9900,
  description: 'Membership',
  attach: undefined,
  items: undefined,
  appId: undefined,
  unifiedOrder: Object.fromEntries(Object.entries({ ...ORDER.unifiedOrder, trade_type: 'NATIVE' }).filter(([name]) => name !== 'openid' && name !== 'attach')),
};

const AT = new Date('2026-11-23T01:05:00.000Z');
const TX = '4200000123202611230123456789';

describe('event ids', () => {
  it('are 32 hex digits, derived from the order, the type and what tells its transitions apart', () => {
    const paid = outboxEntry({ type: 'Order Paid', outTradeNo: ORDER.outTradeNo, transactionId: TX, paidAt: AT.toISOString(), paidVia: 'notify' }, AT);
    expect(paid.eventId).toMatch(/^[0-9a-f]{32}$/);
    expect(paid.eventId).toBe(eventId(ORDER.outTradeNo, 'Order Paid', TX));
    // Whichever path records the payment, and whenever: the same transition, the same id.
    const again = outboxEntry({ type: 'Order Paid', outTradeNo: ORDER.outTradeNo, transactionId: TX, paidAt: AT.toISOString(), paidVia: 'recovery' }, new Date());
    expect(again.eventId).toBe(paid.eventId);
  });

  it('differ between orders, types, payments and refunds', () => {
    const ids = [
      eventId(ORDER.outTradeNo, 'Order Paid', TX),
      eventId(MERCHANT_ORDER.outTradeNo, 'Order Paid', TX),
      eventId(ORDER.outTradeNo, 'Order Paid', '4200000123202611230123456780'),
      eventId(ORDER.outTradeNo, 'Order Closed'),
      eventId(ORDER.outTradeNo, 'Order Failed'),
      eventId(ORDER.outTradeNo, 'Payment Needs Review', `${TX}:SECOND_PAYMENT`),
      eventId(ORDER.outTradeNo, 'Refund Succeeded', 'R1'),
      eventId(ORDER.outTradeNo, 'Refund Succeeded', 'R2'),
      eventId(ORDER.outTradeNo, 'Refund Failed', 'R1'),
      eventId(ORDER.outTradeNo, 'Order Refunded'),
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('tell apart two refunds made outside the backend on one payment: each flag is its own review (found by the money model)', () => {
    const review = (outRefundNo: string) => ({ reason: 'REFUND_NOT_REQUESTED' as const, at: AT.toISOString(), source: 'refund-notify' as const, transactionId: TX, totalFee: 100, outRefundNo, refundFee: 10 });
    const first = outboxEntry({ type: 'Payment Needs Review', outTradeNo: ORDER.outTradeNo, status: 'PAID', review: review('platform1') }, AT);
    const second = outboxEntry({ type: 'Payment Needs Review', outTradeNo: ORDER.outTradeNo, status: 'PAID', review: review('platform2') }, AT);
    expect(first.eventId).not.toBe(second.eventId);
    // A payment's flag keeps the id it always had.
    const paymentFlag = outboxEntry({ type: 'Payment Needs Review', outTradeNo: ORDER.outTradeNo, status: 'PAID', review: { reason: 'SECOND_PAYMENT', at: AT.toISOString(), source: 'notify', transactionId: TX, totalFee: 100 } }, AT);
    expect(paymentFlag.eventId).toBe(eventId(ORDER.outTradeNo, 'Payment Needs Review', `${TX}:SECOND_PAYMENT`));
  });
});

describe('outbox entries', () => {
  it('carry the type, the time and the facts, status among them', () => {
    const entry = outboxEntry({ type: 'Order Closed', outTradeNo: ORDER.outTradeNo, closedAt: AT.toISOString(), closeReason: 'expired unpaid; closed with WeChat Pay' }, AT);
    expect(entry).toEqual({
      eventId: eventId(ORDER.outTradeNo, 'Order Closed'),
      detailType: 'Order Closed',
      at: '2026-11-23T01:05:00.000Z',
      facts: { status: 'CLOSED', closedAt: '2026-11-23T01:05:00.000Z', closeReason: 'expired unpaid; closed with WeChat Pay' },
    });
  });

  it('are appended by the same write as the transition, and put the order in the outbox index, due after the grace period', () => {
    const entry = outboxEntry({ type: 'Order Failed', outTradeNo: ORDER.outTradeNo, failedAt: AT.toISOString(), failureCode: 'INVALID_REQUEST', failureMessage: 'bad' }, AT);
    const update = outboxUpdate([entry]);
    expect(update.set).toBe(
      'outbox = list_append(if_not_exists(outbox, :outboxNone), :outboxNew), outboxShard = if_not_exists(outboxShard, :outboxShard), outboxDue = if_not_exists(outboxDue, :outboxDue)',
    );
    expect(update.values).toMatchObject({ ':outboxNone': [], ':outboxNew': [entry], ':outboxDue': AT.getTime() + OUTBOX_GRACE_MS });
    expect(Number(update.values[':outboxShard'])).toBeGreaterThanOrEqual(0);
    expect(Number(update.values[':outboxShard'])).toBeLessThan(16);
  });
});

/**
 * The `detail` schema, pinned: what consumers read. Changing it breaks them; docs/reference/events.md
 * documents every field (docs/reference/events.md: The detail of every event).
 */
describe('the detail of every event', () => {
  const common = {
    schemaVersion: 1,
    outTradeNo: ORDER.outTradeNo,
    totalFee: 5200,
    description: 'Croissant ×2, Latte (large)',
    items: [
      { sku: 'croissant', name: 'Croissant', quantity: 2, unitPriceFen: 1200 },
      { sku: 'latte-large', name: 'Latte (large)', quantity: 1, unitPriceFen: 2800 },
    ],
    attach: 'table 7',
    appId: 'wxd930ea5d5a258f4f',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    occurredAt: '2026-11-23T01:05:00.000Z',
  };
  const detail = (transition: Transition, order: Order = ORDER) => eventDetail({ ...order, status: 'PAID' }, outboxEntry(transition, AT));
  const review = { reason: 'SECOND_PAYMENT' as const, at: '2026-11-23T01:04:59.000Z', source: 'notify' as const, transactionId: TX, totalFee: 5200 };
  const refund = { outRefundNo: 'R20261123000001', refundFee: 1200, status: 'SUCCESS', refundId: '50000000382019052709732678859', succeededAt: '2026-11-23T02:00:00.000Z' };

  it('is version 1', () => {
    expect(DETAIL_SCHEMA_VERSION).toBe(1);
    expect(ORDER_EVENT_TYPES).toEqual(['Order Paid', 'Order Closed', 'Order Failed', 'Payment Needs Review', 'Refund Succeeded', 'Refund Failed', 'Order Refunded']);
  });

  it.each<[string, Transition, Record<string, unknown>]>([
    [
      'Order Paid',
      { type: 'Order Paid', outTradeNo: ORDER.outTradeNo, transactionId: TX, paidAt: '2026-11-23T01:04:58.000Z', paidVia: 'notify' },
      { status: 'PAID', transactionId: TX, paidAt: '2026-11-23T01:04:58.000Z', paidVia: 'notify' },
    ],
    [
      'Order Closed',
      { type: 'Order Closed', outTradeNo: ORDER.outTradeNo, closedAt: '2026-11-23T01:05:00.000Z', closeReason: 'expired unpaid; closed with WeChat Pay' },
      { status: 'CLOSED', closedAt: '2026-11-23T01:05:00.000Z', closeReason: 'expired unpaid; closed with WeChat Pay' },
    ],
    [
      'Order Failed',
      { type: 'Order Failed', outTradeNo: ORDER.outTradeNo, failedAt: '2026-11-23T01:05:00.000Z', failureCode: 'APPID_NOT_EXIST', failureMessage: 'WeChat Pay: appid does not exist' },
      { status: 'FAILED', failedAt: '2026-11-23T01:05:00.000Z', failureCode: 'APPID_NOT_EXIST', failureMessage: 'WeChat Pay: appid does not exist' },
    ],
    ['Payment Needs Review', { type: 'Payment Needs Review', outTradeNo: ORDER.outTradeNo, status: 'PAID', review }, { status: 'PAID', review }],
    ['Refund Succeeded', { type: 'Refund Succeeded', outTradeNo: ORDER.outTradeNo, status: 'PAID', refund }, { status: 'PAID', refund }],
    ['Refund Failed', { type: 'Refund Failed', outTradeNo: ORDER.outTradeNo, status: 'PAID', refund: { ...refund, status: 'FAILED', code: 'NOTENOUGH' } }, { status: 'PAID', refund: { ...refund, status: 'FAILED', code: 'NOTENOUGH' } }],
    [
      'Order Refunded',
      { type: 'Order Refunded', outTradeNo: ORDER.outTradeNo, refundedFee: 5200, refundedAt: '2026-11-23T02:00:00.000Z' },
      { status: 'REFUNDED', refundedFee: 5200, refundedAt: '2026-11-23T02:00:00.000Z' },
    ],
  ])('%s: the order\'s fields and the transition\'s facts', (type, transition, facts) => {
    const id = outboxEntry(transition, AT).eventId;
    expect(detail(transition)).toStrictEqual({ ...common, eventId: id, ...facts });
    void type;
  });

  it('keeps every field of the order present, null or [] when the order has none (an order of the merchant\'s server)', () => {
    const closed = detail({ type: 'Order Closed', outTradeNo: MERCHANT_ORDER.outTradeNo, closedAt: AT.toISOString(), closeReason: 'expired' }, MERCHANT_ORDER);
    expect(closed).toStrictEqual({
      schemaVersion: 1,
      eventId: eventId(MERCHANT_ORDER.outTradeNo, 'Order Closed'),
      outTradeNo: MERCHANT_ORDER.outTradeNo,
      status: 'CLOSED',
      totalFee: 9900,
      description: 'Membership',
      items: [],
      attach: null,
      appId: null,
      openid: null,
      occurredAt: '2026-11-23T01:05:00.000Z',
      closedAt: '2026-11-23T01:05:00.000Z',
      closeReason: 'expired',
    });
  });

  it('tells the status the transition made, not the order\'s status when it is published (a late sweep)', () => {
    const paid = outboxEntry({ type: 'Order Paid', outTradeNo: ORDER.outTradeNo, transactionId: TX, paidAt: AT.toISOString(), paidVia: 'query' }, AT);
    expect(eventDetail({ ...ORDER, status: 'REFUNDED' as Order['status'] }, paid).status).toBe('PAID');
  });

  it('is far below EventBridge\'s 256 KB for the largest order a frontend can make', () => {
    const items = Array.from({ length: MAX_ITEMS }, (_, i) => ({ sku: `sku-${'x'.repeat(58)}${i}`, name: 'n'.repeat(128), quantity: 99, unitPriceFen: 999_999 }));
    const entry = outboxEntry({ type: 'Order Paid', outTradeNo: ORDER.outTradeNo, transactionId: TX, paidAt: AT.toISOString(), paidVia: 'notify' }, AT);
    expect(Buffer.byteLength(JSON.stringify(eventDetail({ ...ORDER, items }, entry)))).toBeLessThan(32 * 1024);
  });
});
