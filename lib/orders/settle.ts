import { logger } from '../log';
import { countMetric, logAndCount } from '../metrics';
import type { OrdersContext } from './context';
import { OrderStoreError } from './errors';
import { GatewayError, type PaymentState } from './gateway';
import type { Order, PaymentOutcome, PaymentReport, PaymentSource, ReviewFlag } from './model';
import type { OrderStore } from './store';

/**
 * Records a payment exactly once. The first report costs one conditional write whose condition also
 * checks the amount (and the sign type and the app, for a callback); when it fails, a consistent read tells a
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
  if (report.appId && (order.appId ?? (report.defaultApp ? report.appId : undefined)) !== report.appId)
    return { outcome: 'APP_MISMATCH', order };
  // A refunded order was paid by this transaction too.
  const paid = order.status === 'PAID' || order.status === 'REFUNDED';
  if (paid && order.transactionId === report.transactionId) {
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
  if (paid) {
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
      // The one line of a payment recorded: the log entry and the PaymentsRecorded metric.
      logAndCount('order paid', { ...context, transition: 'PENDING->PAID', totalFee: report.totalFee }, 'PaymentsRecorded', {
        path: report.source,
      });
      break;
    case 'ALREADY_PAID':
      logger.info('payment already recorded', context);
      break;
    case 'FLAGGED':
    case 'AMOUNT_MISMATCH':
      logger.error('payment needs review', {
        ...context,
        review: result.flag.reason,
        totalFee: report.totalFee,
        orderTotalFee: result.order.totalFee,
      });
      countMetric(result.outcome === 'AMOUNT_MISMATCH' ? 'AmountMismatches' : 'PaymentsFlagged');
      break;
    default:
      logger.warn('payment not recorded', context);
  }
  return result;
}

/** trade_state values that mean the user paid. REFUND: paid, then refunded (outside this order's flow). */
export const PAID_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'REFUND']);

/** trade_state values that settle a pending order one way or the other. */
export function isSettlingTradeState(tradeState: string): boolean {
  return PAID_STATES.has(tradeState) || tradeState === 'CLOSED' || tradeState === 'REVOKED';
}

/**
 * Applies what orderquery said of a pending order: a payment is recorded through the same
 * transition as a callback; CLOSED/REVOKED close it. Answers the order as it now stands.
 */
export async function applyQueryResult(order: Order, result: PaymentState, source: PaymentSource, ctx: OrdersContext): Promise<Order> {
  if (PAID_STATES.has(result.tradeState) && result.transactionId && result.totalFee !== undefined) {
    const outcome = await recordPayment(
      {
        outTradeNo: order.outTradeNo,
        transactionId: result.transactionId,
        totalFee: result.totalFee,
        paidAt: result.paidAt ?? ctx.now().toISOString(),
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

/** What asking WeChat Pay did to a pending order. */
export type Settlement =
  /** The payment was recorded by this call. */
  | 'repaired'
  /** Closed: expired and confirmed unpaid. */
  | 'closed'
  /** Still pending (not expired yet, or another path settled it first): `order` says which. */
  | 'left';

async function closeExpired(
  order: Order,
  source: PaymentSource,
  reason: string,
  ctx: OrdersContext,
): Promise<{ settlement: Settlement; order: Order }> {
  const at = ctx.now().toISOString();
  if (await ctx.store.markClosed(order.outTradeNo, { reason, at })) {
    logger.info('order closed', { outTradeNo: order.outTradeNo, transition: 'PENDING->CLOSED', source, reason });
    return { settlement: 'closed', order: { ...order, status: 'CLOSED', closedAt: at, closeReason: reason } };
  }
  return { settlement: 'left', order: (await ctx.store.get(order.outTradeNo)) ?? order };
}

async function queryOrNotExist(order: Order, ctx: OrdersContext): Promise<PaymentState | 'ORDER_NOT_FOUND'> {
  try {
    return await ctx.gatewayFor(order).queryPayment(order.outTradeNo);
  } catch (error) {
    if (error instanceof GatewayError && error.failure === 'ORDER_NOT_FOUND') return 'ORDER_NOT_FOUND';
    throw error;
  }
}

async function settleFromQuery(order: Order, result: PaymentState, source: PaymentSource, ctx: OrdersContext) {
  const after = await applyQueryResult(order, result, source, ctx);
  const settlement: Settlement =
    after.status === 'PAID' && after.paidVia === source && after.transactionId === result.transactionId
      ? 'repaired'
      : after.status === 'CLOSED'
        ? 'closed'
        : 'left';
  return { settlement, order: after };
}

/**
 * Asks WeChat Pay about a pending order and records what it learns: a payment through the same
 * transition as a callback; past expiry, an unpaid order is closed with `closeorder` first, so an
 * order is only ever called expired once WeChat Pay confirms it was not paid. WeChat Pay errors
 * are thrown: the order stays pending and is asked about again later.
 */
export async function settleWithWechatPay(
  order: Order,
  source: PaymentSource,
  ctx: OrdersContext,
): Promise<{ settlement: Settlement; order: Order }> {
  const expired = ctx.now().getTime() >= Date.parse(order.expiresAt);
  const result = await queryOrNotExist(order, ctx);
  if (result === 'ORDER_NOT_FOUND') {
    // The unified order never reached WeChat Pay: nothing can be paid, so it closes once expired.
    return expired ? closeExpired(order, source, 'expired; never reached WeChat Pay', ctx) : { settlement: 'left', order };
  }
  if (isSettlingTradeState(result.tradeState)) return settleFromQuery(order, result, source, ctx);
  // NOTPAY, USERPAYING and the like: WeChat Pay does not reliably enforce time_expire, so we do.
  if (!expired) return { settlement: 'left', order };
  try {
    await ctx.gatewayFor(order).closePayment(order.outTradeNo);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (error.failure === 'ORDER_PAID') {
      // Paid after all, between the query and the close: record it.
      const paid = await queryOrNotExist(order, ctx);
      if (paid !== 'ORDER_NOT_FOUND' && isSettlingTradeState(paid.tradeState)) return settleFromQuery(order, paid, source, ctx);
      return { settlement: 'left', order };
    }
    if (error.failure !== 'ORDER_CLOSED') throw error;
  }
  return closeExpired(order, source, 'expired unpaid; closed with WeChat Pay', ctx);
}
