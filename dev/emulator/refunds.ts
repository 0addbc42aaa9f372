import { randomDigits } from '../wechatpay-documents/payment-notification';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../lib/wechatpay/time';
import type { Fields, SignableFields } from '../../lib/wechatpay/sign';
import { toBeijingDateTime } from '../wechatpay-documents/refund-notification';
import { lackParams, missing, type Refusal } from './rules';
import { refundsOf, type EmulatorState, type Order, type Refund, type RefundOutcome } from './state';

/**
 * WeChat Pay's refund rules (`/secapi/pay/refund`, `/pay/refundquery`), as the emulator applies
 * them. Sources: WeChat Pay's refund documentation (the same out_refund_no refunds once, at most 50
 * refunds per order, a minute apart, within a year of payment) and its error table
 * (NOTENOUGH, TRADE_OVERDUE, FREQUENCY_LIMITED "该笔退款未受理，请降低频率后重试", REFUNDNOTEXIST).
 */

/** At most this many refunds per order. */
export const MAX_REFUNDS_PER_ORDER = 50;
/** Refunds of one order at least this far apart (on the scaled clock). */
export const REFUND_SPACING_MS = 60_000;
/** A refund is possible within a year of payment: a calendar rule, on the real clock (like bill dates). */
export const REFUND_WINDOW_MS = 365 * 24 * 60 * 60 * 1000;
/** How long an accepted refund stays PROCESSING before it ends (on the scaled clock). */
export const REFUND_SETTLE_MS = 10_000;

// "商户系统内部的退款单号，商户系统内部唯一，只能是数字、大小写字母_-|*@ ，同一退款单号多次请求只退一笔。"
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const FEN = /^[1-9][0-9]{0,9}$/;
const FOUR_BYTE_UTF8 = /[\u{10000}-\u{10FFFF}]/u;

/** 29 digits starting 503, like WeChat Pay's refund ids. */
export function newRefundId(): string {
  return `503${randomDigits(26)}`;
}

/** Refunds that hold part of the order's amount: all but the closed ones. */
function heldFee(state: EmulatorState, outTradeNo: string): number {
  return refundsOf(state, outTradeNo)
    .filter((refund) => refund.status !== 'REFUNDCLOSE')
    .reduce((sum, refund) => sum + refund.refundFee, 0);
}

function paramError(errCodeDes: string): Refusal {
  return { errCode: 'PARAM_ERROR', errCodeDes };
}

export interface RefundContext {
  state: EmulatorState;
  timeScale: number;
  /** Called once for each refund WeChat Pay accepts (the emulator ends it later and calls back). */
  accepted(refund: Refund, order: Order): void;
}

/** The order a refund request names: by transaction_id when given, else by out_trade_no. */
function orderOf(state: EmulatorState, fields: Fields): Order | undefined {
  if (!missing(fields, 'transaction_id')) return state.ordersByTransactionId.get(fields.transaction_id ?? '');
  return state.orders.get(fields.out_trade_no ?? '');
}

/** The fields of an accepted refund, in the answer to `/secapi/pay/refund`. */
function acceptedFields(refund: Refund, order: Order): SignableFields {
  return {
    transaction_id: order.transactionId,
    out_trade_no: order.outTradeNo,
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_fee: String(refund.refundFee),
    settlement_refund_fee: String(refund.refundFee),
    total_fee: String(order.totalFee),
    settlement_total_fee: String(order.totalFee),
    fee_type: 'CNY',
    cash_fee: String(order.totalFee),
    cash_refund_fee: String(refund.refundFee),
  };
}

/** `/secapi/pay/refund`: accepts a refund (PROCESSING) or refuses it with WeChat Pay's code. */
export function answerRefund(ctx: RefundContext, fields: Fields, now: Date): { fields: SignableFields } | { refusal: Refusal } {
  if (missing(fields, 'out_trade_no') && missing(fields, 'transaction_id')) return { refusal: lackParams('out_trade_no或transaction_id') };
  for (const name of ['out_refund_no', 'total_fee', 'refund_fee']) if (missing(fields, name)) return { refusal: lackParams(name) };
  const outRefundNo = fields.out_refund_no as string;
  if (!OUT_REFUND_NO.test(outRefundNo)) return { refusal: paramError('out_refund_no参数错误: 1-64位数字、大小写字母或_-|*@') };
  if (!FEN.test(fields.total_fee as string)) return { refusal: paramError('total_fee参数错误: 须为正整数(分)') };
  if (!FEN.test(fields.refund_fee as string)) return { refusal: paramError('refund_fee参数错误: 须为正整数(分)') };
  if (fields.refund_fee_type !== undefined && fields.refund_fee_type !== 'CNY')
    return { refusal: paramError('refund_fee_type参数错误: 仅支持CNY') };
  const desc = fields.refund_desc;
  if (desc !== undefined && (desc.length > 80 || FOUR_BYTE_UTF8.test(desc)))
    return { refusal: paramError('refund_desc参数错误: 不能超过80个字符, 不能含4字节UTF-8字符') };
  const notifyUrl = fields.notify_url;
  if (notifyUrl !== undefined && !/^https?:\/\/[^?\s]{1,248}$/.test(notifyUrl)) return { refusal: paramError('notify_url参数格式错误') };

  const { state } = ctx;
  const order = orderOf(state, fields);
  // An order belongs to the app it was placed under: asked under another app, it does not exist.
  if (!order || order.appId !== fields.appid) return { refusal: { errCode: 'ORDERNOTEXIST', errCodeDes: '订单号不存在' } };
  const refundFee = Number(fields.refund_fee);
  const existing = state.refunds.get(outRefundNo);
  if (existing) {
    // The same out_refund_no refunds only once: a repeat is answered with the refund it made.
    if (existing.outTradeNo !== order.outTradeNo || existing.refundFee !== refundFee) {
      return { refusal: { errCode: 'INVALID_REQUEST', errCodeDes: '商户退款单号重复，且与原退款的订单或金额不一致' } };
    }
    return { fields: acceptedFields(existing, order) };
  }
  if (order.state !== 'SUCCESS') return { refusal: { errCode: 'ERROR', errCodeDes: '订单状态错误，未支付的订单不能退款' } };
  if (Number(fields.total_fee) !== order.totalFee) return { refusal: paramError('订单金额total_fee与原订单不一致') };
  if (order.paidAt !== undefined && now.getTime() - order.paidAt > REFUND_WINDOW_MS) {
    return { refusal: { errCode: 'TRADE_OVERDUE', errCodeDes: '订单已经超过退款期限' } };
  }
  const previous = refundsOf(state, order.outTradeNo);
  if (previous.length >= MAX_REFUNDS_PER_ORDER) {
    return { refusal: { errCode: 'INVALID_REQ_TOO_MUCH', errCodeDes: `一笔订单最多退款${MAX_REFUNDS_PER_ORDER}次` } };
  }
  const last = previous.reduce((latest, refund) => Math.max(latest, refund.acceptedAt), 0);
  if (last > 0 && now.getTime() - last < REFUND_SPACING_MS * ctx.timeScale) {
    return { refusal: { errCode: 'FREQUENCY_LIMITED', errCodeDes: '该笔退款未受理，请降低频率后重试' } };
  }
  if (heldFee(state, order.outTradeNo) + refundFee > order.totalFee) {
    return { refusal: { errCode: 'NOTENOUGH', errCodeDes: '退款金额大于订单可退金额' } };
  }
  const refund = createRefund(state, order, { outRefundNo, refundFee, refundDesc: desc, notifyUrl, source: 'API' }, now);
  ctx.accepted(refund, order);
  return { fields: acceptedFields(refund, order) };
}

/** Stores a new PROCESSING refund of a paid order, ending the way the `refundOutcome` fault says. */
export function createRefund(
  state: EmulatorState,
  order: Order,
  request: { outRefundNo: string; refundFee: number; refundDesc?: string; notifyUrl?: string; source: Refund['source'] },
  now: Date,
): Refund {
  const refund: Refund = {
    outTradeNo: order.outTradeNo,
    outRefundNo: request.outRefundNo,
    refundId: newRefundId(),
    refundFee: request.refundFee,
    requestedAt: toBeijingTimestamp(now),
    status: 'PROCESSING',
    acceptedAt: now.getTime(),
    outcome: state.faults.refundOutcome,
    ...(request.refundDesc !== undefined ? { refundDesc: request.refundDesc } : {}),
    ...(request.notifyUrl !== undefined ? { notifyUrl: request.notifyUrl } : {}),
    source: request.source,
    notifications: [],
  };
  state.refunds.set(refund.outRefundNo, refund);
  return refund;
}

/** The refund ends as planned: SUCCESS (with its time), CHANGE or REFUNDCLOSE. */
export function endRefund(refund: Refund, outcome: RefundOutcome, now: Date): void {
  refund.status = outcome;
  if (outcome === 'SUCCESS') refund.succeededAt = toBeijingTimestamp(now);
}

/** Orders hold at most 50 refunds; refundquery pages them 10 at a time (`offset`). */
const PAGE = 10;

/** `/pay/refundquery`: by out_refund_no or refund_id (that refund), else by out_trade_no or transaction_id (the order's). */
export function answerRefundQuery(state: EmulatorState, fields: Fields): { fields: SignableFields } | { refusal: Refusal } {
  let refunds: Refund[];
  let order: Order | undefined;
  if (!missing(fields, 'refund_id') || !missing(fields, 'out_refund_no')) {
    const refund = !missing(fields, 'refund_id')
      ? [...state.refunds.values()].find((r) => r.refundId === fields.refund_id)
      : state.refunds.get(fields.out_refund_no ?? '');
    order = refund ? state.orders.get(refund.outTradeNo) : undefined;
    refunds = refund ? [refund] : [];
  } else if (!missing(fields, 'transaction_id') || !missing(fields, 'out_trade_no')) {
    order = orderOf(state, fields);
    refunds = order ? refundsOf(state, order.outTradeNo) : [];
  } else {
    return { refusal: lackParams('out_refund_no、out_trade_no、transaction_id或refund_id') };
  }
  // An order's refunds belong to its app: asked under another of the merchant's apps, there are none.
  if (!order || refunds.length === 0 || order.appId !== fields.appid)
    return { refusal: { errCode: 'REFUNDNOTEXIST', errCodeDes: '退款订单查询失败' } };
  const offset = fields.offset === undefined || fields.offset === '' ? 0 : Number(fields.offset);
  if (!Number.isInteger(offset) || offset < 0 || (offset > 0 && offset >= refunds.length)) return { refusal: paramError('offset参数错误') };
  const page = refunds.slice(offset, offset + PAGE);
  const out: Record<string, string | undefined> = {
    transaction_id: order.transactionId,
    out_trade_no: order.outTradeNo,
    total_fee: String(order.totalFee),
    settlement_total_fee: String(order.totalFee),
    fee_type: 'CNY',
    cash_fee: String(order.totalFee),
    refund_count: String(page.length),
    ...(refunds.length > PAGE ? { total_refund_count: String(refunds.length) } : {}),
  };
  page.forEach((refund, n) => {
    out[`out_refund_no_${n}`] = refund.outRefundNo;
    out[`refund_id_${n}`] = refund.refundId;
    out[`refund_channel_${n}`] = 'ORIGINAL';
    out[`refund_fee_${n}`] = String(refund.refundFee);
    out[`settlement_refund_fee_${n}`] = String(refund.refundFee);
    out[`refund_status_${n}`] = refund.status;
    out[`refund_account_${n}`] = 'REFUND_SOURCE_UNSETTLED_FUNDS';
    out[`refund_recv_accout_${n}`] = '支付用户的零钱';
    const succeeded = refund.succeededAt ? fromBeijingTimestamp(refund.succeededAt) : undefined;
    if (succeeded) out[`refund_success_time_${n}`] = toBeijingDateTime(succeeded);
  });
  return { fields: out };
}

/** The control API's view of a refund (JSON), with its callback attempts. */
export function refundView(refund: Refund): Record<string, unknown> {
  return {
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_fee: refund.refundFee,
    refund_status: refund.status,
    outcome: refund.outcome,
    source: refund.source,
    refund_desc: refund.refundDesc,
    notify_url: refund.notifyUrl,
    requested_at: refund.requestedAt,
    succeeded_at: refund.succeededAt,
    notifications: refund.notifications,
  };
}
