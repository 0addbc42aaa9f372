import { CatalogStore } from './catalog/store';
import { ConfigError, loadConfig } from './config';
import { OutboxStore } from './events/outbox-store';
import { wechatPayV2Bills } from './gateways/wechatpay-v2/bills';
import { wechatPayV2Gateways } from './gateways/wechatpay-v2/gateway';
import { createOrdersContext, type OrdersContext } from './orders/context';
import { ORDER_EVENTS } from './orders/events';
import { ReportStore } from './orders/store';
import { createDocumentClient } from './store/dynamo';

let context: Promise<OrdersContext> | undefined;

/**
 * The container's orders context, built on first use (not at module load, to keep cold starts
 * short). A failure is not cached: the next request tries again, e.g. once SSM answers.
 */
export function ordersContext(): Promise<OrdersContext> {
  context ??= loadConfig().then((config) =>
    createOrdersContext(config, { gatewayFor: wechatPayV2Gateways(config), bills: wechatPayV2Bills(config) }),
  );
  context.catch(() => {
    context = undefined;
  });
  return context;
}

type Env = Record<string, string | undefined>;

/** A store of one table built once per container from its setting: no WeChat Pay settings, no API key. */
function storeOf<Store>(setting: string, build: (db: ReturnType<typeof createDocumentClient>, table: string) => Store) {
  let store: Store | undefined;
  return (env: Env = process.env): Store => {
    const table = env[setting]?.trim();
    if (!table) throw new ConfigError(`${setting} is not set`);
    store ??= build(createDocumentClient(env.DYNAMODB_ENDPOINT?.trim() || undefined), table);
    return store;
  };
}

/** The catalog store, for the functions that only edit or list the catalog. */
export const catalogStore = storeOf('CATALOG_TABLE', (db, table) => new CatalogStore(db, table));

/** The reconciliation reports alone, for the function that reads them (getReconciliation). */
export const reportStore = storeOf('ORDERS_TABLE', (db, table) => new ReportStore(db, table));

/**
 * The outbox store, for the function that confirms published events (clearOutbox): it needs the
 * orders table and nothing else.
 */
export const outboxStore = storeOf('ORDERS_TABLE', (db, table) => new OutboxStore(db, table, ORDER_EVENTS));
