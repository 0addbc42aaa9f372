import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { getRefund } from '../lib/orders/refunds';
import { ordersContext } from '../lib/runtime';

/** GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}: the refund as it stands (merchant's server only). */
export const handler = merchantRoute(async (event) =>
  json(200, await getRefund(event.pathParameters?.outTradeNo ?? '', event.pathParameters?.outRefundNo ?? '', await ordersContext())),
);
