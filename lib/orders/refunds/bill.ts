/** The bill's successful refunds (the daily reconciliation's repairs), recorded as their callback would be. */
import type { OrdersContext } from '../context';
import { recordRefundNotice, type NotifiedRefund } from './notify';

/**
 * A successful refund read from WeChat Pay's bill (the daily reconciliation), recorded through the
 * same path as its callback: a refund of ours ends SUCCESS, a refund made elsewhere is recorded and
 * flagged, and so is one of ours recorded FAILED. Answers what happened (`REFUND_SUCCESS`,
 * `EXTERNAL_REFUND_FLAGGED`, `REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED`, `ALREADY_RECORDED`, or why it
 * was refused).
 */
export async function recordBilledRefund(
  billed: {
    transactionId: string;
    outTradeNo: string;
    refundId: string;
    outRefundNo: string;
    refundFee: number;
    settlementRefundFee: number;
  },
  ctx: OrdersContext,
): Promise<string> {
  const order = await ctx.store.get(billed.outTradeNo);
  if (!order) return 'UNKNOWN_ORDER';
  const notice: NotifiedRefund = {
    appId: order.appId ?? ctx.config.appId,
    outTradeNo: billed.outTradeNo,
    transactionId: billed.transactionId,
    totalFee: order.totalFee,
    outRefundNo: billed.outRefundNo,
    refundId: billed.refundId,
    refundFee: billed.refundFee,
    status: 'SUCCESS',
    requestedVia: 'BILL',
  };
  const context = { outTradeNo: billed.outTradeNo, outRefundNo: billed.outRefundNo, source: 'reconciliation' };
  return (await recordRefundNotice(notice, 'reconciliation', context, ctx)).outcome;
}
