import { clientIp, jsonBody } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { authenticatePayer } from '../lib/http/payer-auth';
import { apiRoute } from '../lib/http/routes';
import { createFrontendOrder } from '../lib/orders/create';
import { parseFrontendOrderRequest } from '../lib/orders/create-request';
import { ordersContext } from '../lib/runtime';

/**
 * POST /orders: a frontend orders catalog items; the amount comes from the catalog, never the caller.
 * A payer's session token (optional) gives the app and the openid.
 */
export const handler = apiRoute(async (event) => {
  const body = jsonBody(event);
  const request = parseFrontendOrderRequest(body, { clientIp: clientIp(event), payer: await authenticatePayer(event, body) });
  const { replayed, ...created } = await createFrontendOrder(request, await ordersContext());
  return json(replayed ? 200 : 201, created);
});
