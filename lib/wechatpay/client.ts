import { resolveOptions, type WechatPayClientOptions } from './client-options';
import { WechatPayResponseError } from './errors';
import { checkPaymentDocument } from './payment-document';
import { REFUND, REFUND_QUERY, type RefundAccepted, type RefundQuery, type RefundQueryResult, type RefundRequest } from './refund';
import type { Fields, SignType } from './sign';
import { createTransport, signedXml, type Endpoint } from './transport';
import { UNIFIED_ORDER, WECHAT_OUT_TRADE_NO, type UnifiedOrderParams, type UnifiedOrderResult } from './unified-order';

export interface CallOptions {
  /** The sign type of the order: requests are signed with it and answers are verified with it. */
  signType: SignType;
}

export interface OrderQueryResult {
  /** SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR or ACCEPT. */
  tradeState: string;
  tradeStateDesc?: string;
  transactionId?: string;
  /** Integer fen exactly as WeChat Pay signed it; compare it with the order before trusting it. */
  totalFee?: string;
  /** `yyyyMMddHHmmss`, Beijing time. */
  timeEnd?: string;
  outTradeNo: string;
  /** The whole verified answer (coupon fields, bank_type, ...), for the caller to record. */
  fields: Fields;
}

/** The WeChat Pay calls the product makes. */
export interface WechatPayClient {
  unifiedOrder(params: UnifiedOrderParams, options: CallOptions): Promise<UnifiedOrderResult>;
  orderQuery(query: { outTradeNo: string }, options: CallOptions): Promise<OrderQueryResult>;
  closeOrder(query: { outTradeNo: string }, options: CallOptions): Promise<void>;
  /** `/secapi/pay/refund`, over mutual TLS with the merchant's API client certificate. */
  refund(request: RefundRequest, options: CallOptions): Promise<RefundAccepted>;
  refundQuery(query: RefundQuery, options: CallOptions): Promise<RefundQueryResult>;
}

type ByOutTradeNo = { outTradeNo: string };

/** An endpoint about one order, named by its out_trade_no: `/pay/<name>`, answered in signed XML. */
function byOutTradeNo<Result>(
  name: string,
  method: string,
  read: (fields: Fields, request: ByOutTradeNo) => Result,
): Endpoint<ByOutTradeNo, Result> {
  return {
    name,
    method,
    path: `/pay/${name}`,
    needsClientCert: false,
    required: ['out_trade_no'],
    fields: ({ outTradeNo }) => ({ out_trade_no: outTradeNo }),
    check: ({ outTradeNo }) => {
      if (!WECHAT_OUT_TRADE_NO.test(outTradeNo)) {
        throw new TypeError(`${method}: outTradeNo must be 6 to 32 characters of [0-9A-Za-z_-|*]`);
      }
    },
    answer: signedXml(read),
  };
}

/** trade_state values of an order the user paid (REFUND: paid, then refunded). */
const PAID_TRADE_STATES = new Set(['SUCCESS', 'REFUND']);

/** `/pay/orderquery`: where a payment stands. */
const ORDER_QUERY = byOutTradeNo('orderquery', 'orderQuery', (fields, { outTradeNo }): OrderQueryResult => {
  if (!fields.trade_state) throw new WechatPayResponseError('WeChat Pay orderquery answered without trade_state');
  if (fields.out_trade_no !== undefined && fields.out_trade_no !== outTradeNo) {
    throw new WechatPayResponseError(
      `WeChat Pay orderquery answered about out_trade_no "${fields.out_trade_no.slice(0, 40)}", not ${outTradeNo}`,
    );
  }
  if (PAID_TRADE_STATES.has(fields.trade_state)) {
    const document = checkPaymentDocument(fields, 'WeChat Pay orderquery answer');
    if (!document.ok) throw new WechatPayResponseError(document.message, document.reason);
  }
  return {
    tradeState: fields.trade_state,
    ...(fields.trade_state_desc ? { tradeStateDesc: fields.trade_state_desc } : {}),
    ...(fields.transaction_id ? { transactionId: fields.transaction_id } : {}),
    ...(fields.total_fee ? { totalFee: fields.total_fee } : {}),
    ...(fields.time_end ? { timeEnd: fields.time_end } : {}),
    outTradeNo,
    fields,
  };
});

/** `/pay/closeorder`: no payment can be made for the order any more. */
const CLOSE_ORDER = byOutTradeNo('closeorder', 'closeOrder', () => undefined);

export function createWechatPayClient(options: WechatPayClientOptions): WechatPayClient {
  const transport = createTransport(resolveOptions(options));
  return {
    unifiedOrder: (params, { signType }) => transport.call(UNIFIED_ORDER, params, signType),
    orderQuery: (query, { signType }) => transport.call(ORDER_QUERY, query, signType),
    closeOrder: (query, { signType }) => transport.call(CLOSE_ORDER, query, signType),
    refund: (request, { signType }) => transport.call(REFUND, request, signType),
    refundQuery: (query, { signType }) => transport.call(REFUND_QUERY, query, signType),
  };
}
