import { randomUUID } from 'node:crypto';
import { handler as createMerchantOrderHandler } from '../../functions/createMerchantOrder';
import { handler as createOrderHandler } from '../../functions/createOrder';
import { handler as putProductHandler } from '../../functions/putProduct';
import { handler as notifyHandler } from '../../functions/notify';
import { handler as queryOrderHandler } from '../../functions/queryOrder';
import { handler as createRefundHandler } from '../../functions/createRefund';
import { handler as getRefundHandler } from '../../functions/getRefund';
import { handler as getMerchantOrderHandler } from '../../functions/getMerchantOrder';
import { handler as refundNotifyHandler } from '../../functions/refundNotify';
import type { ApiEvent } from '../../lib/http/event';
import { parseXml } from '../../lib/wechatpay/xml';

/** The API's requests as API Gateway hands them to the handlers, and the handlers' answers, read. */

/** An API Gateway HTTP API (payload 2.0) event, as the real one carries it. */
export function apiEvent(options: {
  method: string;
  path: string;
  body?: string;
  base64?: boolean;
  pathParameters?: Record<string, string>;
  sourceIp?: string;
  contentType?: string;
  /** The Authorization header, sent as it is. */
  authorization?: string;
  /** The query string, as the browser sent it (without `?`). */
  query?: string;
}): ApiEvent {
  const body = options.body === undefined ? undefined : options.base64 ? Buffer.from(options.body).toString('base64') : options.body;
  return {
    version: '2.0',
    routeKey: `${options.method} ${options.path}`,
    rawPath: options.path,
    rawQueryString: options.query ?? '',
    headers: {
      'content-type': options.contentType ?? 'application/json',
      ...(options.authorization === undefined ? {} : { authorization: options.authorization }),
    },
    pathParameters: options.pathParameters,
    isBase64Encoded: options.base64 ?? false,
    body,
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      requestId: randomUUID(),
      routeKey: `${options.method} ${options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      http: {
        method: options.method,
        path: options.path,
        protocol: 'HTTP/1.1',
        sourceIp: options.sourceIp ?? '203.0.113.7',
        userAgent: 'test',
      },
    },
  } as ApiEvent;
}

/** What tests read of the API's JSON answers: an order (with its pay object) or an error. */
export interface AnswerBody {
  [field: string]: unknown;
  outTradeNo: string;
  status: string;
  totalFee: number;
  transactionId?: string;
  pay: Record<string, string>;
  /** Present only on an error answer. */
  error: { code: string; message: string; field?: string; outTradeNo: string };
}

export interface HttpResult {
  status: number;
  body: AnswerBody;
  raw: string;
}

/** The merchant server's bearer token on the test stack, and its Authorization header. */
export const TEST_MERCHANT_TOKEN = 'test-merchant-token-0123456789';
export const MERCHANT_AUTHORIZATION = `Bearer ${TEST_MERCHANT_TOKEN}`;

type EventOptions = Partial<Parameters<typeof apiEvent>[0]>;

function read(result: { statusCode?: number; body?: string }): HttpResult {
  return { status: result.statusCode ?? 0, body: JSON.parse(result.body as string), raw: result.body as string };
}

const text = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));

/** POST /merchant/orders: an order of any amount, as the merchant's server makes it. */
export async function create(body: unknown, extra: EventOptions = {}): Promise<HttpResult> {
  return read(
    await createMerchantOrderHandler(
      apiEvent({ method: 'POST', path: '/merchant/orders', body: text(body), authorization: MERCHANT_AUTHORIZATION, ...extra }),
    ),
  );
}

/** POST /orders: a frontend's order of catalog items. */
export async function order(body: unknown, extra: EventOptions = {}): Promise<HttpResult> {
  return read(await createOrderHandler(apiEvent({ method: 'POST', path: '/orders', body: text(body), ...extra })));
}

/** PUT /merchant/products/{sku}, as the merchant's server sets a price. */
export async function putProduct(sku: string, body: unknown, extra: EventOptions = {}): Promise<HttpResult> {
  const event = apiEvent({
    method: 'PUT',
    path: `/merchant/products/${sku}`,
    pathParameters: { sku },
    body: text(body),
    authorization: MERCHANT_AUTHORIZATION,
    ...extra,
  });
  return read(await putProductHandler(event));
}

export async function get(outTradeNo: string): Promise<HttpResult> {
  return read(await queryOrderHandler(apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } })));
}

export interface CallbackResult {
  status: number;
  returnCode: string | undefined;
  returnMsg: string | undefined;
  raw: string;
}

/** Delivers a callback body to a callback handler at `path`, as API Gateway would (base64 for bytes). */
async function deliver(handler: typeof notifyHandler, path: string, body: string | Uint8Array): Promise<CallbackResult> {
  const event =
    typeof body === 'string'
      ? apiEvent({ method: 'POST', path, body, contentType: 'text/xml' })
      : {
          ...apiEvent({ method: 'POST', path, contentType: 'text/xml' }),
          body: Buffer.from(body).toString('base64'),
          isBase64Encoded: true,
        };
  const result = await handler(event);
  const raw = result.body as string;
  const reply = parseXml(raw);
  return { status: result.statusCode ?? 0, returnCode: reply.return_code, returnMsg: reply.return_msg, raw };
}

/** Delivers a payment callback body to the real notify handler. */
export async function callback(body: string | Uint8Array): Promise<CallbackResult> {
  return deliver(notifyHandler, '/wechatpay/notify', body);
}

/** POST /merchant/orders/{outTradeNo}/refunds, as the merchant's server asks for a refund. */
export async function refund(outTradeNo: string, body: unknown, extra: EventOptions = {}): Promise<HttpResult> {
  const event = apiEvent({
    method: 'POST',
    path: `/merchant/orders/${outTradeNo}/refunds`,
    pathParameters: { outTradeNo },
    body: text(body),
    authorization: MERCHANT_AUTHORIZATION,
    ...extra,
  });
  return read(await createRefundHandler(event));
}

/** GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}. */
export async function getRefund(outTradeNo: string, outRefundNo: string, extra: EventOptions = {}): Promise<HttpResult> {
  const event = apiEvent({
    method: 'GET',
    path: `/merchant/orders/${outTradeNo}/refunds/${outRefundNo}`,
    pathParameters: { outTradeNo, outRefundNo },
    authorization: MERCHANT_AUTHORIZATION,
    ...extra,
  });
  return read(await getRefundHandler(event));
}

/** GET /merchant/orders/{outTradeNo}: the whole order, refunds included. */
export async function getMerchantOrder(outTradeNo: string): Promise<HttpResult> {
  const event = apiEvent({
    method: 'GET',
    path: `/merchant/orders/${outTradeNo}`,
    pathParameters: { outTradeNo },
    authorization: MERCHANT_AUTHORIZATION,
  });
  return read(await getMerchantOrderHandler(event));
}

/** Delivers a refund callback body to the real refundNotify handler. */
export async function refundCallback(body: string | Uint8Array): Promise<CallbackResult> {
  return deliver(refundNotifyHandler, '/wechatpay/refund-notify', body);
}
