import { errorResponse, json, type ApiEvent } from '../lib/http/api';
import { followOrder } from '../lib/orders/query';
import { flushMetrics } from '../lib/metrics';
import { ordersContext } from '../lib/runtime';

/** GET /orders/{outTradeNo}: the order's state, asking WeChat Pay first while it is pending. */
export async function handler(event: ApiEvent) {
  try {
    return json(200, await followOrder(event.pathParameters?.outTradeNo ?? '', await ordersContext()));
  } catch (error) {
    return errorResponse(error);
  } finally {
    flushMetrics();
  }
}
