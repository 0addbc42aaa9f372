import { jsonBody } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { parseRefundRequest, requestRefund } from '../lib/orders/refunds';
import { ordersContext } from '../lib/runtime';

/** POST /merchant/orders/{outTradeNo}/refunds: one refund per idempotencyKey, whatever fails (merchant's server only). */
export const handler = merchantRoute(async (event) => {
  const request = parseRefundRequest(event.pathParameters?.outTradeNo ?? '', jsonBody(event));
  return json(202, await requestRefund(request, await ordersContext()));
});
