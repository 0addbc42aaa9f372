import { CatalogStore } from './catalog/store';
import { ConfigError, loadConfig } from './config';
import { createOrdersContext, type OrdersContext } from './orders/context';
import { createDocumentClient, OrderStore } from './orders/store';

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

let catalog: CatalogStore | undefined;

/**
 * The container's catalog store, for the functions that only edit or list the catalog: they need
 * no WeChat Pay settings and no API key.
 */
export function catalogStore(env: Record<string, string | undefined> = process.env): CatalogStore {
  const table = env.CATALOG_TABLE?.trim();
  if (!table) throw new ConfigError('CATALOG_TABLE is not set');
  catalog ??= new CatalogStore(createDocumentClient(env.DYNAMODB_ENDPOINT?.trim() || undefined), table);
  return catalog;
}

let orders: OrderStore | undefined;

/** The container's orders store alone, for functions that only read stored records (no WeChat Pay). */
export function orderStore(env: Record<string, string | undefined> = process.env): OrderStore {
  const table = env.ORDERS_TABLE?.trim();
  if (!table) throw new ConfigError('ORDERS_TABLE is not set');
  orders ??= new OrderStore(createDocumentClient(env.DYNAMODB_ENDPOINT?.trim() || undefined), table);
  return orders;
}
