import { jsonBody } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { checkBillDate, reconcileDay } from '../lib/orders/reconcile';
import { ordersContext } from '../lib/runtime';

/** POST /merchant/reconciliations {billDate}: reconcile one day now and answer its report. */
export const handler = merchantRoute(async (event) => {
  const ctx = await ordersContext();
  const body = jsonBody(event) as { billDate?: unknown } | null;
  return json(200, await reconcileDay(checkBillDate(body?.billDate, ctx.now()), ctx));
});
