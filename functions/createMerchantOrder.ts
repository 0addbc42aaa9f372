import { clientIp, jsonBody } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { createOrder } from '../lib/orders/create';
import { parseMerchantOrderRequest } from '../lib/orders/create-request';
import { ordersContext } from '../lib/runtime';

/** POST /merchant/orders: the merchant's server orders any amount and hands `pay` to its frontend. */
export const handler = merchantRoute(async (event) => {
  const request = parseMerchantOrderRequest(jsonBody(event), { clientIp: clientIp(event) });
  const { replayed, ...body } = await createOrder(request, await ordersContext());
  return json(replayed ? 200 : 201, body);
});
