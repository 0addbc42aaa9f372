/**
 * One line of the day's bill settled against what this deployment recorded (the daily
 * reconciliation, reconcile.ts): a payment the day's index did not show, a successful refund. What
 * the bill alone proves is recorded through the same transition as its callback, once WeChat Pay's
 * signed answer confirms it; the rest is reported.
 */
import { fromBeijingTimestamp } from '../wechatpay/time';
import { logger } from '../log';
import { countMetric } from '../metrics';
import type { OrdersContext } from './context';
import { GatewayError, type BillLine, type PaymentState } from './gateway';
import { refundOf, reviewFlagOf, type Order, type ReviewFlag } from './model';
import { recordBilledRefund } from './refunds';
import type { ReconciliationItem } from './reconciliation-report';
import { PAID_STATES, recordPayment } from './settle';

/** `yyyy-MM-dd HH:mm:ss` (the bill's trade time, Beijing) as ISO. */
function billTime(text: string): string | undefined {
  return fromBeijingTimestamp(text.replace(/[-: ]/g, ''))?.toISOString();
}

/** Review flags of a bill's payment that was never recorded as its order's payment: reported on every run. */
const REFUSED_PAYMENT_FLAGS: ReadonlySet<ReviewFlag['reason']> = new Set(['AMOUNT_MISMATCH', 'APP_MISMATCH']);

/** The item of a bill's payment that was not recorded as its order's: `reason`, the outcome that refused it (or its flag's reason). */
function refusedPayment(row: BillLine, order: Order, reason: string): ReconciliationItem {
  const base = { outTradeNo: row.outTradeNo, transactionId: row.transactionId, billFen: row.totalFeeFen, recordedFen: order.totalFee };
  if (reason === 'APP_MISMATCH') {
    return {
      ...base,
      kind: 'APP_MISMATCH',
      note: `paid under appid ${row.appId}, but the order was made under another app (${order.appId ?? 'the default app'}): not recorded as its payment, flagged for review; find who made this payment in the merchant platform`,
    };
  }
  return { ...base, kind: 'NOT_RECORDED', note: `the bill's amount differs from the order's (${reason}): check the order with WeChat Pay` };
}

/**
 * The bill is the one document WeChat Pay does not sign: before a payment read from it is recorded,
 * WeChat Pay's signed orderquery must show the same payment of this order (paid, its transaction id,
 * its amount). Answers when it was paid, or the item that reports why it was not recorded.
 */
async function confirmBillPayment(
  row: BillLine,
  order: Order,
  ctx: OrdersContext,
): Promise<string | Pick<ReconciliationItem, 'kind' | 'note'>> {
  let answer: PaymentState;
  try {
    answer = await ctx.gatewayFor(order).queryPayment(order.outTradeNo);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (error.failure !== 'ORDER_NOT_FOUND') {
      logger.warn('a payment of the bill could not be confirmed with orderquery; left for the next run', {
        outTradeNo: order.outTradeNo,
        transactionId: row.transactionId,
        code: error.code,
      });
      return {
        kind: 'UNCONFIRMED',
        note: `WeChat Pay could not be asked to confirm this payment (${error.code}): not recorded yet; run this day's reconciliation again`,
      };
    }
    answer = { tradeState: 'ORDERNOTEXIST' };
  }
  if (PAID_STATES.has(answer.tradeState) && answer.transactionId === row.transactionId && answer.totalFee === row.totalFeeFen) {
    return answer.paidAt ?? ctx.now().toISOString();
  }
  logger.error('a payment of the bill is not confirmed by orderquery; not recorded', {
    outTradeNo: order.outTradeNo,
    transactionId: row.transactionId,
    tradeState: answer.tradeState,
    queriedTransactionId: answer.transactionId,
  });
  const otherTransaction =
    answer.transactionId && answer.transactionId !== row.transactionId ? `, transaction ${answer.transactionId}` : '';
  return {
    kind: 'NOT_CONFIRMED',
    note: `the bill shows this payment, but WeChat Pay's signed orderquery does not (trade_state ${answer.tradeState}${otherTransaction}): not recorded; check the transaction in the merchant platform`,
  };
}

/** One payment of the bill that the day's index did not show as recorded; `order`, its order as just read (none: not ours). */
export async function settleBillPayment(
  row: BillLine,
  order: Order | undefined,
  ctx: OrdersContext,
): Promise<ReconciliationItem | 'matched'> {
  const base = { outTradeNo: row.outTradeNo, transactionId: row.transactionId, billFen: row.totalFeeFen };
  if (!order)
    return {
      ...base,
      kind: 'UNKNOWN_ORDER',
      note: 'paid at WeChat Pay for an order this backend never made: find it in the merchant platform',
    };
  // Already recorded under this transaction (paid on another day by our clock, or recorded and flagged): nothing to do.
  if (order.transactionId === row.transactionId) return 'matched';
  const flagged = reviewFlagOf(order, row.transactionId);
  if (flagged) return REFUSED_PAYMENT_FLAGS.has(flagged.reason) ? refusedPayment(row, order, flagged.reason) : 'matched';
  // Another app's payment is never recorded as the order's (recordPayment flags it): nothing to confirm.
  let paidAt = billTime(row.tradeTime) ?? ctx.now().toISOString();
  if (row.appId === (order.appId ?? ctx.config.appId)) {
    const confirmed = await confirmBillPayment(row, order, ctx);
    if (typeof confirmed !== 'string') return { ...base, recordedFen: order.totalFee, ...confirmed };
    paidAt = confirmed;
  }
  const outcome = await recordPayment(
    {
      outTradeNo: row.outTradeNo,
      transactionId: row.transactionId,
      totalFee: row.totalFeeFen,
      paidAt,
      source: 'reconciliation',
      // The bill's appid must be the order's, as a callback's must: another app's payment is not this order's.
      appId: row.appId,
      defaultApp: row.appId === ctx.config.appId,
    },
    ctx,
  );
  if (outcome.outcome === 'PAID' || outcome.outcome === 'FLAGGED') {
    const flaggedNow = outcome.outcome === 'FLAGGED' ? ` and flagged for review (${outcome.flag.reason})` : '';
    return {
      ...base,
      recordedFen: order.totalFee,
      kind: 'REPAIRED',
      note: `recorded from the bill, confirmed by WeChat Pay's orderquery${flaggedNow}: its callback never arrived`,
    };
  }
  if (outcome.outcome === 'ALREADY_PAID') return 'matched';
  if (outcome.outcome === 'APP_MISMATCH') {
    // Money moved under this out_trade_no, but not for this order: flagged, so a person sees it on the order.
    const flag: ReviewFlag = {
      reason: 'APP_MISMATCH',
      at: ctx.now().toISOString(),
      source: 'reconciliation',
      transactionId: row.transactionId,
      totalFee: row.totalFeeFen,
      appId: row.appId,
    };
    await ctx.store.addReviewFlag(outcome.order, flag);
    logger.error('payment needs review', {
      outTradeNo: row.outTradeNo,
      source: 'reconciliation',
      outcome: outcome.outcome,
      review: flag.reason,
      billAppId: row.appId,
      orderAppId: order.appId,
    });
    countMetric('PaymentsFlagged');
    return refusedPayment(row, order, 'APP_MISMATCH');
  }
  return refusedPayment(row, order, outcome.outcome);
}

/**
 * One successful refund of the bill: matched when recorded SUCCESS with its amount, else recorded as
 * its callback would be. `order`, its order as just read (none: not ours, nothing to record).
 */
export async function settleBillRefund(
  row: BillLine,
  order: Order | undefined,
  ctx: OrdersContext,
): Promise<ReconciliationItem | 'matched'> {
  const base = {
    outTradeNo: row.outTradeNo,
    transactionId: row.transactionId,
    outRefundNo: row.outRefundNo,
    billFen: row.appliedRefundFeeFen,
  };
  const recorded = refundOf(order, row.outRefundNo);
  if (recorded?.status === 'SUCCESS' && recorded.refundFee === row.appliedRefundFeeFen) return 'matched';
  const outcome = !order
    ? 'UNKNOWN_ORDER'
    : await recordBilledRefund(
        {
          transactionId: row.transactionId,
          outTradeNo: row.outTradeNo,
          refundId: row.refundId,
          outRefundNo: row.outRefundNo,
          refundFee: row.appliedRefundFeeFen,
          settlementRefundFee: row.refundFeeFen,
        },
        ctx,
      );
  const flagged: Record<string, string> = {
    REFUND_SUCCESS: '',
    EXTERNAL_REFUND_FLAGGED: ' and flagged for review: it was made outside this backend',
    REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED:
      ' and flagged for review: it was recorded FAILED (WeChat Pay had refused it), yet WeChat Pay made it; check whether the payer was refunded by other means too',
  };
  if (Object.hasOwn(flagged, outcome)) {
    return { ...base, kind: 'REFUND_REPAIRED', note: `refund ${row.outRefundNo} recorded from the bill${flagged[outcome]}` };
  }
  return {
    ...base,
    kind: 'REFUND_MISMATCH',
    note: `refund ${row.outRefundNo} is in the bill as SUCCESS but is recorded otherwise here (${outcome}): check it in the merchant platform`,
  };
}
