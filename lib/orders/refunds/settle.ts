/**
 * Recording what WeChat Pay says of a refund, whoever heard it (the request's answer, the callback,
 * refundquery, the bill): a PROCESSING refund ends once; a refund recorded FAILED that WeChat Pay
 * reports SUCCESS went back after all and is recorded SUCCESS and flagged; an answer about another
 * order is never recorded.
 */
import { logger } from '../../log';
import { countMetric } from '../../metrics';
import type { OrdersContext } from '../context';
import { OrderStoreError } from '../errors';
import { refundOf, type Order, type OrderRefund, type ReviewFlag } from '../model';
import type { RefundSettlement } from '../store';

/**
 * Reads an order again after a refused conditional write; `retry` decides from it. A write refused
 * this often means the order keeps changing under it: a storage error, so the caller retries.
 */
export async function reread(outTradeNo: string, ctx: OrdersContext): Promise<Order> {
  const order = await ctx.store.get(outTradeNo);
  if (!order) throw new OrderStoreError(`order ${outTradeNo} disappeared`, undefined);
  return order;
}

export const MAX_WRITE_ATTEMPTS = 60;

/** An answer of WeChat Pay about a refund is about this order: its out_trade_no and its payment's transaction_id. */
export function isAboutOrder(order: Order, answer: { outTradeNo: string; transactionId: string }): boolean {
  return answer.outTradeNo === order.outTradeNo && answer.transactionId === order.transactionId;
}

/**
 * WeChat Pay answered about another order under this refund's out_refund_no: the number is the
 * merchant's, and another deployment or system on the same merchant id made a refund under it.
 * Nothing of the answer is recorded: the refund stays as it was (WeChat Pay never refunded this
 * order's payer under that number), and the order is flagged once for a person; logged and counted
 * every time it happens.
 */
export async function refuseAnswerAboutAnotherOrder(
  order: Order,
  refund: OrderRefund,
  answer: { outTradeNo: string; transactionId: string },
  source: ReviewFlag['source'],
  ctx: OrdersContext,
): Promise<void> {
  logger.error("WeChat Pay answered about another order's refund under this refund's out_refund_no: not recorded, flagged for review", {
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
export async function settle(
  outTradeNo: string,
  outRefundNo: string,
  settlement: RefundSettlement,
  ctx: OrdersContext,
): Promise<OrderRefund | undefined> {
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
    const order = await reread(outTradeNo, ctx);
    const refund = refundOf(order, outRefundNo);
    if (!refund) return undefined;
    if (refund.status !== 'PROCESSING') return refund;
    const after = await ctx.refunds.settle(order, outRefundNo, settlement);
    if (after) {
      const transition = `PROCESSING->${settlement.status}`;
      logger.info('refund ended', { outTradeNo, outRefundNo, transition, refundedFee: after.refundedFee ?? 0, orderStatus: after.status });
      if (after.status === 'REFUNDED' && order.status !== 'REFUNDED')
        logger.info('order refunded', { outTradeNo, transition: 'PAID->REFUNDED' });
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
export async function recordReportedEnd(
  outTradeNo: string,
  outRefundNo: string,
  settlement: RefundSettlement,
  source: ReviewFlag['source'],
  ctx: OrdersContext,
): Promise<OrderRefund | undefined> {
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
    const after = await ctx.refunds.recordSuccessAfterFailure(order, outRefundNo, settlement, flag);
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
  throw new OrderStoreError(
    `order ${outTradeNo} kept changing while recording refund ${outRefundNo}'s success after its failure`,
    undefined,
  );
}
