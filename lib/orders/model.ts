import type { OutboxEntry } from '../events/outbox';
import type { PaymentRequest, TradeType } from './gateway';

export { TRADE_TYPES, type TradeType } from './gateway';

/**
 * PENDING → PAID | CLOSED | FAILED (docs/reference/http-api.md: Order lifecycle); PAID → REFUNDED once successful refunds
 * add up to the whole amount (a partly refunded order stays PAID, with its refundedFee).
 */
export type OrderStatus = 'PENDING' | 'PAID' | 'CLOSED' | 'FAILED' | 'REFUNDED';

/** Which path learned of a payment first. */
export type PaymentSource = 'notify' | 'query' | 'recovery' | 'reconciliation';

/** Something a person must look at: money that arrived (or went back) where the order did not expect it. */
export interface ReviewFlag {
  /**
   * REFUND_NOT_REQUESTED: a refund made outside this backend (the merchant platform), recorded anyway.
   * REFUND_SUCCEEDED_AFTER_FAILURE: a refund recorded FAILED (WeChat Pay had refused it for good)
   * that WeChat Pay then reported SUCCESS: the money went back after all, recorded SUCCESS.
   * APP_MISMATCH: WeChat Pay's bill has a payment of this out_trade_no under another app than the
   * order was made under: never recorded as the order's payment.
   * REFUND_ANSWER_FOR_ANOTHER_ORDER: WeChat Pay answered about this order's refund number with
   * another order's refund (out_refund_no is unique per merchant, and a merchant id may serve
   * several deployments or systems): never recorded; the refund stays as it was for a person.
   */
  reason:
    | 'AMOUNT_MISMATCH'
    | 'PAID_AFTER_CLOSE'
    | 'PAID_AFTER_FAILURE'
    | 'SECOND_PAYMENT'
    | 'REFUND_NOT_REQUESTED'
    | 'REFUND_SUCCEEDED_AFTER_FAILURE'
    | 'APP_MISMATCH'
    | 'REFUND_ANSWER_FOR_ANOTHER_ORDER';
  at: string;
  source: PaymentSource | 'refund-notify' | 'refund-request';
  transactionId: string;
  totalFee: number;
  /** For a refund flag: the refund, and its amount. */
  outRefundNo?: string;
  refundFee?: number;
  /** REFUND_SUCCEEDED_AFTER_FAILURE: WeChat Pay's code of the refusal that had ended the refund FAILED. */
  failureCode?: string;
  /** APP_MISMATCH: the app the payment was made under, as WeChat Pay's bill says. */
  appId?: string;
  /** REFUND_ANSWER_FOR_ANOTHER_ORDER: the order WeChat Pay's answer was about (its out_trade_no, when it named one). */
  answeredOutTradeNo?: string;
}

/**
 * A refund's life (docs/reference/http-api.md: Refunds): PROCESSING from before WeChat Pay is asked until it ends;
 * SUCCESS (the money reached the payer), CHANGE (it could not: a person must refund by other means),
 * REFUNDCLOSE (closed); FAILED when WeChat Pay refused it for good. The last two give back the amount.
 */
export const REFUND_STATUSES = ['PROCESSING', 'SUCCESS', 'CHANGE', 'REFUNDCLOSE', 'FAILED'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/** One refund of an order, kept in the order's `refunds` map under its out_refund_no. */
export interface OrderRefund {
  outRefundNo: string;
  /** Fen. */
  refundFee: number;
  reason?: string;
  status: RefundStatus;
  createdAt: string;
  /** `api` (asked for through this backend) or `external` (made in the merchant platform, learned of later). */
  origin: 'api' | 'external';
  /** What made the request, for its idempotency key: a repeat must be the same request. */
  fingerprint?: string;
  /** WeChat Pay's refund id, once it accepted the refund. */
  refundId?: string;
  acceptedAt?: string;
  /** When it ended (any status but PROCESSING). */
  settledAt?: string;
  /** When the money reached the payer (SUCCESS), as WeChat Pay says. */
  succeededAt?: string;
  /** FAILED: WeChat Pay's err_code and description. */
  failureCode?: string;
  failureMessage?: string;
  /** Where the money went, as WeChat Pay reports it (e.g. the payer's balance). */
  receivedBy?: string;
}

export interface Order {
  outTradeNo: string;
  status: OrderStatus;
  tradeType: TradeType;
  /** Fen (1/100 yuan), an integer >= 1. */
  totalFee: number;
  description: string;
  attach?: string;
  /** The payer, for JSAPI orders (orders made before it was kept here have it in `unifiedOrder` only). */
  openid?: string;
  /** How the order's requests are signed (v2: MD5 or HMAC-SHA256): its callbacks must be signed so too. */
  signType: string;
  createdAt: string;
  expiresAt: string;
  /**
   * The request that placed the payment, as the order's gateway built it: a repeat must send exactly
   * this (the name is v2's unifiedorder, where orders began; the gateway reads it).
   */
  unifiedOrder: PaymentRequest;
  idempotencyKey?: string;
  prepayId?: string;
  codeUrl?: string;
  mwebUrl?: string;
  /** When WeChat Pay issued the current prepay_id / mweb_url (they expire after 2 h / 5 min). */
  prepayIssuedAt?: string;
  paidAt?: string;
  transactionId?: string;
  paidVia?: PaymentSource;
  /** The paid-by-day index key, `<yyyyMMdd Beijing>#<shard>`, set with PAID. */
  paidDayShard?: string;
  closedAt?: string;
  closeReason?: string;
  failedAt?: string;
  failureCode?: string;
  failureMessage?: string;
  /** Epoch ms of the last orderquery a client's poll caused (throttles polling). */
  lastQueriedAt?: number;
  /** Recovery bookkeeping, present only while PENDING (the pending index is sparse). */
  pendingShard?: string;
  nextCheckAt?: number;
  checkCount?: number;
  /** Keyed by transaction id, so a retried report of the same anomaly is recorded once. */
  review: Record<string, ReviewFlag>;
  /** The app the order was made under (orders made before apps were recorded have none). */
  appId?: string;
  /** A frontend's order: the catalog lines it was priced from, at the prices of that moment. */
  items?: OrderLine[];
  /** Events of its transitions not yet confirmed published (lib/events/outbox.ts). */
  outbox?: OutboxEntry[];
  /** Present only while the outbox holds events (the outbox index is sparse). */
  outboxShard?: string;
  outboxDue?: number;
  /** Refunds, by out_refund_no (absent until the first). */
  refunds?: Record<string, OrderRefund>;
  /** Fen refunded to the payer: the sum of the SUCCESS refunds. */
  refundedFee?: number;
  /**
   * Fen held by refunds that are not FAILED or REFUNDCLOSE: never more than totalFee, but for a refund
   * recorded FAILED that WeChat Pay made after all, which is recorded whatever room it finds (flagged).
   */
  refundHeldFee?: number;
  /** Refunds that count against WeChat Pay's 50 per order (all but FAILED). */
  refundCount?: number;
  /** PROCESSING refunds; while above 0 the order is in the sparse open-refunds index. */
  openRefunds?: number;
  refundShard?: string;
  refundCheckAt?: number;
  refundCheckCount?: number;
  refundedAt?: string;
}

/** What a frontend may see of an order: nothing personal (no openid, no client IP). */
export interface OrderView {
  outTradeNo: string;
  status: OrderStatus;
  totalFee: number;
  tradeType: TradeType;
  createdAt: string;
  expiresAt: string;
  paidAt?: string;
  transactionId?: string;
  /** Fen refunded so far, once the order is paid. */
  refundedFee?: number;
}

/** `view` with those of `optional`'s fields that are set (an empty string is not), in their order. */
function withOptional<View extends object>(view: View, optional: Partial<View>): View {
  for (const [name, value] of Object.entries(optional)) if (value) (view as Record<string, unknown>)[name] = value;
  return view;
}

export function toView(order: Order): OrderView {
  const { outTradeNo, status, totalFee, tradeType, createdAt, expiresAt } = order;
  const view = withOptional<OrderView>(
    { outTradeNo, status, totalFee, tradeType, createdAt, expiresAt },
    { paidAt: order.paidAt, transactionId: order.transactionId },
  );
  if (order.status === 'PAID' || order.status === 'REFUNDED') view.refundedFee = order.refundedFee ?? 0;
  return view;
}

/** What one path (callback, query, recovery) learned of a payment, to be recorded against its order. */
export interface PaymentReport {
  outTradeNo: string;
  transactionId: string;
  totalFee: number;
  paidAt: string;
  source: PaymentSource;
  /** For a callback: the sign type it was verified with, which must be the order's. */
  signType?: string;
  /** For a callback: the app it was sent under, which must be the order's. */
  appId?: string;
  /** The callback's app is the default one, which orders made before apps were recorded were made under. */
  defaultApp?: boolean;
}

/** What recording a payment did. */
export type PaymentOutcome =
  /** This report made the order PAID. */
  | { outcome: 'PAID'; order: Order }
  /** Already PAID with this transaction: nothing to do. */
  | { outcome: 'ALREADY_PAID'; order: Order }
  /** Money arrived for an order that was CLOSED/FAILED, or a second transaction: recorded, flagged. */
  | { outcome: 'FLAGGED'; order: Order; flag: ReviewFlag }
  /** The amount differs from the order's: flagged for review, never marked paid. */
  | { outcome: 'AMOUNT_MISMATCH'; order: Order; flag: ReviewFlag }
  /** Signed with another sign type than the order was made with: refused. */
  | { outcome: 'SIGN_TYPE_MISMATCH'; order: Order }
  /** Sent under another app than the order was made under: refused. */
  | { outcome: 'APP_MISMATCH'; order: Order }
  | { outcome: 'UNKNOWN_ORDER' };

/** One line of an order made from the catalog, at the price it was sold at. */
export interface OrderLine {
  sku: string;
  name: string;
  quantity: number;
  unitPriceFen: number;
}

/** What the merchant's server sees of an order: everything it needs to fulfil and support it. */
export interface MerchantOrderView extends OrderView {
  description: string;
  appId?: string;
  openid?: string;
  attach?: string;
  items?: OrderLine[];
  review: ReviewFlag[];
  refundedFee: number;
  /** Every refund, oldest first. */
  refunds: RefundView[];
}

/** What the merchant's server sees of a refund (POST/GET .../refunds). */
export interface RefundView {
  outRefundNo: string;
  outTradeNo: string;
  refundFee: number;
  status: RefundStatus;
  createdAt: string;
  reason?: string;
  refundId?: string;
  settledAt?: string;
  succeededAt?: string;
  /** FAILED: WeChat Pay's err_code. */
  code?: string;
  message?: string;
  /** `external`: made in the merchant platform, not through this API. */
  origin: OrderRefund['origin'];
}

/**
 * The refund an order records under `outRefundNo`, looked up among the map's own keys only:
 * `__proto__`, `constructor` and `toString` are valid out_refund_nos to WeChat Pay, and on a plain
 * object they would find Object.prototype's members.
 */
export function refundOf(order: Pick<Order, 'refunds'> | undefined, outRefundNo: string): OrderRefund | undefined {
  const refunds = order?.refunds;
  return refunds && Object.hasOwn(refunds, outRefundNo) ? refunds[outRefundNo] : undefined;
}

/** The review flag an order keeps under `key`, by own keys only (refundOf says why). */
export function reviewFlagOf(order: Pick<Order, 'review'> | undefined, key: string): ReviewFlag | undefined {
  const review = order?.review;
  return review && Object.hasOwn(review, key) ? review[key] : undefined;
}

export function toRefundView(order: Pick<Order, 'outTradeNo'>, refund: OrderRefund): RefundView {
  const { outRefundNo, refundFee, status, createdAt, origin } = refund;
  return withOptional<RefundView>(
    { outRefundNo, outTradeNo: order.outTradeNo, refundFee, status, createdAt, origin },
    {
      reason: refund.reason,
      refundId: refund.refundId,
      settledAt: refund.settledAt,
      succeededAt: refund.succeededAt,
      code: refund.failureCode,
      message: refund.failureMessage,
    },
  );
}

/** The order's payer (JSAPI orders), wherever the order kept it. */
export function openidOf(order: Pick<Order, 'openid' | 'unifiedOrder'>): string | undefined {
  return order.openid ?? order.unifiedOrder?.openid;
}

export function toMerchantView(order: Order): MerchantOrderView {
  const refunds = Object.values(order.refunds ?? {})
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.outRefundNo.localeCompare(b.outRefundNo))
    .map((refund) => toRefundView(order, refund));
  const view: MerchantOrderView = {
    ...toView(order),
    description: order.description,
    review: Object.values(order.review ?? {}),
    refundedFee: order.refundedFee ?? 0,
    refunds,
  };
  if (order.appId) view.appId = order.appId;
  const openid = openidOf(order);
  if (openid) view.openid = openid;
  if (order.attach) view.attach = order.attach;
  if (order.items) view.items = order.items;
  return view;
}
