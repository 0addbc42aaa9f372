import type { OrderQueryResult } from '../wechatpay/client';
import { fromBeijingTimestamp } from '../wechatpay/time';
import { logger } from '../log';
import { countMetric, countPaymentRecorded } from '../metrics';
import type { OrdersContext } from './context';
import { OrderStoreError } from './errors';
import type { Order, PaymentOutcome, PaymentReport, PaymentSource, ReviewFlag } from './model';
import type { OrderStore } from './store';

/** When WeChat Pay says the payment happened (`time_end`, Beijing time), else now. */
export function paidAtFrom(timeEnd: string | undefined, now: Date): string {
  return (timeEnd && fromBeijingTimestamp(timeEnd)?.toISOString()) || now.toISOString();
}

/**
 * Records a payment exactly once. The first report costs one conditional write whose condition also
 * checks the amount (and the sign type, for a callback); when it fails, a consistent read tells a
 * duplicate from a mismatch. Money received always wins: a genuine payment for an order that is no
 * longer pending is recorded and flagged for review, never dropped.
 */
async function settlePayment(report: PaymentReport, store: OrderStore): Promise<PaymentOutcome> {
  const paid = await store.markPaid(report);
  if (paid) return { outcome: 'PAID', order: paid };
  return explainRefusedPayment(report, store);
}

/** What a refused payment write means: a duplicate, a mismatch, money after close, a second payment. */
async function explainRefusedPayment(report: PaymentReport, store: OrderStore, attempt = 0): Promise<PaymentOutcome> {
  const order = await store.get(report.outTradeNo);
  if (!order) return { outcome: 'UNKNOWN_ORDER' };
  if (report.signType && order.signType !== report.signType) return { outcome: 'SIGN_TYPE_MISMATCH', order };
  if (order.status === 'PAID' && order.transactionId === report.transactionId) {
    return { outcome: 'ALREADY_PAID', order };
  }
  const flagFor = (reason: ReviewFlag['reason']): ReviewFlag => ({
    reason,
    at: report.paidAt,
    source: report.source,
    transactionId: report.transactionId,
    totalFee: report.totalFee,
  });
  if (order.totalFee !== report.totalFee) {
    const flag = flagFor('AMOUNT_MISMATCH');
    return { outcome: 'AMOUNT_MISMATCH', order: await store.addReviewFlag(order, flag), flag };
  }
  if (order.status === 'PAID') {
    const flag = flagFor('SECOND_PAYMENT');
    return { outcome: 'FLAGGED', order: await store.addReviewFlag(order, flag), flag };
  }
  if (order.status === 'CLOSED' || order.status === 'FAILED') {
    const flag = flagFor(order.status === 'CLOSED' ? 'PAID_AFTER_CLOSE' : 'PAID_AFTER_FAILURE');
    const moved = await store.markPaid(report, order.status, flag);
    if (moved) return { outcome: 'FLAGGED', order: moved, flag };
  }
  // The order changed between the write and the read (another path got there first): look again.
  if (attempt >= 3) throw new OrderStoreError(`order ${report.outTradeNo} kept changing while recording a payment`, undefined);
  return explainRefusedPayment(report, store, attempt + 1);
}

/** Records a payment and logs what it meant; anomalies are errors, for a person to review. */
export async function recordPayment(report: PaymentReport, ctx: OrdersContext): Promise<PaymentOutcome> {
  const result = await settlePayment(report, ctx.store);
  const context = { outTradeNo: report.outTradeNo, source: report.source, outcome: result.outcome };
  switch (result.outcome) {
    case 'PAID':
      logger.info('order paid', { ...context, transition: 'PENDING->PAID', totalFee: report.totalFee });
      countPaymentRecorded(report.source);
      break;
    case 'ALREADY_PAID':
      logger.info('payment already recorded', context);
      break;
    case 'FLAGGED':
    case 'AMOUNT_MISMATCH':
      logger.error('payment needs review', { ...context, review: result.flag.reason, totalFee: report.totalFee, orderTotalFee: result.order.totalFee });
      countMetric(result.outcome === 'AMOUNT_MISMATCH' ? 'AmountMismatches' : 'PaymentsFlagged');
      break;
    default:
      logger.warn('payment not recorded', context);
  }
  return result;
}

/** trade_state values that mean the user paid. REFUND: paid, then refunded (outside this order's flow). */
const PAID_STATES = new Set(['SUCCESS', 'REFUND']);

/** trade_state values that settle a pending order one way or the other. */
export function isSettlingTradeState(tradeState: string): boolean {
  return PAID_STATES.has(tradeState) || tradeState === 'CLOSED' || tradeState === 'REVOKED';
}

/**
 * Applies what orderquery said of a pending order: a payment is recorded through the same
 * transition as a callback; CLOSED/REVOKED close it. Answers the order as it now stands.
 */
export async function applyQueryResult(
  order: Order,
  result: OrderQueryResult,
  source: PaymentSource,
  ctx: OrdersContext,
): Promise<Order> {
  if (PAID_STATES.has(result.tradeState) && result.transactionId && result.totalFee !== undefined) {
    const outcome = await recordPayment(
      {
        outTradeNo: order.outTradeNo,
        transactionId: result.transactionId,
        totalFee: Number(result.totalFee),
        paidAt: paidAtFrom(result.timeEnd, ctx.now()),
        source,
      },
      ctx,
    );
    return 'order' in outcome ? outcome.order : order;
  }
  if (result.tradeState === 'CLOSED' || result.tradeState === 'REVOKED') {
    const at = ctx.now().toISOString();
    if (await ctx.store.markClosed(order.outTradeNo, { reason: `WeChat Pay trade_state ${result.tradeState}`, at })) {
      logger.info('order closed', { outTradeNo: order.outTradeNo, transition: 'PENDING->CLOSED', source });
    }
    return (await ctx.store.get(order.outTradeNo)) ?? order;
  }
  return order;
}
