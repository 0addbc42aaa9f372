import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { merchantOrder } from '../lib/orders/query';
import { ordersContext } from '../lib/runtime';

/** GET /merchant/orders/{outTradeNo}: the whole order, for the merchant's fulfilment and support. */
export const handler = merchantRoute(async (event) =>
  json(200, await merchantOrder(event.pathParameters?.outTradeNo ?? '', await ordersContext())),
);
