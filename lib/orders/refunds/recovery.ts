/** Recovery of PROCESSING refunds, through the sparse open-refunds index. */
import { logger } from '../../log';
import { countMetric } from '../../metrics';
import type { OrdersContext } from '../context';
import { GatewayError, type QueriedRefund } from '../gateway';
import type { Order, OrderRefund } from '../model';
import { walkDue } from '../../store/sharded-index';
import type { RefundSettlement } from '../store';
import { sendRefund } from './request';
import { nextRefundCheck } from './schedule';
import { isAboutOrder, recordReportedEnd, refuseAnswerAboutAnotherOrder } from './settle';

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
    const result = await ctx.gatewayFor(order).queryRefund(refund.outRefundNo);
    if (!isAboutOrder(order, result)) {
      summary.refundErrors += 1;
      await refuseAnswerAboutAnotherOrder(order, refund, result, 'recovery', ctx);
      return;
    }
    queried = result.refunds.find((candidate) => candidate.outRefundNo === refund.outRefundNo);
  } catch (error) {
    if (!(error instanceof GatewayError && error.failure === 'REFUND_NOT_FOUND')) throw error;
    // Reserved here, never received there (a crash, a timeout before it arrived, FREQUENCY_LIMITED): send it again.
    summary.refundsResent += 1;
    countMetric('RefundsResent');
    const view = await sendRefund(order, refund, 'recovery', ctx);
    if (view.status !== 'PROCESSING') summary.refundsSettled += 1;
    return;
  }
  if (!queried || !FINAL_REFUND_STATUSES.has(queried.status)) return;
  if (queried.refundFee !== refund.refundFee) {
    logger.error('refundquery reports another amount for a refund; left for review', {
      outTradeNo: order.outTradeNo,
      outRefundNo: refund.outRefundNo,
      refundFee: queried.refundFee,
    });
    summary.refundErrors += 1;
    return;
  }
  const at = ctx.now().toISOString();
  await recordReportedEnd(
    order.outTradeNo,
    refund.outRefundNo,
    {
      status: queried.status as RefundSettlement['status'],
      at,
      refundId: queried.refundId,
      ...(queried.status === 'SUCCESS' ? { succeededAt: queried.succeededAt ?? at } : {}),
    },
    'recovery',
    ctx,
  );
  summary.refundsSettled += 1;
}

async function recoverOrderRefunds(order: Order, ctx: OrdersContext, summary: RefundRecoverySummary): Promise<void> {
  const now = ctx.now().getTime();
  const checkCount = (order.refundCheckCount ?? 0) + 1;
  // The lease, as for pending orders: of two runs, one moves the check; a run that dies leaves it due later.
  if (!(await ctx.refunds.scheduleCheck(order.outTradeNo, order.refundCheckAt as number, nextRefundCheck(checkCount, now), checkCount)))
    return;
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
        code: error instanceof GatewayError ? error.code : undefined,
        error: error instanceof GatewayError ? undefined : error,
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
  summary.stoppedEarly = await walkDue(ctx.refunds.due(now, options.pageSize ?? 100), {
    deadline: options.deadline,
    concurrency: options.concurrency ?? 4,
    handle: async (order) => {
      try {
        await recoverOrderRefunds(order, ctx, summary);
      } catch (error) {
        summary.refundErrors += 1;
        logger.warn("recovery could not take up an order's refunds; checked again later", { outTradeNo: order.outTradeNo, error });
      }
    },
  });
  return summary;
}
