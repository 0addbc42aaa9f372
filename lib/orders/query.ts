import { OUT_TRADE_NO_PATTERN } from '../wechatpay/ids';
import { logger } from '../log';
import type { OrdersContext } from './context';
import { InvalidOrderRequestError, OrderNotFoundError } from './errors';
import { GatewayError } from './gateway';
import { toMerchantView, toView, type MerchantOrderView, type Order, type OrderView } from './model';
import { applyQueryResult } from './settle';

/** However many clients poll one order, WeChat Pay is asked about it at most once per interval. */
export const QUERY_INTERVAL_MS = 3_000;

/** The order as it stands, asking WeChat Pay first while it is PENDING. */
async function currentOrder(outTradeNo: string, ctx: OrdersContext): Promise<Order> {
  if (!OUT_TRADE_NO_PATTERN.test(outTradeNo)) {
    throw new InvalidOrderRequestError('outTradeNo must be 6 to 32 characters of [0-9A-Za-z_-]', 'outTradeNo');
  }
  const order = await ctx.store.get(outTradeNo);
  if (!order) throw new OrderNotFoundError(outTradeNo);
  return refreshPending(order, ctx);
}

/**
 * Answers an order for a frontend following it, nothing personal in it. While it is PENDING this
 * asks WeChat Pay first, so a late or lost callback never leaves a paid user waiting.
 */
export async function followOrder(outTradeNo: string, ctx: OrdersContext): Promise<OrderView> {
  return toView(await currentOrder(outTradeNo, ctx));
}

/** Answers the whole order for the merchant's server (items, app, openid, review flags). */
export async function merchantOrder(outTradeNo: string, ctx: OrdersContext): Promise<MerchantOrderView> {
  return toMerchantView(await currentOrder(outTradeNo, ctx));
}

async function refreshPending(order: Order, ctx: OrdersContext): Promise<Order> {
  // Without a prepay id WeChat Pay never accepted the order: there is nothing to ask about.
  if (order.status !== 'PENDING' || !order.prepayId) return order;
  if (!(await ctx.store.claimQuerySlot(order.outTradeNo, ctx.now().getTime(), QUERY_INTERVAL_MS))) return order;
  try {
    const result = await ctx.gatewayFor(order).queryPayment(order.outTradeNo);
    return await applyQueryResult(order, result, 'query', ctx);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    // The stored state is still a true answer; recovery will ask again.
    logger.warn('orderquery failed while following an order', { outTradeNo: order.outTradeNo, code: error.code });
    return order;
  }
}
