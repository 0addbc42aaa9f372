/** A refund WeChat Pay told of (its callback, or the bill), recorded once. */
import { logger } from '../../log';
import { countMetric } from '../../metrics';
import type { OrdersContext } from '../context';
import { OrderStoreError } from '../errors';
import { refundOf, type Order, type OrderRefund, type ReviewFlag } from '../model';
import type { NotificationOutcome } from '../notify';
import type { RefundSettlement } from '../store';
import { MAX_WRITE_ATTEMPTS, recordReportedEnd, reread } from './settle';

/** How a refund ended, as a verified callback (or the bill) tells it, in lib/orders' terms. */
export interface NotifiedRefund {
  /** The app the callback was sent under: the order must have been made under it. */
  appId: string;
  outTradeNo: string;
  transactionId: string;
  /** The order's amount, as WeChat Pay says it. */
  totalFee: number;
  outRefundNo: string;
  refundId: string;
  refundFee: number;
  status: 'SUCCESS' | 'CHANGE' | 'REFUNDCLOSE';
  /** When the money reached the payer (ISO 8601). */
  succeededAt?: string;
  /** Where the money went, e.g. the payer's balance or a bank card. */
  receivedBy?: string;
  /** Who asked for the refund, as WeChat Pay says (API, VENDOR_PLATFORM; BILL when read from the bill), for the log. */
  requestedVia?: string;
}

/** A refund callback refused: logged and counted. */
export function refuseRefundNotification(outcome: string, reason: string, context: Record<string, unknown> = {}): NotificationOutcome {
  logger.warn('refund callback refused', { outcome, reason, ...context });
  countMetric('CallbacksRefused');
  return { accepted: false, outcome, reason };
}

const refuse = refuseRefundNotification;
const accepted = (outcome: string): NotificationOutcome => ({ accepted: true, outcome });

/**
 * Records a verified refund callback: matched against the stored order and refund (out_trade_no,
 * transaction id, amounts); the refund's end recorded once; accepted only once recorded. A refund
 * this backend never asked for (made in the merchant platform) is recorded on its order and flagged
 * for review. Refused for anything that does not match, and for a storage failure (so WeChat Pay
 * retries).
 */
export async function recordNotifiedRefund(notice: NotifiedRefund, ctx: OrdersContext): Promise<NotificationOutcome> {
  const context = { outTradeNo: notice.outTradeNo, outRefundNo: notice.outRefundNo, refundStatus: notice.status };
  try {
    return await recordRefundNotice(notice, 'refund-notify', context, ctx);
  } catch (error) {
    if (!(error instanceof OrderStoreError)) throw error;
    logger.error('refund callback could not be recorded; WeChat Pay will retry', { ...context, error });
    countMetric('StorageErrors');
    return { accepted: false, outcome: 'STORE_ERROR', reason: 'temporarily unable to record the refund; please retry' };
  }
}

export async function recordRefundNotice(
  notice: NotifiedRefund,
  source: ReviewFlag['source'],
  context: Record<string, unknown>,
  ctx: OrdersContext,
): Promise<NotificationOutcome> {
  const order = await ctx.store.get(notice.outTradeNo);
  if (!order) return refuse('UNKNOWN_ORDER', `no order ${notice.outTradeNo}`, context);
  // Orders made before apps were recorded were made under the default app.
  const orderApp = order.appId ?? ctx.config.appId;
  if (notice.appId !== orderApp)
    return refuse('APP_MISMATCH', `sent under appid ${notice.appId}, but the order was made under ${orderApp}`, context);
  if (notice.totalFee !== order.totalFee)
    return refuse('AMOUNT_MISMATCH', `total_fee ${notice.totalFee} is not the order's amount`, context);
  if (!order.transactionId || notice.transactionId !== order.transactionId) {
    return refuse('TRANSACTION_MISMATCH', `transaction_id does not match order ${order.outTradeNo}'s payment`, context);
  }
  const settlement: RefundSettlement = {
    status: notice.status,
    at: ctx.now().toISOString(),
    refundId: notice.refundId,
    ...(notice.status === 'SUCCESS' && notice.succeededAt ? { succeededAt: notice.succeededAt } : {}),
    ...(notice.receivedBy ? { receivedBy: notice.receivedBy } : {}),
  };
  const stored = refundOf(order, notice.outRefundNo);
  if (!stored) return recordExternal(order, notice, settlement, source, context, ctx);
  if (stored.refundFee !== notice.refundFee)
    return refuse('REFUND_AMOUNT_MISMATCH', `refund_fee ${notice.refundFee} is not refund ${notice.outRefundNo}'s amount`, context);
  if (stored.refundId && stored.refundId !== notice.refundId)
    return refuse('REFUND_ID_MISMATCH', `refund_id does not match refund ${notice.outRefundNo}`, context);
  // A refund recorded FAILED that WeChat Pay made after all is recorded (recordSuccessAfterFailure).
  const succeededAfterFailure = stored.status === 'FAILED' && notice.status === 'SUCCESS';
  if (stored.status !== 'PROCESSING' && !succeededAfterFailure) {
    if (stored.status !== notice.status)
      logger.warn('refund callback disagrees with the refund as recorded; kept as recorded', { ...context, recorded: stored.status });
    countMetric('DuplicateCallbacks');
    return accepted('ALREADY_RECORDED');
  }
  const after = await recordReportedEnd(order.outTradeNo, notice.outRefundNo, settlement, source, ctx);
  if (after?.status !== notice.status)
    logger.warn('refund callback found the refund ended otherwise', { ...context, recorded: after?.status });
  const outcome =
    succeededAfterFailure && after?.status === 'SUCCESS' ? 'REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED' : `REFUND_${notice.status}`;
  return accepted(outcome);
}

/** A refund WeChat Pay made for a known order without this backend asking: recorded and flagged. */
async function recordExternal(
  order: Order,
  notice: NotifiedRefund,
  settlement: RefundSettlement,
  source: ReviewFlag['source'],
  context: Record<string, unknown>,
  ctx: OrdersContext,
): Promise<NotificationOutcome> {
  if (order.status !== 'PAID' && order.status !== 'REFUNDED')
    return refuse('ORDER_NOT_PAID', `order ${order.outTradeNo} is ${order.status}: it has no payment to refund`, context);
  const refund: OrderRefund = {
    outRefundNo: notice.outRefundNo,
    refundFee: notice.refundFee,
    status: notice.status,
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
    if (refundOf(current, notice.outRefundNo)) return accepted('ALREADY_RECORDED');
    const after = await ctx.refunds.recordExternal(current, refund, flag);
    if (after) {
      logger.error('refund made outside this backend recorded; needs review', {
        ...context,
        refundFee: notice.refundFee,
        requestedVia: notice.requestedVia,
      });
      countMetric('PaymentsFlagged');
      return accepted('EXTERNAL_REFUND_FLAGGED');
    }
    current = await reread(order.outTradeNo, ctx);
  }
  throw new OrderStoreError(`order ${order.outTradeNo} kept changing while recording an external refund`, undefined);
}
