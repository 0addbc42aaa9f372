/**
 * What a trade bill is, as this code reads it (index.ts says what the answer and the bill text look
 * like): its rows and summary, its layouts' names, the failures of reading it, and the limits on
 * what is read.
 */
import type { Failure } from '../../result';

/** One line of the bill: a payment (交易状态 SUCCESS), a refund (REFUND), or another state. */
export interface BillRow {
  /** `payment` for 交易状态 SUCCESS, `refund` for REFUND, `other` for anything else (REVOKED, ...). */
  kind: 'payment' | 'refund' | 'other';
  /** 交易时间, `yyyy-MM-dd HH:mm:ss` Beijing: when it was paid, or when the refund was accepted. */
  tradeTime: string;
  /** 公众账号ID: the appid the trade was made with. */
  appId: string;
  /** 商户号 */
  mchId: string;
  /** 特约商户号 (older bills: 子商户号); `0` for a direct merchant. */
  subMchId: string;
  /** 设备号 */
  deviceInfo: string;
  /** 微信订单号 */
  transactionId: string;
  /** 商户订单号 */
  outTradeNo: string;
  /** 用户标识 */
  openid: string;
  /** 交易类型: JSAPI, NATIVE, APP, MWEB, MICROPAY, ... */
  tradeType: string;
  /** 交易状态: SUCCESS, REFUND, REVOKED, ... */
  tradeState: string;
  /** 付款银行 */
  bankType: string;
  /** 货币种类 */
  feeType: string;
  /** 应结订单金额: the order amount less non-recharge coupons; 0 on a refund row. (Older bills: 总金额.) */
  settlementTotalFeeFen: number;
  /** 代金券金额 (older bills: 代金券或立减优惠金额). */
  couponFeeFen: number;
  /** 微信退款单号; `0` on a payment row. */
  refundId: string;
  /** 商户退款单号; `0` on a payment row. */
  outRefundNo: string;
  /** 退款金额: the refund as settled; 0 on a payment row. */
  refundFeeFen: number;
  /** 充值券退款金额 (older bills: 代金券或立减优惠退款金额). */
  couponRefundFeeFen: number;
  /** 退款类型: ORIGINAL, BALANCE, ...; empty on a payment row. */
  refundType: string;
  /** 退款状态 when the bill was made: SUCCESS, PROCESSING, ...; empty on a payment row. */
  refundStatus: string;
  /** 商品名称 (the order's `body`). */
  productName: string;
  /** 商户数据包 (the order's `attach`). */
  attach: string;
  /** 手续费, signed: a refund row gives fee back with a negative amount. */
  feeFen: number;
  /** 费率, as written (`0.60%`). */
  rate: string;
  /** 订单金额: the order's `total_fee`; 0 on a refund row. (Older bills: 总金额.) */
  totalFeeFen: number;
  /** 申请退款金额: the refund asked for; 0 on a payment row. (Older bills: 退款金额.) */
  appliedRefundFeeFen: number;
  /** 费率备注 (older bills have none: empty). */
  rateRemark: string;
  /** 退款申请时间: REFUND bills only. */
  refundRequestTime?: string;
  /** 退款成功时间: REFUND bills only. */
  refundSuccessTime?: string;
}

/** The summary line. Older bills have five columns; the two they lack are filled as noted. */
export interface BillSummary {
  /** 总交易单数: the number of lines above. */
  tradeCount: number;
  /** 应结订单总金额 (older bills: 总交易额). */
  settlementTotalFeeFen: number;
  /** 退款总金额 (older bills: 总退款金额). */
  refundFeeFen: number;
  /** 充值券退款总金额 (older bills: 总代金券或立减优惠退款金额). */
  couponRefundFeeFen: number;
  /** 手续费总金额, signed. */
  feeFen: number;
  /** 订单总金额 (older bills: 总交易额). */
  totalFeeFen: number;
  /** 申请退款总金额 (older bills: 总退款金额). */
  appliedRefundFeeFen: number;
}

/**
 * Which bill the text is: the 27-column `ALL` bill of merchants since 2018 (免充值券 settlement),
 * the 24-column `ALL` bill before it, or the current `SUCCESS` (20) and `REFUND` (29) bills.
 */
export type BillLayoutName = 'ALL' | 'ALL_LEGACY' | 'SUCCESS' | 'REFUND';

export interface Bill {
  ok: true;
  layout: BillLayoutName;
  rows: BillRow[];
  summary: BillSummary;
}

/** A bill read through without keeping its rows: which bill it is, and its summary (which counts them). */
export interface BillOutline {
  ok: true;
  layout: BillLayoutName;
  summary: BillSummary;
}

export type BillFailureReason =
  /** WeChat Pay has no bill for that day: no transactions (`No Bill Exist`, error_code 20002). */
  | 'NO_BILL'
  /** The bill is not made yet: ask again after 10:00 Beijing (`Bill Creating`). */
  | 'BILL_CREATING'
  /** WeChat Pay failed on its side (`SYSTEMERROR`, `CompressGZip Error`): ask again later. */
  | 'SYSTEM_ERROR'
  /** WeChat Pay refused the request (`invalid bill_date`, `sign error`, ...): fix it before asking again. */
  | 'REFUSED'
  /** The answer is not a bill this code can read whole: cut short, wrong columns, bad amounts, bad gzip. */
  | 'MALFORMED_BILL'
  /** The answer, or what it decompresses to, is over the size limit (a gzip bomb, or a wrong URL). */
  | 'TOO_LARGE'
  /** The bill could not be fetched: network failure, timeout or an HTTP error (the download call only). */
  | 'NETWORK_ERROR'
  /** A row belongs to another merchant: this is not the bill that was asked for (the download call only). */
  | 'FOREIGN_BILL';

export type BillFailure = Failure<BillFailureReason>;

export type BillResult = Bill | BillFailure;

/** Failures after which asking again later can succeed. */
export const RETRYABLE_BILL_FAILURES: ReadonlySet<BillFailureReason> = new Set<BillFailureReason>([
  'BILL_CREATING',
  'SYSTEM_ERROR',
  'NETWORK_ERROR',
]);

/**
 * Default limit on the answer and on what it decompresses to: a bill line is about 300 bytes, so
 * this holds some 300,000 lines, far beyond this product's day.
 */
export const DEFAULT_MAX_BILL_BYTES = 100 * 1024 * 1024;

export interface ReadBillOptions {
  /** Limit on the answer's bytes and on its decompressed bytes. Default DEFAULT_MAX_BILL_BYTES. */
  maxBytes?: number;
}

/**
 * Longest line read, in characters. A bill line is a few hundred; the limit keeps a reader that
 * gets lines one at a time from holding a whole answer without line breaks, and bounds every value
 * a line can hand on (the reconciliation report stores some).
 */
export const MAX_BILL_LINE_CHARS = 16 * 1024;

/** A value a failure quotes, cut to `max` characters. */
export function quote(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}...` : value);
}

/** What a thrown error said, cut short, for a failure's message. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 100) : String(error).slice(0, 100);
}
