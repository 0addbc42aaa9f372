import { clientIp, errorResponse, json, jsonBody, verifiedOpenid, type ApiEvent } from '../lib/http/api';
import { createOrder } from '../lib/orders/create';
import { parseCreateOrderRequest } from '../lib/orders/create-request';
import { flushMetrics } from '../lib/metrics';
import { ordersContext } from '../lib/runtime';

/** POST /orders: store a pending order, call unifiedorder, answer what the frontend needs to pay. */
export async function handler(event: ApiEvent) {
  try {
    const request = parseCreateOrderRequest(jsonBody(event), {
      clientIp: clientIp(event),
      verifiedOpenid: verifiedOpenid(event),
    });
    const created = await createOrder(request, await ordersContext());
    const { replayed, ...body } = created;
    return json(replayed ? 200 : 201, body);
  } catch (error) {
    return errorResponse(error);
  } finally {
    flushMetrics();
  }
}
