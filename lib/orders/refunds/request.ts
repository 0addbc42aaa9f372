/**
 * A refund request of the merchant's server: checked, claimed, reserved on its order, then sent to
 * WeChat Pay (docs/reference/http-api.md: Refunds). One request is one refund whatever fails: its number is claimed
 * before anything else is written, its amount reserved in one conditional write before WeChat Pay
 * hears of it, and every call after that resends the same out_refund_no.
 */
import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { ConfigError } from '../../config';
import { logger } from '../../log';
import { countMetric } from '../../metrics';
import { OUT_TRADE_NO_PATTERN } from '../../wechatpay/ids';
import { parseBody, wechatText } from '../../validation';
import type { OrdersContext } from '../context';
import { InvalidOrderRequestError, OrderConflictError, OrderNotFoundError, OrderStoreError, PaymentProviderError } from '../errors';
import { GatewayError } from '../gateway';
import { refundOf, toRefundView, type Order, type OrderRefund, type RefundView } from '../model';
import { MAX_REFUNDS_PER_ORDER } from '../store';
import { outRefundNoFor, refundClaimFor } from './numbers';
import { FIRST_REFUND_CHECK_MS } from './schedule';
import { isAboutOrder, MAX_WRITE_ATTEMPTS, refuseAnswerAboutAnotherOrder, reread, settle } from './settle';

/** A refund request of the merchant's server, checked. */
export interface RefundRequest {
  outTradeNo: string;
  refundFee: number;
  reason?: string;
  idempotencyKey: string;
}

const REFUND_BODY = v.strictObject({
  refundFee: v.pipe(
    v.number('must be a number of fen'),
    v.integer('must be a whole number of fen (1 yuan = 100 fen)'),
    v.minValue(1, 'must be at least 1 fen'),
    v.maxValue(100_000_000_000, 'is far over any order'),
  ),
  // refund_desc: at most 80 characters, shown to the payer; WeChat Pay's text rules.
  reason: v.optional(v.pipe(wechatText(80), v.minLength(1, 'must not be empty'))),
  idempotencyKey: v.pipe(v.string(), v.regex(/^[\x21-\x7E]{1,64}$/, 'must be 1 to 64 visible ASCII characters')),
});

export function checkOutTradeNo(outTradeNo: string): void {
  if (!OUT_TRADE_NO_PATTERN.test(outTradeNo)) {
    throw new InvalidOrderRequestError('outTradeNo must be 6 to 32 characters of [0-9A-Za-z_-]', 'outTradeNo');
  }
}

/** `POST /merchant/orders/{outTradeNo}/refunds`: the body, checked; a 400 names the wrong field. */
export function parseRefundRequest(outTradeNo: string, body: unknown): RefundRequest {
  checkOutTradeNo(outTradeNo);
  const parsed = parseBody(REFUND_BODY, body, (message, field) => new InvalidOrderRequestError(message, field));
  return { outTradeNo, ...parsed };
}

/** What makes two requests with one key the same request. */
function fingerprintOf(request: RefundRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([request.outTradeNo, request.refundFee, request.reason ?? null]))
    .digest('base64url');
}

/**
 * Makes (or answers again) the refund of a request: claims its out_refund_no, reserves its amount on
 * the order, then asks WeChat Pay. A repeat of the request answers the same refund, asking WeChat Pay
 * again (with the same out_refund_no) while it is PROCESSING.
 */
export async function requestRefund(request: RefundRequest, ctx: OrdersContext): Promise<RefundView> {
  const claimKey = refundClaimFor(request.idempotencyKey);
  const fingerprint = fingerprintOf(request);
  let order = await ctx.store.get(request.outTradeNo);
  if (!order) throw new OrderNotFoundError(request.outTradeNo);
  const createdAt = ctx.now().toISOString();
  const claim = await ctx.claims.refund(claimKey, {
    outRefundNo: outRefundNoFor(request.outTradeNo, request.idempotencyKey),
    outTradeNo: request.outTradeNo,
    fingerprint,
    createdAt,
  });
  if (!claim.ok && (claim.outTradeNo !== request.outTradeNo || claim.fingerprint !== fingerprint)) {
    throw new OrderConflictError(
      'IDEMPOTENCY_KEY_REUSED',
      `idempotencyKey was used for another refund request (refund ${claim.outRefundNo} of order ${claim.outTradeNo})`,
    );
  }
  // A repeat keeps the number its claim was made with (a refund requested before numbers named their order has the claim's).
  const outRefundNo = claim.outRefundNo;
  const refund: OrderRefund = {
    outRefundNo,
    refundFee: request.refundFee,
    ...(request.reason ? { reason: request.reason } : {}),
    status: 'PROCESSING',
    createdAt,
    origin: 'api',
    fingerprint,
  };
  for (let attempt = 0; ; attempt += 1) {
    const existing = refundOf(order, outRefundNo);
    if (existing) {
      if (existing.fingerprint !== fingerprint)
        throw new OrderConflictError('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey was used for another refund request');
      if (existing.status !== 'PROCESSING') return toRefundView(order, existing);
      return sendRefund(order, existing, 'api', ctx);
    }
    refuseUnrefundable(order, request.refundFee);
    const reserved = await ctx.refunds.reserve(order, refund, ctx.now().getTime() + FIRST_REFUND_CHECK_MS);
    if (reserved) {
      logger.info('refund reserved', {
        outTradeNo: order.outTradeNo,
        outRefundNo,
        refundFee: refund.refundFee,
        refundHeldFee: reserved.refundHeldFee,
      });
      countMetric('RefundsRequested');
      return sendRefund(reserved, refund, 'api', ctx);
    }
    // Another refund changed the order first (or this very one, by a concurrent repeat): look again.
    if (attempt >= MAX_WRITE_ATTEMPTS)
      throw new OrderStoreError(`order ${order.outTradeNo} kept changing while reserving a refund`, undefined);
    order = await reread(order.outTradeNo, ctx);
  }
}

/** 409 unless the order can take a new refund of this amount (the reservation's condition, explained). */
function refuseUnrefundable(order: Order, refundFee: number): void {
  if (order.status !== 'PAID') {
    const why = order.status === 'REFUNDED' ? 'is already refunded in full' : `is ${order.status}, not PAID`;
    throw new OrderConflictError('ORDER_NOT_REFUNDABLE', `order ${order.outTradeNo} ${why}`);
  }
  const held = order.refundHeldFee ?? 0;
  if (held + refundFee > order.totalFee) {
    throw new OrderConflictError(
      'REFUND_EXCEEDS_AMOUNT',
      `refundFee ${refundFee} is over what is left to refund of order ${order.outTradeNo}: ${Math.max(order.totalFee - held, 0)} of ${order.totalFee} fen`,
    );
  }
  if ((order.refundCount ?? 0) >= MAX_REFUNDS_PER_ORDER) {
    throw new OrderConflictError('TOO_MANY_REFUNDS', `order ${order.outTradeNo} has ${MAX_REFUNDS_PER_ORDER} refunds, WeChat Pay's limit`);
  }
}

/**
 * Asks WeChat Pay for a stored PROCESSING refund (a first time, or again with the same
 * out_refund_no) and records what it answers: accepted (still PROCESSING, with WeChat Pay's refund
 * id), or refused for good (FAILED, the amount given back). A timeout or a refusal worth retrying
 * leaves it PROCESSING; a failure that needs a person (configuration, certificate, an answer that
 * cannot be trusted) is thrown, the refund still PROCESSING, for recovery to send again.
 */
export async function sendRefund(order: Order, refund: OrderRefund, via: 'api' | 'recovery', ctx: OrdersContext): Promise<RefundView> {
  const { refundNotifyUrl } = ctx.config;
  if (!refundNotifyUrl) throw new ConfigError('WECHATPAY_REFUND_NOTIFY_URL is not set and cannot be derived from WECHATPAY_NOTIFY_URL');
  const context = { outTradeNo: order.outTradeNo, outRefundNo: refund.outRefundNo, via };
  try {
    // Under the order's own app, as it was paid.
    const accepted = await ctx.gatewayFor(order).refund({
      outTradeNo: order.outTradeNo,
      outRefundNo: refund.outRefundNo,
      totalFee: order.totalFee,
      refundFee: refund.refundFee,
      ...(refund.reason ? { reason: refund.reason } : {}),
      notifyUrl: refundNotifyUrl,
    });
    if (!isAboutOrder(order, accepted)) {
      await refuseAnswerAboutAnotherOrder(order, refund, accepted, 'refund-request', ctx);
      return toRefundView(order, refund);
    }
    const at = ctx.now().toISOString();
    await ctx.refunds.markAccepted(order.outTradeNo, refund.outRefundNo, { refundId: accepted.refundId, at });
    logger.info('refund accepted by WeChat Pay', { ...context, refundId: accepted.refundId });
    return toRefundView(order, { ...refund, refundId: accepted.refundId, acceptedAt: refund.acceptedAt ?? at });
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (error.final) {
      const settled = await settle(
        order.outTradeNo,
        refund.outRefundNo,
        { status: 'FAILED', at: ctx.now().toISOString(), failureCode: error.code, failureMessage: error.description || error.message },
        ctx,
      );
      logger.warn('refund refused by WeChat Pay', { ...context, code: error.code });
      countMetric('RefundsFailed');
      return toRefundView(order, settled ?? { ...refund, status: 'FAILED', failureCode: error.code });
    }
    if (error.retryable) {
      logger.warn('refund left PROCESSING: WeChat Pay did not answer for good; recovery asks again', { ...context, code: error.code });
      return toRefundView(order, refund);
    }
    logger.error('refund call failed; it stays PROCESSING and recovery sends it again', {
      ...context,
      code: error.code,
      message: error.message,
    });
    throw new PaymentProviderError(
      error.code,
      `refund ${refund.outRefundNo} is PROCESSING, not yet accepted: ${error.message}`,
      true,
      order.outTradeNo,
      error,
    );
  }
}
