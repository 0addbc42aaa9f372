import type { Context, ScheduledEvent } from 'aws-lambda';
import { lambdaHandler, workDeadline } from '../lib/handler';
import { logger } from '../lib/log';
import { recoverOrders } from '../lib/orders/recovery';
import { ordersContext } from '../lib/runtime';

/** The recovery schedule: records payments whose callback never came and closes expired orders. */
export const handler = lambdaHandler(async (_event: ScheduledEvent, context?: Context) => {
  // Stops taking up orders 15 s before Lambda's deadline; 45 s in all without a Lambda context.
  const summary = await recoverOrders(await ordersContext(), { deadline: workDeadline(context, 15_000, 45_000) });
  logger.info('recovery run', { ...summary });
  return summary;
});
