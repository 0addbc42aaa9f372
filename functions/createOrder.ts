import { clientIp, json, jsonBody, verifiedOpenid } from '../lib/http/api';
import { apiRoute } from '../lib/http/routes';
import { createOrder } from '../lib/orders/create';
import { parseCreateOrderRequest } from '../lib/orders/create-request';
import { ordersContext } from '../lib/runtime';

/** POST /orders: store a pending order, call unifiedorder, answer what the frontend needs to pay. */
export const handler = apiRoute(async (event) => {
  const request = parseCreateOrderRequest(jsonBody(event), { clientIp: clientIp(event), verifiedOpenid: verifiedOpenid(event) });
  const { replayed, ...body } = await createOrder(request, await ordersContext());
  return json(replayed ? 200 : 201, body);
});
