import { XmlFormatError } from '../../lib/wechatpay/errors';
import { nonceStr } from '../../lib/wechatpay/ids';
import { signFields, verifySignature, resolveSignType } from '../../lib/wechatpay/sign';
import type { Fields, SignableFields, SignType } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import { createOrder, queryFields, sameParams, comparableParams } from './orders';
import { answerRefund, answerRefundQuery } from './refunds';
import { checkExpiryOfNewOrder, checkUnifiedOrder, lackParams, missing } from './rules';
import type { Refusal } from './rules';
import { recordCall } from './state';
import type { CallRecord, EmulatorState, EndpointName, Order, Refund } from './state';

export interface Merchant {
  appId: string;
  mchId: string;
  apiKey: string;
}

export type EmulatorLog = (entry: Record<string, unknown>) => void;

export interface ApiContext {
  merchant: Merchant;
  state: EmulatorState;
  timeScale: number;
  log: EmulatorLog;
  /** Called for each refund WeChat Pay accepts: the server ends it later and calls back. */
  refundAccepted?: (refund: Refund, order: Order) => void;
  /**
   * Every app bound to the merchant id (the merchant's app and its other apps, e.g. a mini-program):
   * WeChat Pay takes calls under any of them. Default: the merchant's app alone.
   */
  boundAppIds?: readonly string[];
}

/** WeChat Pay's minimum age of an order before closeorder accepts it (on the scaled clock). */
export const CLOSE_MIN_AGE_MS = 5 * 60 * 1000;

/** What an endpoint decided: the fields of a successful answer, or a business refusal. */
type Result = { fields: SignableFields } | { refusal: Refusal };

type Handler = (ctx: ApiContext, fields: Fields, signType: SignType, now: Date) => Result;

interface Answer {
  xml: string;
  call: Omit<CallRecord, 'endpoint' | 'at'>;
}

/**
 * Answers one call of a WeChat Pay endpoint as WeChat Pay does, records it against its order, and
 * logs it (never the key). New endpoints (the refund ones) only add a handler to HANDLERS.
 */
export function answerApiCall(ctx: ApiContext, endpoint: EndpointName, method: string, body: Buffer): string {
  const now = new Date();
  let outTradeNo: string | undefined;
  const answer = evaluate(ctx, endpoint, method, body, now, (found) => (outTradeNo = found));
  if (outTradeNo !== undefined) {
    recordCall(ctx.state, outTradeNo, { endpoint, at: now.toISOString(), ...answer.call });
  }
  ctx.log({ event: 'api_call', endpoint, out_trade_no: outTradeNo, ...answer.call });
  return answer.xml;
}

/**
 * A `/secapi/` call that came without the merchant's API certificate (the plain HTTP port): refused
 * before anything is read, as WeChat Pay refuses it; nothing is refunded. Recorded like any call.
 */
export function refuseWithoutCertificate(ctx: ApiContext, endpoint: EndpointName, body: Buffer): string {
  let outTradeNo: string | undefined;
  try {
    const fields = parseXml(body);
    outTradeNo = findOrder(ctx.state, fields)?.outTradeNo ?? fields.out_trade_no;
  } catch {
    outTradeNo = undefined;
  }
  const answer = communicationFault('证书错误: 此接口需要商户API证书(双向证书)', 'CERT_REQUIRED');
  if (outTradeNo !== undefined) recordCall(ctx.state, outTradeNo, { endpoint, at: new Date().toISOString(), ...answer.call });
  ctx.log({ event: 'api_call', endpoint, out_trade_no: outTradeNo, ...answer.call });
  return answer.xml;
}

function evaluate(
  ctx: ApiContext,
  endpoint: EndpointName,
  method: string,
  body: Buffer,
  now: Date,
  concerns: (outTradeNo: string) => void,
): Answer {
  if (method !== 'POST') return communicationFault('请使用post方法', 'REQUIRE_POST_METHOD');
  if (body.toString('utf8').trim() === '') return communicationFault('post数据为空', 'POST_DATA_EMPTY');
  let fields: Fields;
  try {
    fields = parseXml(body);
  } catch (error) {
    if (error instanceof XmlFormatError) return communicationFault('XML格式错误', 'XML_FORMAT_ERROR');
    throw error;
  }
  const order = findOrder(ctx.state, fields);
  const outTradeNo = order?.outTradeNo ?? fields.out_trade_no;
  if (outTradeNo) concerns(outTradeNo);

  const resolved = resolveSignType(fields);
  if (!resolved.ok) return communicationFault('sign_type参数错误', 'SIGNERROR');
  const { signType } = resolved;
  const answer = (result: Result): Answer => signedAnswer(ctx.merchant, fields, signType, result);
  const { merchant, state } = ctx;

  // The merchant id selects the key, so it is checked before the signature can be.
  if (missing(fields, 'mch_id')) return answer({ refusal: lackParams('mch_id') });
  if (fields.mch_id !== merchant.mchId) {
    return answer({ refusal: { errCode: 'MCHID_NOT_EXIST', errCodeDes: '商户号mch_id不存在' } });
  }
  if (!verifySignature(fields, merchant.apiKey).ok) return communicationFault('签名错误', 'SIGNERROR');
  if (missing(fields, 'appid')) return answer({ refusal: lackParams('appid') });
  if (!boundApps(ctx).includes(fields.appid ?? '')) return answer({ refusal: foreignAppId(fields.appid ?? '') });
  if (missing(fields, 'nonce_str')) return answer({ refusal: lackParams('nonce_str') });

  if (state.faults.systemError[endpoint] > 0) {
    state.faults.systemError[endpoint] -= 1;
    return answer({ refusal: { errCode: 'SYSTEMERROR', errCodeDes: '系统错误' } });
  }
  const result = HANDLERS[endpoint](ctx, fields, signType, now);
  return answer(result);
}

const HANDLERS: Record<EndpointName, Handler> = {
  unifiedorder(ctx, fields, signType, now) {
    const invalid = checkUnifiedOrder(fields);
    if (invalid) return { refusal: invalid };
    const existing = ctx.state.orders.get(fields.out_trade_no ?? '');
    if (existing) {
      const settled = refuseSettled(existing);
      if (settled) return { refusal: settled };
      if (!sameParams(existing.params, comparableParams(fields, signType))) {
        return { refusal: { errCode: 'INVALID_REQUEST', errCodeDes: '201 商户订单号重复' } };
      }
      return { fields: prepayFields(existing) };
    }
    const tooShort = checkExpiryOfNewOrder(fields, now);
    if (tooShort) return { refusal: tooShort };
    return { fields: prepayFields(createOrder(ctx.state, fields, signType, now)) };
  },

  orderquery(ctx, fields) {
    if (missing(fields, 'out_trade_no') && missing(fields, 'transaction_id')) {
      return { refusal: lackParams('out_trade_no或transaction_id') };
    }
    const order = findOrder(ctx.state, fields);
    if (!order || order.appId !== fields.appid) return { refusal: ORDER_NOT_EXIST };
    return { fields: queryFields(order) };
  },

  closeorder(ctx, fields, _signType, now) {
    if (missing(fields, 'out_trade_no')) return { refusal: lackParams('out_trade_no') };
    const order = ctx.state.orders.get(fields.out_trade_no ?? '');
    if (!order || order.appId !== fields.appid) return { refusal: ORDER_NOT_EXIST };
    const settled = refuseSettled(order);
    if (settled) return { refusal: settled };
    // WeChat Pay documents that an order cannot be closed until 5 minutes after it was created, but
    // no error code for it. SYSTEMERROR is chosen because it is the one code of closeorder's
    // documented list that tells the caller "call again later", which is exactly right here: a
    // client treating it as final (as it must INVALID_REQUEST or ORDERNOTEXIST) would give up on a
    // close that will succeed in a few minutes.
    if (now.getTime() - order.createdAt < CLOSE_MIN_AGE_MS * ctx.timeScale) {
      return { refusal: { errCode: 'SYSTEMERROR', errCodeDes: '订单创建未满5分钟，请稍后再关单' } };
    }
    order.state = 'CLOSED';
    order.closedAt = now.getTime();
    return { fields: { result_msg: 'OK' } };
  },

  refund(ctx, fields, _signType, now) {
    return answerRefund(
      { state: ctx.state, timeScale: ctx.timeScale, accepted: (refund, order) => ctx.refundAccepted?.(refund, order) },
      fields,
      now,
    );
  },

  refundquery(ctx, fields) {
    return answerRefundQuery(ctx.state, fields);
  },
};

/**
 * An order belongs to the app it was placed under. Asked about under another of the merchant's
 * apps, the emulator answers that it does not exist: the strictest reading of WeChat Pay, and the
 * one that shows a client asking under the wrong app (which would then close a live order).
 */
const ORDER_NOT_EXIST: Refusal = { errCode: 'ORDERNOTEXIST', errCodeDes: '订单不存在' };

function boundApps(ctx: ApiContext): readonly string[] {
  return ctx.boundAppIds ?? [ctx.merchant.appId];
}

function refuseSettled(order: Order): Refusal | undefined {
  if (order.state === 'SUCCESS') return { errCode: 'ORDERPAID', errCodeDes: '该订单已支付' };
  if (order.state === 'CLOSED') return { errCode: 'ORDERCLOSED', errCodeDes: '该订单已关闭' };
  return undefined;
}

/** By transaction_id when given (WeChat Pay prefers it), else by out_trade_no, else by the refund named. */
function findOrder(state: EmulatorState, fields: Fields): Order | undefined {
  if (!missing(fields, 'transaction_id')) return state.ordersByTransactionId.get(fields.transaction_id ?? '');
  if (!missing(fields, 'out_trade_no')) return state.orders.get(fields.out_trade_no ?? '');
  const refund = !missing(fields, 'out_refund_no')
    ? state.refunds.get(fields.out_refund_no ?? '')
    : [...state.refunds.values()].find((r) => r.refundId === fields.refund_id);
  return refund ? state.orders.get(refund.outTradeNo) : undefined;
}

/**
 * The emulator knows one merchant and its apps, so it cannot tell "no such app" from "an app not
 * bound to this merchant" by lookup; an id that does not even have the shape of an app id
 * (`wx` + 16 hex digits) cannot exist, any other foreign one is taken as not bound.
 */
function foreignAppId(appId: string): Refusal {
  return /^wx[0-9a-f]{16}$/.test(appId)
    ? { errCode: 'APPID_MCHID_NOT_MATCH', errCodeDes: 'appid和mch_id不匹配' }
    : { errCode: 'APPID_NOT_EXIST', errCodeDes: 'appid不存在' };
}

function prepayFields(order: Order): SignableFields {
  return {
    trade_type: order.tradeType,
    prepay_id: order.prepayId,
    code_url: order.codeUrl,
    mweb_url: order.mwebUrl,
  };
}

/** return_code=FAIL: the call itself was refused. WeChat Pay does not sign these. */
function communicationFault(returnMsg: string, code: string): Answer {
  return {
    xml: buildXml({ return_code: 'FAIL', return_msg: returnMsg }),
    call: { return_code: 'FAIL', err_code: code },
  };
}

/**
 * return_code=SUCCESS, signed with the request's sign type; like WeChat Pay, the answer carries no
 * sign_type and echoes the request's appid and mch_id.
 */
function signedAnswer(merchant: Merchant, request: Fields, signType: SignType, result: Result): Answer {
  const refusal = 'refusal' in result ? result.refusal : undefined;
  const draft: SignableFields = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: request.appid ?? merchant.appId,
    mch_id: request.mch_id,
    device_info: request.device_info,
    nonce_str: nonceStr(),
    result_code: refusal ? 'FAIL' : 'SUCCESS',
    err_code: refusal?.errCode,
    err_code_des: refusal?.errCodeDes,
    ...('fields' in result ? result.fields : {}),
  };
  return {
    xml: buildXml(signFields(draft, merchant.apiKey, signType, { declareSignType: false })),
    call: { return_code: 'SUCCESS', result_code: refusal ? 'FAIL' : 'SUCCESS', err_code: refusal?.errCode },
  };
}
