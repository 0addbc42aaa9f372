import { randomUUID } from 'node:crypto';
import { vi } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import type { OrdersContext } from '../../lib/orders/context';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../dev/local/eventbridge';
import type * as ApiModule from '../support/api';
import { createCatalogTable, createOrdersTable } from '../support/dynalite';
import type { TestStack } from '../support/stack';
import type * as GetReconciliationModule from '../../functions/getReconciliation';
import type * as RecoverOrdersModule from '../../functions/recoverOrders';
import type * as RunReconciliationModule from '../../functions/runReconciliation';
import type * as RefundsModule from '../../lib/orders/refunds';
import type * as RuntimeModule from '../../lib/runtime';
import { startCallbackCapture, type CallbackCapture } from './capture';

/**
 * One deployment of the product as the model drives it: the handlers (through test/support/api.ts,
 * as API Gateway and WeChat Pay would call them), the schedules' handlers, and its orders context.
 */
export interface Product {
  api: typeof ApiModule;
  recoverOrders: (typeof RecoverOrdersModule)['handler'];
  runReconciliation: (typeof RunReconciliationModule)['handler'];
  getReconciliation: (typeof GetReconciliationModule)['handler'];
  /** The product's refund module, for the numbers it derives (a platform refund reuses one). */
  refunds: typeof RefundsModule;
  ctx: OrdersContext;
}

/** The product modules, as the current module registry has them (loaded on first import). */
async function loadProduct(): Promise<Omit<Product, 'ctx'> & { runtime: typeof RuntimeModule }> {
  return {
    api: await import('../support/api'),
    recoverOrders: (await import('../../functions/recoverOrders')).handler,
    runReconciliation: (await import('../../functions/runReconciliation')).handler,
    getReconciliation: (await import('../../functions/getReconciliation')).handler,
    refunds: await import('../../lib/orders/refunds'),
    runtime: await import('../../lib/runtime'),
  };
}

/** The test stack's own deployment (A): the handlers the stack's env configured. */
export async function firstDeployment(): Promise<Product> {
  const { runtime, ...product } = await loadProduct();
  return { ...product, ctx: await runtime.ordersContext() };
}

export interface SecondDeployment {
  product: Product;
  capture: CallbackCapture;
  /** Its own EventBridge bus (another stage's), whose rule hands every event to its own clearOutbox. */
  events: RunningEventBridge;
  table: string;
  close(): Promise<void>;
}

/** B's bus: another stage's. */
const SECOND_BUS = 'wechatpay-test-b';

/**
 * A second deployment (B) of the product on the same WeChat Pay merchant as the test stack's (same
 * mch_id, apps, API key and client certificate, the same emulator): another orders table and catalog
 * table in the same dynalite, its own notify URLs (its own callback capture) and its own bus.
 *
 * A deployment is a set of Lambda containers that read their settings from the environment once: B
 * is a fresh copy of every product module (`vi.resetModules`, then the same imports), loaded while
 * the environment holds B's settings, so that its `ordersContext()` and its table stores are built
 * for B, exactly as a container of B would build them; the environment is then given back to A. B
 * runs the very handlers A runs, with nothing of the product replaced. (A failure to build the
 * context is not cached by lib/runtime.ts, so it is built here, before anything can fail.)
 */
export async function startSecondDeployment(stack: TestStack, catalog: Record<string, number>): Promise<SecondDeployment> {
  const table = `orders-b-${randomUUID().slice(0, 8)}`;
  const catalogTable = `catalog-b-${randomUUID().slice(0, 8)}`;
  await createOrdersTable(stack.dynamoEndpoint, table);
  await createCatalogTable(stack.dynamoEndpoint, catalogTable);
  const capture = await startCallbackCapture(TEST_MERCHANT.apiKey);
  let clearOutbox: ((event: DeliveredEvent) => Promise<unknown>) | undefined;
  const events = await startEventBridge({
    busName: SECOND_BUS,
    log: () => {},
    awaitTargets: true,
    targets: [(event) => clearOutbox?.(event)],
  });
  const settings: Record<string, string> = {
    ORDERS_TABLE: table,
    CATALOG_TABLE: catalogTable,
    WECHATPAY_NOTIFY_URL: capture.notifyUrl,
    WECHATPAY_REFUND_NOTIFY_URL: capture.refundNotifyUrl,
    EVENT_BUS_NAME: SECOND_BUS,
    EVENTBRIDGE_ENDPOINT: events.url,
  };
  const saved = Object.fromEntries(Object.keys(settings).map((name) => [name, process.env[name]]));
  vi.resetModules();
  Object.assign(process.env, settings);
  let product: Product;
  try {
    const { runtime, ...modules } = await loadProduct();
    product = { ...modules, ctx: await runtime.ordersContext() };
    // The stores of one table each are built on first use too: built now, for B's tables.
    runtime.reportStore();
    runtime.outboxStore();
    runtime.catalogStore();
    clearOutbox = (await import('../../functions/clearOutbox')).handler;
    for (const [sku, priceFen] of Object.entries(catalog)) {
      const put = await modules.api.putProduct(sku, { name: sku, priceFen });
      if (put.status >= 300) throw new Error(`B's catalog refused ${sku}: ${put.raw}`);
    }
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  if (product.ctx.config.ordersTable !== table || product.ctx.config.notifyUrl !== capture.notifyUrl)
    throw new Error('the second deployment was not built with its own settings');
  return {
    product,
    capture,
    events,
    table,
    close: async () => {
      await events.close();
      await capture.close();
    },
  };
}
