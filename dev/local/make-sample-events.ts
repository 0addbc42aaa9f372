import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { eventDetail, outboxEntry } from '../../lib/orders/events';
import type { Order } from '../../lib/orders/model';
import { encryptReqInfo } from '../wechatpay-documents/refund-notification';
import { signFields } from '../../lib/wechatpay/sign';
import { buildXml } from '../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../emulator/test-merchant';

/**
 * Writes the sample events in events/ for `serverless invoke local -f NAME -p events/NAME.json
 * --stage local`: API Gateway HTTP API (payload 2.0) requests, an EventBridge scheduled event and an
 * order event as the bus hands it to clearOutbox.
 * Everything is fixed, so running it again changes nothing unless this file changed.
 *
 *   tsx dev/local/make-sample-events.ts
 *   tsx dev/local/make-sample-events.ts --out-trade-no <no> --total-fee <fen>   (prints a notify event
 *     paying that order, signed with the merchant in the environment or the test merchant)
 */

const EVENTS_DIR = fileURLToPath(new URL('../../events/', import.meta.url));
const API_ID = 'a1b2c3d4e5';
const TIME = new Date('2026-01-15T08:30:00Z');
const SAMPLE_OUT_TRADE_NO = '20260115Xq7vR2mK9pL4sT8wZ3nB';

type Headers = Record<string, string>;

/** What a sample request says; the rest of the event is as API Gateway fills it in. */
interface SampleRequest {
  /** API Gateway's route key, `METHOD /path/{parameter}`: the request's path is it with pathParameters filled in. */
  route: string;
  headers: Headers;
  sourceIp: string;
  userAgent: string;
  requestId: string;
  /** The 24 hex digits of an X-Ray trace id. */
  traceId: string;
  body?: string;
  pathParameters?: Record<string, string>;
  /** A GET's query, as the browser sent it (API Gateway also hands it decoded). */
  query?: Record<string, string>;
}

function httpApiEvent(options: SampleRequest) {
  const [method, routePath] = options.route.split(' ') as [string, string];
  const rawPath = routePath.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = options.pathParameters?.[name];
    if (value === undefined) throw new Error(`${options.route}: no path parameter ${name}`);
    return value;
  });
  return {
    version: '2.0',
    routeKey: options.route,
    rawPath,
    rawQueryString: options.query ? new URLSearchParams(options.query).toString() : '',
    headers: {
      'content-length': String(Buffer.byteLength(options.body ?? '', 'utf8')),
      host: `${API_ID}.execute-api.ap-southeast-1.amazonaws.com`,
      'user-agent': options.userAgent,
      'x-amzn-trace-id': `Root=1-${Math.floor(TIME.getTime() / 1000).toString(16)}-${options.traceId}`,
      'x-forwarded-for': options.sourceIp,
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...options.headers,
    },
    requestContext: {
      accountId: '123456789012',
      apiId: API_ID,
      domainName: `${API_ID}.execute-api.ap-southeast-1.amazonaws.com`,
      domainPrefix: API_ID,
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: options.sourceIp,
        userAgent: options.userAgent,
      },
      requestId: options.requestId,
      routeKey: options.route,
      stage: '$default',
      time: '15/Jan/2026:08:30:00 +0000',
      timeEpoch: TIME.getTime(),
    },
    ...(options.query ? { queryStringParameters: options.query } : {}),
    ...(options.pathParameters ? { pathParameters: options.pathParameters } : {}),
    ...(options.body === undefined ? {} : { body: options.body }),
    isBase64Encoded: false,
  };
}

/** A payer: WeChat's in-app browser, or a mini-program, on a phone. */
const PAYER = {
  sourceIp: '203.0.113.24',
  userAgent:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN',
};

/** The merchant's server: a server-side client with the local stack's bearer token. */
const MERCHANT_SERVER = {
  headers: { accept: 'application/json', authorization: 'Bearer local-merchant-token', 'content-type': 'application/json' },
  sourceIp: '198.51.100.10',
  userAgent: 'shop-backend/2.3 (+https://shop.example.com)',
};

/** WeChat Pay's servers, calling back. */
const WECHATPAY_SERVER = {
  headers: { accept: '*/*', 'content-type': 'text/xml', pragma: 'no-cache' },
  sourceIp: '101.226.103.15',
  userAgent: 'Mozilla/4.0',
};

const SAMPLE_OUT_REFUND_NO = 'R3kF9xQ2mLp7vT4wZ8nB1cD6eG0hJ5aS';

/** The sample requests of the API's routes, by the function that serves them. */
const API_REQUESTS: Record<string, SampleRequest> = {
  createOrder: {
    ...PAYER,
    route: 'POST /orders',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    requestId: 'YbJ4sgF3SQ0EMnA=',
    traceId: '3c1f0e9a7b2d4c5e6f708192',
    body: JSON.stringify({
      tradeType: 'JSAPI',
      items: [
        { sku: 'latte-large', quantity: 1 },
        { sku: 'croissant', quantity: 2 },
      ],
      openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      attach: 'table 12',
      idempotencyKey: 'cart-7f3c2a91-checkout-1',
    }),
  },
  queryOrder: {
    ...PAYER,
    route: 'GET /orders/{outTradeNo}',
    headers: { accept: 'application/json' },
    requestId: 'YbJ5QjQ0SQ0EJ4g=',
    traceId: '8d2e4f6a1b3c5d7e9f0a2b4c',
    pathParameters: { outTradeNo: SAMPLE_OUT_TRADE_NO },
  },
  /**
   * A mini-program's login: the code `wx.login()` gave it (a sample: WeChat, or the emulator, refuses
   * it as invalid, errcode 40029; ask the emulator's POST /__sim/login for a real one).
   */
  miniProgramLogin: {
    ...PAYER,
    route: 'POST /auth/miniprogram',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      referer: 'https://servicewechat.com/wx00000000000000a2/1/page-frame.html',
    },
    requestId: 'YbJ8aPa1SQ0EMtA=',
    traceId: '9e0f1a2b3c4d5e6f7a8b9c0d',
    body: JSON.stringify({ code: '0a3Xk2Ga1Vbq2K0p4oHa1Zb9bL1Xk2Gs', appId: 'wx00000000000000a2' }),
  },
  /** An official account's page after WeChat's snsapi_base web authorization put ?code= on its URL. */
  officialAccountLogin: {
    ...PAYER,
    route: 'POST /auth/officialaccount',
    headers: { accept: 'application/json', 'content-type': 'application/json', origin: 'https://shop.example.com' },
    requestId: 'YbJ8bQb2SQ0EMuB=',
    traceId: '0f1a2b3c4d5e6f7a8b9c0d1e',
    body: JSON.stringify({ code: '081Xk2Ga1Vbq2K0p4oHa1Zb9bL1Xk2GX' }),
  },
  /** The JS-SDK config for a checkout page of the shop, opened in WeChat's browser. */
  jssdkConfig: {
    ...PAYER,
    route: 'GET /auth/jssdk-config',
    headers: { accept: 'application/json', origin: 'https://shop.example.com' },
    requestId: 'YbJ8cRc3SQ0EMvC=',
    traceId: '1a2b3c4d5e6f7a8b9c0d1e2f',
    query: { url: 'https://shop.example.com/checkout?cart=7f3c2a91' },
  },
  putProduct: {
    ...MERCHANT_SERVER,
    route: 'PUT /merchant/products/{sku}',
    requestId: 'YbJ7aKc2SQ0EMpw=',
    traceId: '5a6b7c8d9e0f1a2b3c4d5e6f',
    pathParameters: { sku: 'latte-large' },
    body: JSON.stringify({ name: 'Latte (large)', priceFen: 2800, active: true }),
  },
  listProducts: {
    ...MERCHANT_SERVER,
    route: 'GET /merchant/products',
    requestId: 'YbJ7bLd3SQ0EMqx=',
    traceId: '6b7c8d9e0f1a2b3c4d5e6f7a',
  },
  createMerchantOrder: {
    ...MERCHANT_SERVER,
    route: 'POST /merchant/orders',
    requestId: 'YbJ7cMe4SQ0EMry=',
    traceId: '7c8d9e0f1a2b3c4d5e6f7a8b',
    body: JSON.stringify({
      tradeType: 'NATIVE',
      totalFee: 9900,
      description: 'Annual membership',
      idempotencyKey: 'membership-renewal-2026-000123',
    }),
  },
  getMerchantOrder: {
    ...MERCHANT_SERVER,
    route: 'GET /merchant/orders/{outTradeNo}',
    requestId: 'YbJ7dNf5SQ0EMsz=',
    traceId: '8d9e0f1a2b3c4d5e6f7a8b9c',
    pathParameters: { outTradeNo: SAMPLE_OUT_TRADE_NO },
  },
  createRefund: {
    ...MERCHANT_SERVER,
    route: 'POST /merchant/orders/{outTradeNo}/refunds',
    requestId: 'YbJ7eOg6SQ0EMt0=',
    traceId: '9e0f1a2b3c4d5e6f7a8b9c0d',
    pathParameters: { outTradeNo: SAMPLE_OUT_TRADE_NO },
    body: JSON.stringify({ refundFee: 1000, reason: 'Returned: one item', idempotencyKey: 'return-2026-000456' }),
  },
  getRefund: {
    ...MERCHANT_SERVER,
    route: 'GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}',
    requestId: 'YbJ7fPh7SQ0EMu1=',
    traceId: '0f1a2b3c4d5e6f7a8b9c0d1e',
    pathParameters: { outTradeNo: SAMPLE_OUT_TRADE_NO, outRefundNo: SAMPLE_OUT_REFUND_NO },
  },
};

/** A refund callback as WeChat Pay sends it: no sign; the refund in req_info, encrypted with the API key. */
function refundNotifyEvent(merchant: { appId: string; mchId: string; apiKey: string }) {
  const reqInfo = encryptReqInfo(
    {
      transaction_id: '4200002615202601151234567890',
      out_trade_no: SAMPLE_OUT_TRADE_NO,
      refund_id: '50300000012026011512345678901',
      out_refund_no: SAMPLE_OUT_REFUND_NO,
      total_fee: '2800',
      settlement_total_fee: '2800',
      refund_fee: '1000',
      settlement_refund_fee: '1000',
      refund_status: 'SUCCESS',
      success_time: '2026-01-15 16:40:12',
      refund_recv_accout: '支付用户的零钱',
      refund_account: 'REFUND_SOURCE_RECHARGE_FUNDS',
      refund_request_source: 'API',
    },
    merchant.apiKey,
  );
  return httpApiEvent({
    ...WECHATPAY_SERVER,
    route: 'POST /wechatpay/refund-notify',
    requestId: 'YbJ6_iG9SQ0EMwR=',
    traceId: '1a2b3c4d5e6f7a8b9c0d1e2f',
    body: buildXml({
      return_code: 'SUCCESS',
      appid: merchant.appId,
      mch_id: merchant.mchId,
      nonce_str: 'TeqClE3i0mvn3DrK',
      req_info: reqInfo,
    }),
  });
}

/**
 * A payment callback as WeChat Pay sends it: signed with the order's sign type and, as usual, no
 * sign_type field; with a coupon, whose numbered fields the signature covers too.
 */
function notifyEvent(merchant: { appId: string; mchId: string; apiKey: string }, outTradeNo: string, totalFee: number) {
  const couponFee = totalFee > 300 ? 300 : 0;
  const fields: Record<string, string> = {
    appid: merchant.appId,
    bank_type: 'CMB_DEBIT',
    cash_fee: String(totalFee - couponFee),
    fee_type: 'CNY',
    is_subscribe: 'N',
    mch_id: merchant.mchId,
    nonce_str: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    out_trade_no: outTradeNo,
    result_code: 'SUCCESS',
    return_code: 'SUCCESS',
    time_end: '20260115163112',
    total_fee: String(totalFee),
    trade_type: 'JSAPI',
    transaction_id: '4200002615202601151234567890',
  };
  if (couponFee > 0) {
    Object.assign(fields, {
      coupon_count: '1',
      coupon_fee: String(couponFee),
      coupon_fee_0: String(couponFee),
      coupon_id_0: '10000',
      coupon_type_0: 'CASH',
    });
  }
  const signed = signFields(fields, merchant.apiKey, 'HMAC-SHA256', { declareSignType: false });
  return httpApiEvent({
    ...WECHATPAY_SERVER,
    route: 'POST /wechatpay/notify',
    requestId: 'YbJ6_hF8SQ0EMvQ=',
    traceId: '0f1e2d3c4b5a69788796a5b4',
    body: buildXml(signed),
  });
}

function scheduledEvent() {
  return {
    version: '0',
    id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: '2026-01-15T08:31:00Z',
    region: 'ap-southeast-1',
    resources: ['arn:aws:events:ap-southeast-1:123456789012:rule/wechatpay-dev-RecoverOrdersEventsRuleSchedule1-1A2B3C4D5E6F'],
    detail: {},
  };
}

/** The Order Paid event of the sample callback's payment, as EventBridge hands it to clearOutbox. */
function orderPaidEvent() {
  const order = {
    outTradeNo: SAMPLE_OUT_TRADE_NO,
    status: 'PAID',
    totalFee: 2800,
    description: 'Latte (large)',
    items: [{ sku: 'latte-large', name: 'Latte (large)', quantity: 1, unitPriceFen: 2800 }],
    appId: TEST_MERCHANT.appId,
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
  } as Order;
  const entry = outboxEntry(
    {
      type: 'Order Paid',
      outTradeNo: SAMPLE_OUT_TRADE_NO,
      transactionId: '4200002615202601151234567890',
      paidAt: '2026-01-15T08:31:12.000Z',
      paidVia: 'notify',
    },
    new Date('2026-01-15T08:31:13.042Z'),
  );
  return {
    version: '0',
    id: '7f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f',
    'detail-type': entry.detailType,
    source: 'wechatpay.orders',
    account: '123456789012',
    time: '2026-01-15T08:31:13Z',
    region: 'ap-southeast-1',
    resources: [],
    detail: eventDetail(order, entry),
  };
}

function writeEvent(name: string, event: unknown): void {
  writeFileSync(`${EVENTS_DIR}${name}.json`, `${JSON.stringify(event, null, 2)}\n`);
}

const { values } = parseArgs({ options: { 'out-trade-no': { type: 'string' }, 'total-fee': { type: 'string' } } });
const outTradeNo = values['out-trade-no'];
if (outTradeNo !== undefined) {
  const totalFee = Number(values['total-fee']);
  if (!Number.isInteger(totalFee) || totalFee < 1) throw new Error('--total-fee must be the order amount in fen');
  const merchant = {
    appId: process.env.WECHATPAY_APPID || TEST_MERCHANT.appId,
    mchId: process.env.WECHATPAY_MCHID || TEST_MERCHANT.mchId,
    apiKey: process.env.WECHATPAY_API_KEY || TEST_MERCHANT.apiKey,
  };
  console.log(JSON.stringify(notifyEvent(merchant, outTradeNo, totalFee), null, 2));
} else {
  for (const [name, request] of Object.entries(API_REQUESTS)) writeEvent(name, httpApiEvent(request));
  writeEvent('refundNotify', refundNotifyEvent(TEST_MERCHANT));
  writeEvent('notify', notifyEvent(TEST_MERCHANT, SAMPLE_OUT_TRADE_NO, 2800));
  writeEvent('recoverOrders', scheduledEvent());
  writeEvent('clearOutbox', orderPaidEvent());
  // The daily reconciliation's schedule delivers the same kind of event (its date is the day before the run).
  writeEvent('reconcile', scheduledEvent());
}
