/** The bill's successful refunds (the daily reconciliation's repairs), recorded as their callback would be. */
import type { RefundNotification } from '../../wechatpay/refund-notification';
import type { OrdersContext } from '../context';
import { recordRefundNotification } from './notify';

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
