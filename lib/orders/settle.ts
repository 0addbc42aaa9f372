import type { OrderQueryResult } from '../wechatpay/client';
import { fromBeijingTimestamp } from '../wechatpay/time';
import { logger } from '../log';
import { countMetric, countPaymentRecorded } from '../metrics';
import type { OrdersContext } from './context';
import type { Order, PaymentSource } from './model';
import type { PaymentOutcome, PaymentReport } from './store';

/** When WeChat Pay says the payment happened (`time_end`, Beijing time), else now. */
export function paidAtFrom(timeEnd: string | undefined, now: Date): string {
  return (timeEnd && fromBeijingTimestamp(timeEnd)?.toISOString()) || now.toISOString();
}

/** Records a payment and logs what it meant; anomalies are errors, for a person to review. */
export async function recordPayment(report: PaymentReport, ctx: OrdersContext): Promise<PaymentOutcome> {
  const result = await ctx.store.recordPayment(report);
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
