import type { Context, ScheduledEvent } from 'aws-lambda';
import { logger } from '../lib/log';
import { recoverOrders } from '../lib/orders/recovery';
import { flushMetrics } from '../lib/metrics';
import { ordersContext } from '../lib/runtime';

/** Stop taking up orders this long before Lambda's deadline, so every started call can finish. */
const SAFETY_MARGIN_MS = 15_000;
/** When run without a Lambda context (a script or a test), how long a run may take. */
const DEFAULT_BUDGET_MS = 45_000;

/** The recovery schedule: records payments whose callback never came and closes expired orders. */
export async function handler(_event: ScheduledEvent, context?: Context) {
  const budget = context?.getRemainingTimeInMillis ? context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS : DEFAULT_BUDGET_MS;
  try {
    const summary = await recoverOrders(await ordersContext(), { deadline: Date.now() + Math.max(budget, 1_000) });
    logger.info('recovery run', { ...summary });
    return summary;
  } finally {
    flushMetrics();
  }
}
