import type { Fields, SignableFields, SignType } from '../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { newCodeUrl, newMwebUrl, newPrepayId, newTransactionId, SIM_PAYER_OPENID } from './identifiers';
import type { EmulatorState, Order } from './state';

/**
 * What a repeat of a unified order is compared on: every parameter but nonce_str and sign, with the
 * sign type made explicit so that an absent sign_type and `MD5` count as the same.
 */
export function comparableParams(fields: Fields, signType: SignType): Fields {
  const params: Fields = {};
  for (const [name, value] of Object.entries(fields)) {
    if (name !== 'nonce_str' && name !== 'sign' && value !== '') params[name] = value;
  }
  params.sign_type = signType;
  return params;
}

export function sameParams(a: Fields, b: Fields): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => a[name] === b[name]);
}

/** Stores a new unpaid order for a valid first unified order call. */
export function createOrder(state: EmulatorState, fields: Fields, signType: SignType, now: Date): Order {
  const prepayId = newPrepayId(now);
  const tradeType = fields.trade_type ?? '';
  const order: Order = {
    outTradeNo: fields.out_trade_no ?? '',
    params: comparableParams(fields, signType),
    signType,
    appId: fields.appid ?? '',
    tradeType,
    totalFee: Number(fields.total_fee),
    body: fields.body ?? '',
    attach: fields.attach,
    openid: fields.openid,
    deviceInfo: fields.device_info,
    notifyUrl: fields.notify_url ?? '',
    prepayId,
    codeUrl: tradeType === 'NATIVE' ? newCodeUrl() : undefined,
    mwebUrl: tradeType === 'MWEB' ? newMwebUrl(prepayId) : undefined,
    createdAt: now.getTime(),
    state: 'NOTPAY',
    notifications: [],
  };
  state.orders.set(order.outTradeNo, order);
  return order;
}

/** The user pays: the order becomes SUCCESS with a transaction id and a Beijing `time_end`. */
export function payOrder(state: EmulatorState, order: Order, now: Date): void {
  order.state = 'SUCCESS';
  order.transactionId = newTransactionId(now);
  order.timeEnd = toBeijingTimestamp(now);
  order.paidAt = now.getTime();
  state.ordersByTransactionId.set(order.transactionId, order);
}

/** The payment fields WeChat Pay reports for a paid order, in both orderquery and the callback. */
export function paymentFields(order: Order): SignableFields & { out_trade_no: string; total_fee: string } {
  return {
    device_info: order.deviceInfo,
    openid: order.openid ?? SIM_PAYER_OPENID,
    is_subscribe: 'N',
    trade_type: order.tradeType,
    bank_type: 'OTHERS',
    total_fee: String(order.totalFee),
    fee_type: 'CNY',
    cash_fee: String(order.totalFee),
    transaction_id: order.transactionId,
    out_trade_no: order.outTradeNo,
    appid: order.appId,
    attach: order.attach,
    time_end: order.timeEnd,
  };
}

const TRADE_STATE_DESC = { NOTPAY: '订单未支付', SUCCESS: '支付成功', CLOSED: '订单已关闭' } as const;

/** The order part of an orderquery answer. */
export function queryFields(order: Order): SignableFields {
  const state = { trade_state: order.state, trade_state_desc: TRADE_STATE_DESC[order.state] };
  if (order.state === 'SUCCESS') return { ...paymentFields(order), ...state };
  return {
    device_info: order.deviceInfo,
    out_trade_no: order.outTradeNo,
    appid: order.appId,
    attach: order.attach,
    total_fee: String(order.totalFee),
    ...state,
  };
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** The control API's view of an order (JSON), with the calls and callbacks it saw. */
export function orderView(state: EmulatorState, order: Order): Record<string, unknown> {
  return {
    out_trade_no: order.outTradeNo,
    appid: order.appId,
    trade_state: order.state,
    transaction_id: order.transactionId,
    total_fee: order.totalFee,
    trade_type: order.tradeType,
    sign_type: order.signType,
    body: order.body,
    attach: order.attach,
    openid: order.openid,
    notify_url: order.notifyUrl,
    prepay_id: order.prepayId,
    code_url: order.codeUrl,
    mweb_url: order.mwebUrl,
    time_end: order.timeEnd,
    created_at: iso(order.createdAt),
    paid_at: iso(order.paidAt),
    closed_at: iso(order.closedAt),
    calls: state.calls.get(order.outTradeNo) ?? [],
    notifications: order.notifications,
  };
}
