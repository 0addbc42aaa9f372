/**
 * Refunds, WeChat Pay's side: `/secapi/pay/refund` (mutual TLS: the merchant's API client
 * certificate) and `/pay/refundquery` (no certificate), declared for the transport. Which refund of
 * which order, and what its result means, is the caller's business.
 */
import { WechatPayResponseError } from './errors';
import type { Fields } from './sign';
import { signedXml, type Endpoint } from './transport';
import { WECHAT_OUT_TRADE_NO } from './unified-order';

/** WeChat Pay's rule for out_refund_no: "数字、大小写字母_-|*@", 1 to 64, unique within the merchant. */
export const WECHAT_OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const FEN = /^[1-9][0-9]{0,11}$/;
const FOUR_BYTE_UTF8 = /[\u{10000}-\u{10FFFF}]/u;

export interface RefundRequest {
  outTradeNo: string;
  /** Stored before the first call; every retry sends the same one, so it refunds once. */
  outRefundNo: string;
  /** The order's amount, fen. */
  totalFee: number;
  refundFee: number;
  /** `refund_desc`, at most 80 characters; shown to the payer. */
  reason?: string;
  /** Where WeChat Pay sends the refund's result (refund callbacks). */
  notifyUrl?: string;
}

/**
 * WeChat Pay accepted the refund: it is under way (the result comes by callback or refundquery).
 * `outTradeNo` and `transactionId` are the order the answer is about, as WeChat Pay said: whether
 * that is the caller's order is the caller's to check (an out_refund_no is unique per merchant, and
 * a merchant id may serve several systems).
 */
export interface RefundAccepted {
  outTradeNo: string;
  transactionId: string;
  outRefundNo: string;
  /** WeChat Pay's refund id. */
  refundId: string;
  refundFee: number;
  fields: Fields;
}

function checkRefund(request: RefundRequest): void {
  if (!WECHAT_OUT_TRADE_NO.test(request.outTradeNo))
    throw new TypeError('refund: outTradeNo must be 6 to 32 characters of [0-9A-Za-z_-|*]');
  if (!WECHAT_OUT_REFUND_NO.test(request.outRefundNo))
    throw new TypeError('refund: outRefundNo must be 1 to 64 characters of [0-9A-Za-z_-|*@]');
  for (const [name, fee] of [
    ['totalFee', request.totalFee],
    ['refundFee', request.refundFee],
  ] as const) {
    if (!Number.isSafeInteger(fee) || !FEN.test(String(fee))) throw new TypeError(`refund: ${name} must be a whole number of fen >= 1`);
  }
  if (request.refundFee > request.totalFee) throw new TypeError('refund: refundFee is over totalFee');
  const reason = request.reason;
  if (reason !== undefined && (reason.length > 80 || FOUR_BYTE_UTF8.test(reason) || reason.trim() !== reason)) {
    throw new TypeError('refund: reason must be at most 80 characters WeChat Pay can carry, without white space around it');
  }
}

/** `/secapi/pay/refund`: asks WeChat Pay to refund part or all of a paid order. */
export const REFUND: Endpoint<RefundRequest, RefundAccepted> = {
  name: 'refund',
  method: 'refund',
  path: '/secapi/pay/refund',
  needsClientCert: true,
  required: ['out_trade_no', 'out_refund_no', 'total_fee', 'refund_fee'],
  fields: (request) => ({
    out_trade_no: request.outTradeNo,
    out_refund_no: request.outRefundNo,
    total_fee: String(request.totalFee),
    refund_fee: String(request.refundFee),
    refund_fee_type: 'CNY',
    refund_desc: request.reason,
    notify_url: request.notifyUrl,
  }),
  check: checkRefund,
  answer: signedXml((fields, request): RefundAccepted => {
    if (fields.out_refund_no !== request.outRefundNo) {
      throw new WechatPayResponseError(
        `WeChat Pay refund answered about out_refund_no "${(fields.out_refund_no ?? '').slice(0, 64)}", not ${request.outRefundNo}`,
      );
    }
    if (fields.refund_fee !== String(request.refundFee)) {
      throw new WechatPayResponseError(
        `WeChat Pay refund answered refund_fee "${(fields.refund_fee ?? '').slice(0, 12)}", not ${request.refundFee}`,
      );
    }
    if (!fields.refund_id) throw new WechatPayResponseError('WeChat Pay refund succeeded without a refund_id');
    if (!fields.out_trade_no || !fields.transaction_id)
      throw new WechatPayResponseError('WeChat Pay refund answered without naming its order (out_trade_no, transaction_id)');
    return {
      outTradeNo: fields.out_trade_no,
      transactionId: fields.transaction_id,
      outRefundNo: request.outRefundNo,
      refundId: fields.refund_id,
      refundFee: request.refundFee,
      fields,
    };
  }),
};

export type RefundQuery = { outRefundNo: string } | { outTradeNo: string };

/** One refund as refundquery reports it (its `_$n` fields). */
export interface QueriedRefund {
  outRefundNo: string;
  refundId: string;
  refundFee: number;
  /** SUCCESS, PROCESSING, CHANGE or REFUNDCLOSE. */
  status: string;
  /** `yyyy-MM-dd HH:mm:ss` Beijing, once SUCCESS. */
  successTime?: string;
}

/** The order the answer is about, as WeChat Pay said (RefundAccepted says why the caller checks it). */
export interface RefundQueryResult {
  outTradeNo: string;
  transactionId: string;
  totalFee?: number;
  refunds: QueriedRefund[];
  fields: Fields;
}

const REFUND_STATUS = /^[A-Z_]{1,32}$/;

/** Reads refundquery's indexed fields: `refund_count`, then `out_refund_no_$n`, `refund_fee_$n`, ... from 0. */
export function readRefundQuery(fields: Fields): QueriedRefund[] {
  const count = Number(fields.refund_count ?? '');
  if (!Number.isInteger(count) || count < 0 || count > 50) {
    throw new WechatPayResponseError(`WeChat Pay refundquery answered refund_count "${(fields.refund_count ?? '').slice(0, 8)}"`);
  }
  const refunds: QueriedRefund[] = [];
  for (let n = 0; n < count; n += 1) {
    const outRefundNo = fields[`out_refund_no_${n}`];
    const refundId = fields[`refund_id_${n}`];
    const refundFee = fields[`refund_fee_${n}`];
    const status = fields[`refund_status_${n}`];
    if (!outRefundNo || !refundId || !refundFee || !FEN.test(refundFee) || !status || !REFUND_STATUS.test(status)) {
      throw new WechatPayResponseError(`WeChat Pay refundquery answered an incomplete refund ${n}`);
    }
    const successTime = fields[`refund_success_time_${n}`];
    refunds.push({ outRefundNo, refundId, refundFee: Number(refundFee), status, ...(successTime ? { successTime } : {}) });
  }
  return refunds;
}

/** `/pay/refundquery`: where the refunds of an order, or one refund, stand. REFUNDNOTEXIST is thrown. */
export const REFUND_QUERY: Endpoint<RefundQuery, RefundQueryResult> = {
  name: 'refundquery',
  method: 'refundQuery',
  path: '/pay/refundquery',
  needsClientCert: false,
  required: [],
  fields: (query) => ('outRefundNo' in query ? { out_refund_no: query.outRefundNo } : { out_trade_no: query.outTradeNo }),
  check: (query) => {
    if ('outRefundNo' in query ? !WECHAT_OUT_REFUND_NO.test(query.outRefundNo) : !WECHAT_OUT_TRADE_NO.test(query.outTradeNo)) {
      throw new TypeError("refundQuery: name one refund (outRefundNo) or one order (outTradeNo) in WeChat Pay's characters");
    }
  },
  answer: signedXml((fields, query): RefundQueryResult => {
    const refunds = readRefundQuery(fields);
    if ('outRefundNo' in query && !refunds.some((refund) => refund.outRefundNo === query.outRefundNo)) {
      throw new WechatPayResponseError(`WeChat Pay refundquery answered without refund ${query.outRefundNo}`);
    }
    if ('outTradeNo' in query && fields.out_trade_no !== query.outTradeNo) {
      throw new WechatPayResponseError(`WeChat Pay refundquery answered about another order`);
    }
    if (!fields.out_trade_no || !fields.transaction_id)
      throw new WechatPayResponseError('WeChat Pay refundquery answered without naming its order (out_trade_no, transaction_id)');
    const totalFee = fields.total_fee && FEN.test(fields.total_fee) ? Number(fields.total_fee) : undefined;
    return {
      outTradeNo: fields.out_trade_no,
      transactionId: fields.transaction_id,
      ...(totalFee !== undefined ? { totalFee } : {}),
      refunds,
      fields,
    };
  }),
};
