import { json } from '../lib/http/responses';
import { apiRoute } from '../lib/http/routes';
import { followOrder } from '../lib/orders/query';
import { ordersContext } from '../lib/runtime';

/** GET /orders/{outTradeNo}: the order's state, asking WeChat Pay first while it is pending. */
export const handler = apiRoute(async (event) =>
  json(200, await followOrder(event.pathParameters?.outTradeNo ?? '', await ordersContext())),
);
