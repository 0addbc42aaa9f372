import { clientIp, json, jsonBody, verifiedOpenid } from '../lib/http/api';
import { apiRoute } from '../lib/http/routes';
import { createFrontendOrder } from '../lib/orders/create';
import { parseFrontendOrderRequest } from '../lib/orders/create-request';
import { ordersContext } from '../lib/runtime';

/** POST /orders: a frontend orders catalog items; the amount comes from the catalog, never the caller. */
export const handler = apiRoute(async (event) => {
  const request = parseFrontendOrderRequest(jsonBody(event), { clientIp: clientIp(event), verifiedOpenid: verifiedOpenid(event) });
  const { replayed, ...body } = await createFrontendOrder(request, await ordersContext());
  return json(replayed ? 200 : 201, body);
});
