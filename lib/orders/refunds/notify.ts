/** WeChat Pay's refund callback, and the bill's refunds recorded the same way. */
import { logger } from '../../log';
import { countMetric } from '../../metrics';
import { notificationReply } from '../../wechatpay/notification';
import { readRefundNotification, type RefundNotification } from '../../wechatpay/refund-notification';
import type { OrdersContext } from '../context';
import { OrderStoreError } from '../errors';
import { refundOf, type Order, type OrderRefund, type ReviewFlag } from '../model';
import type { RefundSettlement } from '../store';
import { MAX_WRITE_ATTEMPTS, recordReportedEnd, reread, successAt } from './settle';

export interface RefundNotificationResult {
  reply: string;
  outcome: string;
}

function refuse(outcome: string, reason: string, context: Record<string, unknown> = {}): RefundNotificationResult {
  logger.warn('refund callback refused', { outcome, reason, ...context });
  countMetric('CallbacksRefused');
  return { reply: notificationReply('FAIL', reason), outcome };
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

export async function recordRefundNotification(notice: RefundNotification, source: ReviewFlag['source'], context: Record<string, unknown>, ctx: OrdersContext): Promise<RefundNotificationResult> {
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
