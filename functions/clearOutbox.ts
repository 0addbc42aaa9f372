import { lambdaHandler } from '../lib/handler';
import { clearDelivered, type DeliveredEvent } from '../lib/events/clear';
import { logger } from '../lib/log';
import { outboxStore } from '../lib/runtime';

/**
 * EventBridge hands back every order event published on the stage's bus: each is removed from its
 * order's outbox, so the recovery schedule's sweep never publishes it again. A failure is thrown, for
 * EventBridge to deliver it again (or, failing that, the sweep to publish it again).
 */
export const handler = lambdaHandler(async (event: DeliveredEvent) => {
  const outcome = await clearDelivered(event, outboxStore());
  if (outcome === 'ignored')
    logger.warn('not an order event of this stage; nothing cleared', { source: event.source, detailType: event['detail-type'] });
  return outcome;
});
