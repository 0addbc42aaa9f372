import type { SignType } from '../wechatpay/sign';
import type { TradeType, UnifiedOrderParams } from '../wechatpay/unified-order';

export { TRADE_TYPES, type TradeType } from '../wechatpay/unified-order';

/** PENDING → PAID | CLOSED | FAILED (README: Order lifecycle). PAID is terminal. */
export type OrderStatus = 'PENDING' | 'PAID' | 'CLOSED' | 'FAILED';

/** Which path learned of a payment first. */
export type PaymentSource = 'notify' | 'query' | 'recovery';

/** Something a person must look at: money that arrived where the order did not expect it. */
export interface ReviewFlag {
  reason: 'AMOUNT_MISMATCH' | 'PAID_AFTER_CLOSE' | 'PAID_AFTER_FAILURE' | 'SECOND_PAYMENT';
  at: string;
  source: PaymentSource;
  transactionId: string;
  totalFee: number;
}

export interface Order {
  outTradeNo: string;
  status: OrderStatus;
  tradeType: TradeType;
  /** Fen (1/100 yuan), an integer >= 1. */
  totalFee: number;
  description: string;
  attach?: string;
  signType: SignType;
  createdAt: string;
  expiresAt: string;
  /** The exact parameters of the first unified order: a repeat must send exactly these. */
  unifiedOrder: UnifiedOrderParams;
  idempotencyKey?: string;
  prepayId?: string;
  codeUrl?: string;
  mwebUrl?: string;
  /** When WeChat Pay issued the current prepay_id / mweb_url (they expire after 2 h / 5 min). */
  prepayIssuedAt?: string;
  paidAt?: string;
  transactionId?: string;
  paidVia?: PaymentSource;
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
}

export function toView(order: Order): OrderView {
  const view: OrderView = {
    outTradeNo: order.outTradeNo,
    status: order.status,
    totalFee: order.totalFee,
    tradeType: order.tradeType,
    createdAt: order.createdAt,
    expiresAt: order.expiresAt,
  };
  if (order.paidAt) view.paidAt = order.paidAt;
  if (order.transactionId) view.transactionId = order.transactionId;
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
  signType?: SignType;
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
  | { outcome: 'UNKNOWN_ORDER' };

/** One line of an order made from the catalog, at the price it was sold at. */
export interface OrderLine {
  sku: string;
  name: string;
  quantity: number;
  unitPriceFen: number;
}
