import { lambdaHandler } from '../lib/handler';
import { reconcileDay, yesterday } from '../lib/orders/reconcile';
import { ordersContext } from '../lib/runtime';

/** The daily schedule (10:00 Beijing): yesterday's WeChat Pay bill against the payments recorded here. */
export const handler = lambdaHandler(async () => {
  const ctx = await ordersContext();
  return reconcileDay(yesterday(ctx.now()), ctx);
});
