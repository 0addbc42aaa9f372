import { loadConfig } from './config';
import { createOrdersContext, type OrdersContext } from './orders/context';

let context: Promise<OrdersContext> | undefined;

/**
 * The container's orders context, built on first use (not at module load, to keep cold starts
 * short). A failure is not cached: the next request tries again, e.g. once SSM answers.
 */
export function ordersContext(): Promise<OrdersContext> {
  context ??= loadConfig().then(createOrdersContext);
  context.catch(() => {
    context = undefined;
  });
  return context;
}
