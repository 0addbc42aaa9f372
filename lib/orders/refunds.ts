/**
 * Refunds (README: Refunds): one request is one refund whatever fails.
 *
 * - The out_refund_no is derived from the merchant's idempotency key, so a retried request finds
 *   the same number, and it is claimed (`refund#<outRefundNo>`) before anything else is written.
 * - The refund is stored PROCESSING, its amount reserved on the order, in one conditional write,
 *   before WeChat Pay hears of it; every call after that resends the same out_refund_no.
 * - WeChat Pay's refusal for good (NOTENOUGH, TRADE_OVERDUE, ...) ends it FAILED and gives the
 *   amount back; anything else unclear (a timeout, SYSTEMERROR) leaves it PROCESSING for the
 *   recovery schedule, which asks refundquery and sends it again if WeChat Pay never got it.
 * - Should WeChat Pay later report a FAILED refund as SUCCESS (its callback, refundquery, the bill),
 *   the money did go back: it is recorded SUCCESS, its amount held again, and flagged for review.
 */
import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { ConfigError } from '../config';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { OUT_TRADE_NO_PATTERN } from '../wechatpay/ids';
import { WechatPayBusinessError, WechatPayError, WechatPayNetworkError } from '../wechatpay/errors';
import { notificationReply } from '../wechatpay/notification';
import type { QueriedRefund } from '../wechatpay/refund';
import { readRefundNotification, type RefundNotification } from '../wechatpay/refund-notification';
import { fromBeijingTimestamp } from '../wechatpay/time';
import { parseBody, wechatText } from '../validation';
import type { OrdersContext } from './context';
import { walkDueShards } from './due-walk';
import { InvalidOrderRequestError, OrderConflictError, OrderNotFoundError, OrderStoreError, PaymentProviderError } from './errors';
import { refundOf, toRefundView, type Order, type OrderRefund, type RefundView, type ReviewFlag } from './model';
import { MAX_REFUNDS_PER_ORDER, OPEN_REFUNDS_INDEX, PENDING_SHARDS, type RefundSettlement } from './store';

export { OPEN_REFUNDS_INDEX };

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

function checkOutTradeNo(outTradeNo: string): void {
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

/**
 * The claim of an idempotency key: `R` and 31 characters of the base64url SHA-256 of the key (186
 * bits). One claim per key in this deployment, so the same key sent for another order, amount or
 * reason is refused (409). Refunds requested before refund numbers named their order were sent to
 * WeChat Pay under this number itself, and keep it.
 */
export function refundClaimFor(idempotencyKey: string): string {
  return `R${createHash('sha256').update(`refund\n${idempotencyKey}`, 'utf8').digest('base64url').slice(0, 31)}`;
}

/**
 * The out_refund_no of a key's refund of an order: `R` and 31 characters of the base64url SHA-256
 * of the order and the key's claim. WeChat Pay holds an out_refund_no unique per MERCHANT, and one
 * merchant id often serves several deployments (staging and production, a recreated table, a second
 * system) whose merchants reuse their keys: a number of the key alone would name another
 * deployment's refund of another order. Within `[0-9A-Za-z_-|*@]{1,64}`; the same for every retry.
 * It is made from the claim (not the key) so that the day's claims, which hold only their claim and
 * order (store.ts REFUND_DAY_INDEX), still name their refund (refundNumbersOfClaim).
 */
export function outRefundNoFor(outTradeNo: string, idempotencyKey: string): string {
  return outRefundNoOfClaim(outTradeNo, refundClaimFor(idempotencyKey));
}

function outRefundNoOfClaim(outTradeNo: string, claim: string): string {
  return `R${createHash('sha256').update(`refund of order\n${outTradeNo}\n${claim}`, 'utf8').digest('base64url').slice(0, 31)}`;
}

/**
 * The out_refund_nos a claim's refund may have: the number naming its order, or, for a refund
 * requested before numbers named their order, the claim itself.
 */
export function refundNumbersOfClaim(claim: { claim: string; outTradeNo: string }): [string, string] {
  return [outRefundNoOfClaim(claim.outTradeNo, claim.claim), claim.claim];
}

/** What makes two requests with one key the same request. */
function fingerprintOf(request: RefundRequest): string {
  return createHash('sha256').update(JSON.stringify([request.outTradeNo, request.refundFee, request.reason ?? null])).digest('base64url');
}

/** The first check of a new refund: WeChat Pay usually settles a refund to the payer's balance within a minute. */
const FIRST_REFUND_CHECK_MS = 60_000;
/** Then 2, 4, 8, ... minutes, at most an hour apart (bank cards take days). */
const MAX_REFUND_CHECK_INTERVAL_MS = 3_600_000;

export function nextRefundCheck(checkCount: number, now: number): number {
  return now + Math.min(FIRST_REFUND_CHECK_MS * 2 ** Math.min(checkCount, 10), MAX_REFUND_CHECK_INTERVAL_MS);
}

/** WeChat Pay's err_codes after which retrying the same refund cannot help: it ends FAILED. */
function isFinalRefusal(error: unknown): error is WechatPayBusinessError {
  return error instanceof WechatPayBusinessError && !error.retryable;
}

/**
 * Reads an order again after a refused conditional write; `retry` decides from it. A write refused
 * this often means the order keeps changing under it: a storage error, so the caller retries.
 */
async function reread(outTradeNo: string, ctx: OrdersContext): Promise<Order> {
  const order = await ctx.store.get(outTradeNo);
  if (!order) throw new OrderStoreError(`order ${outTradeNo} disappeared`, undefined);
  return order;
}

const MAX_WRITE_ATTEMPTS = 60;

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
  const claim = await ctx.store.claimRefund(claimKey, { outRefundNo: outRefundNoFor(request.outTradeNo, request.idempotencyKey), outTradeNo: request.outTradeNo, fingerprint, createdAt });
  if (!claim.ok && (claim.outTradeNo !== request.outTradeNo || claim.fingerprint !== fingerprint)) {
    throw new OrderConflictError('IDEMPOTENCY_KEY_REUSED', `idempotencyKey was used for another refund request (refund ${claim.outRefundNo} of order ${claim.outTradeNo})`);
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
      if (existing.fingerprint !== fingerprint) throw new OrderConflictError('IDEMPOTENCY_KEY_REUSED', 'idempotencyKey was used for another refund request');
      if (existing.status !== 'PROCESSING') return toRefundView(order, existing);
      return sendRefund(order, existing, 'api', ctx);
    }
    refuseUnrefundable(order, request.refundFee);
    const reserved = await ctx.store.reserveRefund(order, refund, ctx.now().getTime() + FIRST_REFUND_CHECK_MS);
    if (reserved) {
      logger.info('refund reserved', { outTradeNo: order.outTradeNo, outRefundNo, refundFee: refund.refundFee, refundHeldFee: reserved.refundHeldFee });
      countMetric('RefundsRequested');
      return sendRefund(reserved, refund, 'api', ctx);
    }
    // Another refund changed the order first (or this very one, by a concurrent repeat): look again.
    if (attempt >= MAX_WRITE_ATTEMPTS) throw new OrderStoreError(`order ${order.outTradeNo} kept changing while reserving a refund`, undefined);
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
    const accepted = await ctx.wechatPayFor(order.appId).refund(
      {
        outTradeNo: order.outTradeNo,
        outRefundNo: refund.outRefundNo,
        totalFee: order.totalFee,
        refundFee: refund.refundFee,
        ...(refund.reason ? { reason: refund.reason } : {}),
        notifyUrl: refundNotifyUrl,
      },
      { signType: order.signType },
    );
    if (!isAboutOrder(order, accepted)) {
      await refuseAnswerAboutAnotherOrder(order, refund, accepted, 'refund-request', ctx);
      return toRefundView(order, refund);
    }
    const at = ctx.now().toISOString();
    await ctx.store.markRefundAccepted(order.outTradeNo, refund.outRefundNo, { refundId: accepted.refundId, at });
    logger.info('refund accepted by WeChat Pay', { ...context, refundId: accepted.refundId });
    return toRefundView(order, { ...refund, refundId: accepted.refundId, acceptedAt: refund.acceptedAt ?? at });
  } catch (error) {
    if (isFinalRefusal(error)) {
      const settled = await settle(order.outTradeNo, refund.outRefundNo, { status: 'FAILED', at: ctx.now().toISOString(), failureCode: error.code, failureMessage: error.errCodeDes || error.message }, ctx);
      logger.warn('refund refused by WeChat Pay', { ...context, code: error.code });
      countMetric('RefundsFailed');
      return toRefundView(order, settled ?? { ...refund, status: 'FAILED', failureCode: error.code });
    }
    if (error instanceof WechatPayNetworkError || (error instanceof WechatPayError && error.retryable)) {
      logger.warn('refund left PROCESSING: WeChat Pay did not answer for good; recovery asks again', { ...context, code: error.code });
      return toRefundView(order, refund);
    }
    if (error instanceof WechatPayError) {
      logger.error('refund call failed; it stays PROCESSING and recovery sends it again', { ...context, code: error.code, message: error.message });
      throw new PaymentProviderError(error.code, `refund ${refund.outRefundNo} is PROCESSING, not yet accepted: ${error.message}`, true, order.outTradeNo, error);
    }
    throw error;
  }
}

/** An answer of WeChat Pay about a refund is about this order: its out_trade_no and its payment's transaction_id. */
function isAboutOrder(order: Order, answer: { outTradeNo: string; transactionId: string }): boolean {
  return answer.outTradeNo === order.outTradeNo && answer.transactionId === order.transactionId;
}

/**
 * WeChat Pay answered about another order under this refund's out_refund_no: the number is the
 * merchant's, and another deployment or system on the same merchant id made a refund under it.
 * Nothing of the answer is recorded: the refund stays as it was (WeChat Pay never refunded this
 * order's payer under that number), and the order is flagged once for a person; logged and counted
 * every time it happens.
 */
async function refuseAnswerAboutAnotherOrder(
  order: Order,
  refund: OrderRefund,
  answer: { outTradeNo: string; transactionId: string },
  source: ReviewFlag['source'],
  ctx: OrdersContext,
): Promise<void> {
  logger.error('WeChat Pay answered about another order\'s refund under this refund\'s out_refund_no: not recorded, flagged for review', {
    outTradeNo: order.outTradeNo,
    outRefundNo: refund.outRefundNo,
    answeredOutTradeNo: answer.outTradeNo,
    answeredTransactionId: answer.transactionId,
    source,
  });
  countMetric('RefundAnswersRefused');
  const flag: ReviewFlag = {
    reason: 'REFUND_ANSWER_FOR_ANOTHER_ORDER',
    at: ctx.now().toISOString(),
    source,
    // Only a paid order has refunds.
    transactionId: order.transactionId as string,
    totalFee: order.totalFee,
    outRefundNo: refund.outRefundNo,
    refundFee: refund.refundFee,
    answeredOutTradeNo: answer.outTradeNo,
  };
  await ctx.store.addReviewFlag(order, flag, `refund-answer:${refund.outRefundNo}`);
}

/**
 * Ends a PROCESSING refund (conditional write; read again and retried while the order's totals
 * move). Answers the refund as it now stands, or undefined when the order has no such refund.
 */
async function settle(outTradeNo: string, outRefundNo: string, settlement: RefundSettlement, ctx: OrdersContext): Promise<OrderRefund | undefined> {
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
    const order = await reread(outTradeNo, ctx);
    const refund = refundOf(order, outRefundNo);
    if (!refund) return undefined;
    if (refund.status !== 'PROCESSING') return refund;
    const after = await ctx.store.settleRefund(order, outRefundNo, settlement);
    if (after) {
      const transition = `PROCESSING->${settlement.status}`;
      logger.info('refund ended', { outTradeNo, outRefundNo, transition, refundedFee: after.refundedFee ?? 0, orderStatus: after.status });
      if (after.status === 'REFUNDED' && order.status !== 'REFUNDED') logger.info('order refunded', { outTradeNo, transition: 'PAID->REFUNDED' });
      if (settlement.status === 'CHANGE') {
        logger.error('refund could not reach the payer (CHANGE): a person must refund by other means', { outTradeNo, outRefundNo });
        countMetric('RefundsNeedAction');
      }
      return refundOf(after, outRefundNo);
    }
  }
  throw new OrderStoreError(`order ${outTradeNo} kept changing while ending refund ${outRefundNo}`, undefined);
}

/**
 * Records how WeChat Pay says a refund ended (its callback, refundquery, the bill): a PROCESSING
 * refund ends so; a refund recorded FAILED that WeChat Pay reports SUCCESS went back after all, and
 * is recorded SUCCESS and flagged (`source` says who reported it). Answers the refund as it now stands.
 */
async function recordReportedEnd(outTradeNo: string, outRefundNo: string, settlement: RefundSettlement, source: ReviewFlag['source'], ctx: OrdersContext): Promise<OrderRefund | undefined> {
  const ended = await settle(outTradeNo, outRefundNo, settlement, ctx);
  if (ended?.status !== 'FAILED' || settlement.status !== 'SUCCESS') return ended;
  return recordSuccessAfterFailure(outTradeNo, outRefundNo, { ...settlement, status: 'SUCCESS' }, source, ctx);
}

/**
 * A refund recorded FAILED that WeChat Pay reports SUCCESS: WeChat Pay's refusal was not its last
 * word (or another path raced it), and the money reached the payer. Money that moved is always
 * recorded: SUCCESS, its amount held and refunded again even past the order's amount, flagged for
 * review (a person may already have refunded the payer by other means after the failure).
 */
async function recordSuccessAfterFailure(
  outTradeNo: string,
  outRefundNo: string,
  settlement: RefundSettlement & { status: 'SUCCESS' },
  source: ReviewFlag['source'],
  ctx: OrdersContext,
): Promise<OrderRefund | undefined> {
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
    const order = await reread(outTradeNo, ctx);
    const refund = refundOf(order, outRefundNo);
    if (refund?.status !== 'FAILED') return refund;
    const flag: ReviewFlag = {
      reason: 'REFUND_SUCCEEDED_AFTER_FAILURE',
      at: settlement.at,
      source,
      // Only a paid order has refunds.
      transactionId: order.transactionId as string,
      totalFee: order.totalFee,
      outRefundNo,
      refundFee: refund.refundFee,
      ...(refund.failureCode ? { failureCode: refund.failureCode } : {}),
    };
    const after = await ctx.store.recordRefundSuccessAfterFailure(order, outRefundNo, settlement, flag);
    if (after) {
      logger.error('a refund recorded FAILED succeeded at WeChat Pay: recorded SUCCESS, needs review', {
        outTradeNo,
        outRefundNo,
        source,
        transition: 'FAILED->SUCCESS',
        refusedWith: refund.failureCode,
        refundFee: refund.refundFee,
        refundedFee: after.refundedFee,
        refundHeldFee: after.refundHeldFee,
        totalFee: after.totalFee,
        orderStatus: after.status,
      });
      countMetric('PaymentsFlagged');
      return refundOf(after, outRefundNo);
    }
  }
  throw new OrderStoreError(`order ${outTradeNo} kept changing while recording refund ${outRefundNo}'s success after its failure`, undefined);
}

/** `GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}`: the refund as stored. */
export async function getRefund(outTradeNo: string, outRefundNo: string, ctx: OrdersContext): Promise<RefundView> {
  checkOutTradeNo(outTradeNo);
  if (!/^[0-9A-Za-z_\-|*@]{1,64}$/.test(outRefundNo)) throw new InvalidOrderRequestError('outRefundNo must be 1 to 64 characters of [0-9A-Za-z_-|*@]', 'outRefundNo');
  const order = await ctx.store.get(outTradeNo);
  const refund = refundOf(order, outRefundNo);
  if (!order || !refund) throw new RefundNotFoundError(outTradeNo, outRefundNo);
  return toRefundView(order, refund);
}

export class RefundNotFoundError extends OrderNotFoundError {
  constructor(outTradeNo: string, outRefundNo: string) {
    super(outTradeNo);
    this.message = `no refund ${outRefundNo} of order ${outTradeNo}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// The refund callback.

export interface RefundNotificationResult {
  reply: string;
  outcome: string;
}

function refuse(outcome: string, reason: string, context: Record<string, unknown> = {}): RefundNotificationResult {
  logger.warn('refund callback refused', { outcome, reason, ...context });
  countMetric('CallbacksRefused');
  return { reply: notificationReply('FAIL', reason), outcome };
}

/** `yyyy-MM-dd HH:mm:ss` Beijing (WeChat Pay's success time) as ISO 8601. */
function successAt(successTime: string | undefined): string | undefined {
  if (!successTime) return undefined;
  return fromBeijingTimestamp(successTime.replace(/[- :]/g, ''))?.toISOString();
}

/**
 * Handles WeChat Pay's refund callback: `req_info` decrypted and checked, then matched against the
 * stored order and refund (out_trade_no, transaction id, amounts); the refund's end recorded once;
 * SUCCESS answered only once recorded. A refund this backend never asked for (made in the merchant
 * platform) is recorded on its order and flagged for review. FAIL for anything that does not match,
 * and for a storage failure (so WeChat Pay retries). Never throws on what was received.
 */
export async function handleRefundNotification(body: string | Uint8Array, ctx: OrdersContext): Promise<RefundNotificationResult> {
  // Any of the merchant's apps here; the refund's order must then be of that app.
  const read = readRefundNotification(body, { apiKey: ctx.config.apiKey, appIds: ctx.config.apps.map((app) => app.appId), mchId: ctx.config.mchId });
  if (!read.ok) {
    if (read.reason === 'RETURN_CODE_NOT_SUCCESS') {
      // Nothing to record; a FAIL reply would only bring the same document back.
      logger.info('refund callback with return_code FAIL acknowledged', { message: read.message });
      return { reply: notificationReply('SUCCESS'), outcome: 'RETURN_CODE_FAIL_ACKNOWLEDGED' };
    }
    return refuse(read.reason, read.message);
  }
  const notice = read.refund;
  const context = { outTradeNo: notice.outTradeNo, outRefundNo: notice.outRefundNo, refundStatus: notice.refundStatus };
  try {
    return await recordRefundNotification(notice, 'refund-notify', context, ctx);
  } catch (error) {
    if (!(error instanceof OrderStoreError)) throw error;
    logger.error('refund callback could not be recorded; WeChat Pay will retry', { ...context, error });
    countMetric('StorageErrors');
    return { reply: notificationReply('FAIL', 'temporarily unable to record the refund; please retry'), outcome: 'STORE_ERROR' };
  }
}

async function recordRefundNotification(notice: RefundNotification, source: ReviewFlag['source'], context: Record<string, unknown>, ctx: OrdersContext): Promise<RefundNotificationResult> {
  const order = await ctx.store.get(notice.outTradeNo);
  if (!order) return refuse('UNKNOWN_ORDER', `no order ${notice.outTradeNo}`, context);
  // Orders made before apps were recorded were made under the default app.
  const orderApp = order.appId ?? ctx.config.appId;
  if (notice.appId !== orderApp) return refuse('APP_MISMATCH', `sent under appid ${notice.appId}, but the order was made under ${orderApp}`, context);
  if (notice.totalFee !== order.totalFee) return refuse('AMOUNT_MISMATCH', `total_fee ${notice.totalFee} is not the order's amount`, context);
  if (!order.transactionId || notice.transactionId !== order.transactionId) {
    return refuse('TRANSACTION_MISMATCH', `transaction_id does not match order ${order.outTradeNo}'s payment`, context);
  }
  const settlement: RefundSettlement = {
    status: notice.refundStatus,
    at: ctx.now().toISOString(),
    refundId: notice.refundId,
    ...(notice.refundStatus === 'SUCCESS' && successAt(notice.successTime) ? { succeededAt: successAt(notice.successTime) } : {}),
    ...(notice.refundRecvAccount ? { receivedBy: notice.refundRecvAccount } : {}),
  };
  const stored = refundOf(order, notice.outRefundNo);
  if (!stored) return recordExternal(order, notice, settlement, source, context, ctx);
  if (stored.refundFee !== notice.refundFee) return refuse('REFUND_AMOUNT_MISMATCH', `refund_fee ${notice.refundFee} is not refund ${notice.outRefundNo}'s amount`, context);
  if (stored.refundId && stored.refundId !== notice.refundId) return refuse('REFUND_ID_MISMATCH', `refund_id does not match refund ${notice.outRefundNo}`, context);
  // A refund recorded FAILED that WeChat Pay made after all is recorded (recordSuccessAfterFailure).
  const succeededAfterFailure = stored.status === 'FAILED' && notice.refundStatus === 'SUCCESS';
  if (stored.status !== 'PROCESSING' && !succeededAfterFailure) {
    if (stored.status !== notice.refundStatus) logger.warn('refund callback disagrees with the refund as recorded; kept as recorded', { ...context, recorded: stored.status });
    countMetric('DuplicateCallbacks');
    return { reply: notificationReply('SUCCESS'), outcome: 'ALREADY_RECORDED' };
  }
  const after = await recordReportedEnd(order.outTradeNo, notice.outRefundNo, settlement, source, ctx);
  if (after?.status !== notice.refundStatus) logger.warn('refund callback found the refund ended otherwise', { ...context, recorded: after?.status });
  const outcome = succeededAfterFailure && after?.status === 'SUCCESS' ? 'REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED' : `REFUND_${notice.refundStatus}`;
  return { reply: notificationReply('SUCCESS'), outcome };
}

/**
 * A successful refund read from WeChat Pay's bill (the daily reconciliation), recorded through the
 * same path as its callback: a refund of ours ends SUCCESS, a refund made elsewhere is recorded and
 * flagged, and so is one of ours recorded FAILED. Answers what happened (`REFUND_SUCCESS`,
 * `EXTERNAL_REFUND_FLAGGED`, `REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED`, `ALREADY_RECORDED`, or why it
 * was refused).
 */
export async function recordBilledRefund(
  billed: { transactionId: string; outTradeNo: string; refundId: string; outRefundNo: string; refundFee: number; settlementRefundFee: number },
  ctx: OrdersContext,
): Promise<string> {
  const order = await ctx.store.get(billed.outTradeNo);
  if (!order) return 'UNKNOWN_ORDER';
  const notice: RefundNotification = {
    ...billed,
    appId: order.appId ?? ctx.config.appId,
    mchId: ctx.config.mchId,
    totalFee: order.totalFee,
    refundStatus: 'SUCCESS',
    refundRequestSource: 'BILL',
    // What WeChat Pay's bill line said, for the log: the bill has no decrypted document.
    fields: { out_refund_no: billed.outRefundNo, refund_id: billed.refundId, refund_fee: String(billed.refundFee) },
  };
  const context = { outTradeNo: billed.outTradeNo, outRefundNo: billed.outRefundNo, source: 'reconciliation' };
  return (await recordRefundNotification(notice, 'reconciliation', context, ctx)).outcome;
}

/** A refund WeChat Pay made for a known order without this backend asking: recorded and flagged. */
async function recordExternal(
  order: Order,
  notice: RefundNotification,
  settlement: RefundSettlement,
  source: ReviewFlag['source'],
  context: Record<string, unknown>,
  ctx: OrdersContext,
): Promise<RefundNotificationResult> {
  if (order.status !== 'PAID' && order.status !== 'REFUNDED') return refuse('ORDER_NOT_PAID', `order ${order.outTradeNo} is ${order.status}: it has no payment to refund`, context);
  const refund: OrderRefund = {
    outRefundNo: notice.outRefundNo,
    refundFee: notice.refundFee,
    status: notice.refundStatus,
    createdAt: settlement.at,
    origin: 'external',
    refundId: notice.refundId,
    settledAt: settlement.at,
    ...(settlement.succeededAt ? { succeededAt: settlement.succeededAt } : {}),
    ...(settlement.receivedBy ? { receivedBy: settlement.receivedBy } : {}),
  };
  const flag: ReviewFlag = {
    reason: 'REFUND_NOT_REQUESTED',
    at: settlement.at,
    source,
    transactionId: notice.transactionId,
    totalFee: order.totalFee,
    outRefundNo: notice.outRefundNo,
    refundFee: notice.refundFee,
  };
  let current = order;
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
    if (refundOf(current, notice.outRefundNo)) return { reply: notificationReply('SUCCESS'), outcome: 'ALREADY_RECORDED' };
    const after = await ctx.store.recordExternalRefund(current, refund, flag);
    if (after) {
      logger.error('refund made outside this backend recorded; needs review', { ...context, refundFee: notice.refundFee, source: notice.refundRequestSource });
      countMetric('PaymentsFlagged');
      return { reply: notificationReply('SUCCESS'), outcome: 'EXTERNAL_REFUND_FLAGGED' };
    }
    current = await reread(order.outTradeNo, ctx);
  }
  throw new OrderStoreError(`order ${order.outTradeNo} kept changing while recording an external refund`, undefined);
}

// ---------------------------------------------------------------------------------------------------
// Recovery: the PROCESSING refunds, through the sparse open-refunds index.

export interface RefundRecoverySummary {
  /** Orders with due open refunds this run took up. */
  refundOrders: number;
  /** Refunds that ended because recovery learned of it. */
  refundsSettled: number;
  /** Refunds WeChat Pay never received, sent again with their out_refund_no. */
  refundsResent: number;
  /** WeChat Pay or storage failures; checked again on a later run. */
  refundErrors: number;
}

const FINAL_REFUND_STATUSES = new Set(['SUCCESS', 'CHANGE', 'REFUNDCLOSE']);

/** What refundquery said of one refund, recorded; 'resent' when WeChat Pay never had it. */
async function recoverRefund(order: Order, refund: OrderRefund, ctx: OrdersContext, summary: RefundRecoverySummary): Promise<void> {
  let queried: QueriedRefund | undefined;
  try {
    const result = await ctx.wechatPayFor(order.appId).refundQuery({ outRefundNo: refund.outRefundNo }, { signType: order.signType });
    if (!isAboutOrder(order, result)) {
      summary.refundErrors += 1;
      await refuseAnswerAboutAnotherOrder(order, refund, result, 'recovery', ctx);
      return;
    }
    queried = result.refunds.find((candidate) => candidate.outRefundNo === refund.outRefundNo);
  } catch (error) {
    if (!(error instanceof WechatPayBusinessError && error.code === 'REFUNDNOTEXIST')) throw error;
    // Reserved here, never received there (a crash, a timeout before it arrived, FREQUENCY_LIMITED): send it again.
    summary.refundsResent += 1;
    countMetric('RefundsResent');
    const view = await sendRefund(order, refund, 'recovery', ctx);
    if (view.status !== 'PROCESSING') summary.refundsSettled += 1;
    return;
  }
  if (!queried || !FINAL_REFUND_STATUSES.has(queried.status)) return;
  if (queried.refundFee !== refund.refundFee) {
    logger.error('refundquery reports another amount for a refund; left for review', { outTradeNo: order.outTradeNo, outRefundNo: refund.outRefundNo, refundFee: queried.refundFee });
    summary.refundErrors += 1;
    return;
  }
  const at = ctx.now().toISOString();
  await recordReportedEnd(order.outTradeNo, refund.outRefundNo, {
    status: queried.status as RefundSettlement['status'],
    at,
    refundId: queried.refundId,
    ...(queried.status === 'SUCCESS' ? { succeededAt: successAt(queried.successTime) ?? at } : {}),
  }, 'recovery', ctx);
  summary.refundsSettled += 1;
}

async function recoverOrderRefunds(order: Order, ctx: OrdersContext, summary: RefundRecoverySummary): Promise<void> {
  const now = ctx.now().getTime();
  const checkCount = (order.refundCheckCount ?? 0) + 1;
  // The lease, as for pending orders: of two runs, one moves the check; a run that dies leaves it due later.
  if (!(await ctx.store.scheduleRefundCheck(order.outTradeNo, order.refundCheckAt as number, nextRefundCheck(checkCount, now), checkCount))) return;
  summary.refundOrders += 1;
  for (const refund of Object.values(order.refunds ?? {})) {
    if (refund.status !== 'PROCESSING') continue;
    try {
      await recoverRefund(order, refund, ctx, summary);
    } catch (error) {
      summary.refundErrors += 1;
      logger.warn('recovery could not settle a refund; it is checked again later', {
        outTradeNo: order.outTradeNo,
        outRefundNo: refund.outRefundNo,
        code: error instanceof WechatPayError ? error.code : undefined,
        error: error instanceof WechatPayError ? undefined : error,
      });
    }
  }
}

/**
 * Settles the PROCESSING refunds whose check is due: a query of the sparse open-refunds index per
 * shard (reads grow with open refunds, never with the table), refundquery for each, a resend with the
 * same out_refund_no for a refund WeChat Pay never received.
 */
export async function recoverRefunds(
  ctx: OrdersContext,
  options: { deadline: number; concurrency?: number; pageSize?: number },
): Promise<RefundRecoverySummary & { stoppedEarly: boolean }> {
  const summary = { refundOrders: 0, refundsSettled: 0, refundsResent: 0, refundErrors: 0, stoppedEarly: false };
  const now = ctx.now().getTime();
  summary.stoppedEarly = await walkDueShards({
    shards: PENDING_SHARDS,
    deadline: options.deadline,
    concurrency: options.concurrency ?? 4,
    page: (shard, startKey) => ctx.store.dueRefunds(shard, now, options.pageSize ?? 100, startKey),
    handle: async (order) => {
      try {
        await recoverOrderRefunds(order, ctx, summary);
      } catch (error) {
        summary.refundErrors += 1;
        logger.warn('recovery could not take up an order\'s refunds; checked again later', { outTradeNo: order.outTradeNo, error });
      }
    },
  });
  return summary;
}
