/** A refund as stored, for the merchant's server. */
import type { OrdersContext } from '../context';
import { InvalidOrderRequestError, RefundNotFoundError } from '../errors';
import { refundOf, toRefundView, type RefundView } from '../model';
import { checkOutTradeNo } from './request';

/** `GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}`: the refund as stored. */
export async function getRefund(outTradeNo: string, outRefundNo: string, ctx: OrdersContext): Promise<RefundView> {
  checkOutTradeNo(outTradeNo);
  if (!/^[0-9A-Za-z_\-|*@]{1,64}$/.test(outRefundNo))
    throw new InvalidOrderRequestError('outRefundNo must be 1 to 64 characters of [0-9A-Za-z_-|*@]', 'outRefundNo');
  const order = await ctx.store.get(outTradeNo);
  const refund = refundOf(order, outRefundNo);
  if (!order || !refund) throw new RefundNotFoundError(outTradeNo, outRefundNo);
  return toRefundView(order, refund);
}
