import { createHash } from 'node:crypto';
import { newOutTradeNo } from '../wechatpay/ids';
import { logger } from '../log';
import { logAndCount } from '../metrics';
import type { OrdersContext } from './context';
import type { CreateOrderRequest, FrontendOrderRequest } from './create-request';
import { InvalidOrderRequestError, OrderConflictError, PaymentProviderError } from './errors';
import { GatewayError, type PayObject } from './gateway';
import type { Order } from './model';
import { priceItems } from './pricing';
import { settleWithWechatPay } from './settle';

/** Recovery leaves a new order to its callback for this long before asking WeChat Pay itself. */
export const RECOVERY_GRACE_MS = 5_000;

/**
 * How long a prepay_id / mweb_url is used before a fresh one is asked for. WeChat Pay gives 2 hours
 * and 5 minutes; the margins leave the user time to pay with what is handed out.
 */
const PREPAY_REUSE_MS = { default: 110 * 60_000, MWEB: 4 * 60_000 } as const;

export interface CreatedOrder {
  outTradeNo: string;
  status: Order['status'];
  totalFee: number;
  /** What the payer sees in WeChat Pay; for a frontend's order, built from the products' names. */
  description: string;
  expiresAt: string;
  pay?: PayObject;
  /** True when an idempotency key named an order that already existed. */
  replayed: boolean;
}

/**
 * What makes two requests the same for an idempotency key. A frontend's order is its items, not
 * the prices they came to: repeated after a price change, it is still the same request and gets
 * its original order back.
 */
function fingerprint(request: CreateOrderRequest, appId: string, ctx: OrdersContext): string {
  const { tradeType, totalFee, description, lines, openid, productId, attach, sceneInfo } = request;
  const what = lines ? lines.map((line) => [line.sku, line.quantity]) : [totalFee, description];
  // The default app is left out, so that keys claimed before orders named their app still match.
  const app = appId === ctx.config.appId ? [] : [appId];
  const canonical = JSON.stringify([tradeType, what, openid, productId, attach, sceneInfo, ...app]);
  return createHash('sha256').update(canonical).digest('base64url');
}

/** JSAPI payments happen inside WeChat: in a mini-program or on an official account's page. */
const JSAPI_KINDS = new Set(['miniprogram', 'officialaccount']);

/**
 * The app an order is made under: the one the request names, which must be one of the merchant's
 * apps (and, for JSAPI, a mini-program or an official account), else the default app.
 */
function orderAppId(request: CreateOrderRequest, ctx: OrdersContext): string {
  const appId = request.appId ?? ctx.config.appId;
  const app = ctx.config.apps.find((candidate) => candidate.appId === appId);
  if (!app) throw new InvalidOrderRequestError(`appId ${appId} is not one of this merchant's apps`, 'appId');
  if (request.tradeType === 'JSAPI' && !JSAPI_KINDS.has(app.kind)) {
    throw new InvalidOrderRequestError(
      `app ${appId} is of kind ${app.kind}: JSAPI payments are made in a mini-program or on an official account's page`,
      'appId',
    );
  }
  return appId;
}

function newOrder(request: CreateOrderRequest, appId: string, outTradeNo: string, ctx: OrdersContext): Order {
  const now = ctx.now();
  const expires = new Date(now.getTime() + ctx.config.orderExpireMinutes * 60_000);
  const signType = ctx.config.signType;
  const payment = ctx.gatewayFor({ appId, signType }).paymentRequest({
    outTradeNo,
    description: request.description,
    totalFee: request.totalFee,
    tradeType: request.tradeType,
    clientIp: request.clientIp,
    notifyUrl: ctx.config.notifyUrl,
    createdAt: now,
    expiresAt: expires,
    ...(request.openid ? { openid: request.openid } : {}),
    ...(request.productId ? { productId: request.productId } : {}),
    ...(request.attach ? { attach: request.attach } : {}),
    ...(request.sceneInfo ? { sceneInfo: request.sceneInfo } : {}),
  });
  const order: Order = {
    outTradeNo,
    status: 'PENDING',
    tradeType: request.tradeType,
    totalFee: request.totalFee,
    description: request.description,
    signType,
    createdAt: now.toISOString(),
    expiresAt: expires.toISOString(),
    unifiedOrder: payment,
    appId,
    review: {},
  };
  if (request.openid) order.openid = request.openid;
  if (request.lines) order.items = request.lines;
  if (request.attach) order.attach = request.attach;
  if (request.idempotencyKey) order.idempotencyKey = request.idempotencyKey;
  return order;
}

/**
 * Places the payment with the order's stored request (identical on every call, as WeChat Pay
 * requires) and stores the prepay id. A refusal for good marks the order FAILED; a timeout or a
 * transient error leaves it PENDING for recovery.
 */
async function requestPrepay(order: Order, ctx: OrdersContext): Promise<Order> {
  let result;
  try {
    result = await ctx.gatewayFor(order).prepay(order.unifiedOrder);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    // ORDER_PAID: the order was paid after all; an untrustworthy answer may hide a created order.
    // Both stay PENDING so that a query or recovery learns the truth from WeChat Pay.
    const final = (error.final || error.failure === 'REJECTED') && error.failure !== 'ORDER_PAID';
    if (final) {
      await ctx.store.markFailed(order.outTradeNo, { code: error.code, message: error.message, at: ctx.now().toISOString() });
    }
    logger.warn('unifiedorder failed', {
      outTradeNo: order.outTradeNo,
      code: error.code,
      retryable: error.retryable,
      orderStatus: final ? 'FAILED' : 'PENDING',
    });
    throw new PaymentProviderError(error.code, `WeChat Pay: ${error.message}`, error.retryable, order.outTradeNo, error);
  }
  const prepay = {
    prepayId: result.prepayId,
    codeUrl: result.codeUrl,
    mwebUrl: result.mwebUrl,
    issuedAt: ctx.now().toISOString(),
  };
  await ctx.store.recordPrepay(order.outTradeNo, prepay);
  return {
    ...order,
    prepayId: prepay.prepayId,
    prepayIssuedAt: prepay.issuedAt,
    ...(prepay.codeUrl ? { codeUrl: prepay.codeUrl } : {}),
    ...(prepay.mwebUrl ? { mwebUrl: prepay.mwebUrl } : {}),
  };
}

/** What the frontend pays with: the gateway's, under the order's own app and signing, and for NATIVE the QR code's picture. */
async function payObjectOf(order: Order, ctx: OrdersContext): Promise<PayObject> {
  const payable = {
    tradeType: order.tradeType,
    prepayId: order.prepayId as string,
    ...(order.codeUrl ? { codeUrl: order.codeUrl } : {}),
    ...(order.mwebUrl ? { mwebUrl: order.mwebUrl } : {}),
  };
  const pay = await ctx.gatewayFor(order).payObject(payable, ctx.now());
  if (!('codeUrl' in pay)) return pay;
  // Loaded here, so that only the bundles that make orders carry the QR library.
  const { toDataURL } = await import('qrcode');
  return { codeUrl: pay.codeUrl, qrCode: await toDataURL(pay.codeUrl, { errorCorrectionLevel: 'M', margin: 2, width: 256 }) };
}

async function answer(order: Order, ctx: OrdersContext, replayed: boolean): Promise<CreatedOrder> {
  const created: CreatedOrder = {
    outTradeNo: order.outTradeNo,
    status: order.status,
    totalFee: order.totalFee,
    description: order.description,
    expiresAt: order.expiresAt,
    replayed,
  };
  if (order.status === 'PENDING') created.pay = await payObjectOf(order, ctx);
  return created;
}

/**
 * An idempotent repeat found its order pending past expiry. The payer may have paid (a late
 * callback, recovery not yet run): WeChat Pay is asked first, and the order is only called expired
 * once WeChat Pay confirms it was not paid and it is closed. A client told "expired" creates a new
 * order, so saying it wrongly would charge the payer twice.
 */
async function settleExpired(order: Order, ctx: OrdersContext): Promise<Order> {
  let settled;
  try {
    settled = await settleWithWechatPay(order, 'query', ctx);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    throw new PaymentProviderError(
      error.code,
      `WeChat Pay could not confirm whether order ${order.outTradeNo} was paid: ${error.message}`,
      true,
      order.outTradeNo,
      error,
    );
  }
  if (settled.order.status === 'CLOSED') {
    throw new OrderConflictError(
      'ORDER_EXPIRED',
      `order ${order.outTradeNo} has expired unpaid (WeChat Pay confirms it was not paid); create a new order with a new idempotencyKey`,
    );
  }
  if (settled.order.status === 'PENDING') {
    throw new PaymentProviderError(
      'NOT_CONFIRMED',
      `WeChat Pay has not yet confirmed whether order ${order.outTradeNo} was paid`,
      true,
      order.outTradeNo,
      undefined,
    );
  }
  return settled.order;
}

/** The order an idempotency key named, with a pay object that is still valid. */
async function resume(order: Order, ctx: OrdersContext): Promise<CreatedOrder> {
  if (order.status !== 'PENDING') return answer(order, ctx, true);
  const now = ctx.now().getTime();
  if (now >= Date.parse(order.expiresAt)) return answer(await settleExpired(order, ctx), ctx, true);
  const reuseFor = order.tradeType === 'MWEB' ? PREPAY_REUSE_MS.MWEB : PREPAY_REUSE_MS.default;
  const fresh = order.prepayId && order.prepayIssuedAt && now - Date.parse(order.prepayIssuedAt) < reuseFor;
  return answer(fresh ? order : await requestPrepay(order, ctx), ctx, true);
}

/**
 * Creates an order: stores it PENDING before WeChat Pay hears of it, calls unifiedorder, stores the
 * prepay id and answers what the frontend needs to pay. With an idempotency key, the same request
 * again returns the same order.
 */
export async function createOrder(request: CreateOrderRequest, ctx: OrdersContext): Promise<CreatedOrder> {
  const appId = orderAppId(request, ctx);
  let outTradeNo = newOutTradeNo(ctx.now());
  if (request.idempotencyKey) {
    const scopedKey = `${request.idempotencyScope}#${request.idempotencyKey}`;
    const requested = fingerprint(request, appId, ctx);
    const claim = await ctx.claims.idempotencyKey(scopedKey, { outTradeNo, fingerprint: requested, createdAt: ctx.now().toISOString() });
    if (!claim.ok) {
      if (claim.fingerprint !== requested) {
        throw new OrderConflictError(
          'IDEMPOTENCY_KEY_REUSED',
          'idempotencyKey was already used for a different request; use a new key for a new order',
        );
      }
      const existing = await ctx.store.get(claim.outTradeNo);
      if (existing) return resume(existing, ctx);
      // The first request claimed the key but stopped before storing its order: finish its work.
      outTradeNo = claim.outTradeNo;
    }
  }
  const order = newOrder(request, appId, outTradeNo, ctx);
  if (!(await ctx.store.createPending(order, Date.parse(order.createdAt) + RECOVERY_GRACE_MS))) {
    // Two retries of one idempotent request raced past the claim: answer the one that was stored.
    const existing = await ctx.store.get(outTradeNo);
    if (existing) return resume(existing, ctx);
    throw new OrderConflictError('ORDER_CONFLICT', `order ${outTradeNo} could not be stored; try again`);
  }
  logAndCount('order created', { outTradeNo, tradeType: order.tradeType, totalFee: order.totalFee }, 'OrdersCreated');
  return answer(await requestPrepay(order, ctx), ctx, false);
}

/**
 * Creates a frontend's order: its items priced from the catalog as it is now (one read of every
 * product), the order keeping each line at the price it was made at.
 */
export async function createFrontendOrder(request: FrontendOrderRequest, ctx: OrdersContext): Promise<CreatedOrder> {
  const catalog = await ctx.catalog().getMany(request.items.map((item) => item.sku));
  const { items, ...rest } = request;
  const priced = priceItems(items, catalog);
  return createOrder({ ...rest, totalFee: priced.totalFee, description: priced.description, lines: priced.lines }, ctx);
}
