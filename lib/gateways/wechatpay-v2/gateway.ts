/**
 * The merchant API v2 behind lib/orders' gateway port (lib/orders/gateway.ts): the orders' calls in
 * v2's XML endpoints, their answers and errors in the port's terms. The protocol itself (signing,
 * XML, transport, the endpoints' rules) is lib/wechatpay's; this file only translates.
 */
import type { AppConfig } from '../../config';
import { loadClientCertificate } from '../../config';
import {
  GatewayError,
  type GatewayFailure,
  type GatewayOrder,
  type NewPayment,
  type PaymentGateway,
  type PaymentRequest,
  type PaymentState,
} from '../../orders/gateway';
import { createWechatPayClient, type WechatPayClient } from '../../wechatpay/client';
import type { WechatPayClientOptions } from '../../wechatpay/client-options';
import { WechatPayBusinessError, WechatPayError, WechatPayNetworkError } from '../../wechatpay/errors';
import { appPayParams, jsapiPayParams } from '../../wechatpay/pay-params';
import { isSignType, type SignType } from '../../wechatpay/sign';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../wechatpay/time';
import type { UnifiedOrderParams } from '../../wechatpay/unified-order';

/** v2's err_codes that the port names. */
const FAILURES: Readonly<Record<string, GatewayFailure>> = {
  ORDERNOTEXIST: 'ORDER_NOT_FOUND',
  REFUNDNOTEXIST: 'REFUND_NOT_FOUND',
  ORDERPAID: 'ORDER_PAID',
  ORDERCLOSED: 'ORDER_CLOSED',
};

/** A WeChat Pay error in the port's terms; anything else (a wrong setting, a bug) is thrown as it is. */
function translated(error: unknown): unknown {
  if (!(error instanceof WechatPayError) || error.code === 'CONFIG_ERROR') return error;
  const failure: GatewayFailure =
    error instanceof WechatPayBusinessError
      ? (FAILURES[error.code] ?? 'REFUSED')
      : error instanceof WechatPayNetworkError
        ? 'UNREACHABLE'
        : // return_code=FAIL: the call itself refused; anything else, an answer that cannot be trusted.
          error.code === 'FAIL'
          ? 'REJECTED'
          : 'UNTRUSTED';
  const description = error instanceof WechatPayBusinessError ? error.errCodeDes : undefined;
  return new GatewayError(error.message, failure, error.code, error.retryable, { cause: error, ...(description ? { description } : {}) });
}

async function call<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translated(error);
  }
}

/** `yyyyMMddHHmmss` Beijing as ISO 8601; undefined when absent or not a real time. */
function isoOf(beijing: string | undefined): string | undefined {
  return beijing ? fromBeijingTimestamp(beijing)?.toISOString() : undefined;
}

/** `yyyy-MM-dd HH:mm:ss` Beijing (refundquery's success time) as ISO 8601. */
function isoOfDashed(beijing: string | undefined): string | undefined {
  return isoOf(beijing?.replace(/[- :]/g, ''));
}

function unifiedOrderParams(payment: NewPayment): UnifiedOrderParams {
  const params: UnifiedOrderParams = {
    body: payment.description,
    out_trade_no: payment.outTradeNo,
    total_fee: String(payment.totalFee),
    spbill_create_ip: payment.clientIp,
    notify_url: payment.notifyUrl,
    trade_type: payment.tradeType,
    time_start: toBeijingTimestamp(payment.createdAt),
    time_expire: toBeijingTimestamp(payment.expiresAt),
  };
  if (payment.openid) params.openid = payment.openid;
  if (payment.tradeType === 'NATIVE') params.product_id = payment.productId ?? payment.outTradeNo;
  if (payment.attach) params.attach = payment.attach;
  if (payment.sceneInfo) params.scene_info = JSON.stringify(payment.sceneInfo);
  return params;
}

/**
 * The gateways of one merchant on API v2: one client per app (made on first use), each order's
 * calls signed with the sign type it was made with. `client` overrides the clients' transport
 * options (tests: shorter timeouts, a client certificate).
 */
export function wechatPayV2Gateways(
  config: AppConfig,
  transport: Pick<WechatPayClientOptions, 'timeoutMs' | 'maxAttempts' | 'retryDelayMs' | 'clientCertificate' | 'secapiBaseUrl'> = {},
): (order: GatewayOrder) => PaymentGateway {
  const clients = new Map<string, WechatPayClient>();
  const clientFor = (appId: string): WechatPayClient => {
    let client = clients.get(appId);
    if (!client) {
      client = createWechatPayClient({
        appId,
        mchId: config.mchId,
        apiKey: config.apiKey,
        baseUrl: config.baseUrl,
        // Three attempts of 3 s with backoff must finish inside the functions' 15 s timeout.
        timeoutMs: 3_000,
        // Refunds only: loaded on the first refund of the container, never at cold start.
        secapiBaseUrl: config.secapiBaseUrl,
        clientCertificate: () => loadClientCertificate(config),
        ...transport,
      });
      clients.set(appId, client);
    }
    return client;
  };
  return (order) => {
    const appId = order.appId ?? config.appId;
    const wechatPay = clientFor(appId);
    if (!isSignType(order.signType))
      throw new TypeError(`an order's sign type must be MD5 or HMAC-SHA256, got ${JSON.stringify(order.signType)}`);
    const options = { signType: order.signType as SignType };
    return {
      paymentRequest: (payment) => unifiedOrderParams(payment) as PaymentRequest,
      prepay: (request) => call(() => wechatPay.unifiedOrder(request as UnifiedOrderParams, options)),
      queryPayment: (outTradeNo) =>
        call(async (): Promise<PaymentState> => {
          const answer = await wechatPay.orderQuery({ outTradeNo }, options);
          const paidAt = isoOf(answer.timeEnd);
          return {
            tradeState: answer.tradeState,
            // A paid state's amount was checked to be whole fen (payment-document.ts).
            ...(answer.transactionId ? { transactionId: answer.transactionId } : {}),
            ...(answer.totalFee !== undefined ? { totalFee: Number(answer.totalFee) } : {}),
            ...(paidAt ? { paidAt } : {}),
          };
        }),
      closePayment: (outTradeNo) => call(() => wechatPay.closeOrder({ outTradeNo }, options)),
      refund: (refund) =>
        call(async () => {
          const answer = await wechatPay.refund(refund, options);
          return { outTradeNo: answer.outTradeNo, transactionId: answer.transactionId, refundId: answer.refundId };
        }),
      queryRefund: (outRefundNo) =>
        call(async () => {
          const answer = await wechatPay.refundQuery({ outRefundNo }, options);
          return {
            outTradeNo: answer.outTradeNo,
            transactionId: answer.transactionId,
            refunds: answer.refunds.map((refund) => {
              const succeededAt = isoOfDashed(refund.successTime);
              return {
                outRefundNo: refund.outRefundNo,
                refundId: refund.refundId,
                refundFee: refund.refundFee,
                status: refund.status,
                ...(succeededAt ? { succeededAt } : {}),
              };
            }),
          };
        }),
      payObject: async (payable, now) => {
        const signType = options.signType;
        switch (payable.tradeType) {
          case 'JSAPI':
            return jsapiPayParams({ appId, prepayId: payable.prepayId, signType, apiKey: config.apiKey, now });
          case 'APP':
            return appPayParams({ appId, mchId: config.mchId, prepayId: payable.prepayId, signType, apiKey: config.apiKey, now });
          case 'NATIVE':
            // The QR code's picture is drawn by lib/orders (create.ts), in the only bundles that make orders.
            return { codeUrl: payable.codeUrl as string };
          case 'MWEB':
            return { mwebUrl: payable.mwebUrl as string };
        }
      },
    };
  };
}
