import type { AppConfig } from '../config';
import { ConfigError } from '../config';
import { CatalogStore } from '../catalog/store';
import { OutboxStore } from '../events/outbox-store';
import { createEventPublisher, type EventPublisher } from '../events/publisher';
import { createDocumentClient } from '../store/dynamo';
import { ORDER_EVENTS, type TransitionListener } from './events';
import type { BillSource, GatewayOrder, PaymentGateway } from './gateway';
import type { Order } from './model';
import { ClaimStore, OrderStore, RefundStore, ReportStore } from './store';

/** What the order operations need; built once per container, replaced in tests. */
export interface OrdersContext {
  config: AppConfig;
  /** The orders (lib/orders/store/: each record of the orders table has its store, all over one client). */
  store: OrderStore;
  /** The refunds on orders, and the open-refunds index. */
  refunds: RefundStore;
  /** The idempotency keys of order and refund requests. */
  claims: ClaimStore;
  /** The reconciliation reports. */
  reports: ReportStore;
  /**
   * WeChat Pay for an order: under the app it was made with (the default app for orders made before
   * apps were recorded), signed as it was made. lib/orders/gateway.ts is the port; each protocol
   * generation an adapter.
   */
  gatewayFor(order: GatewayOrder): PaymentGateway;
  /** The merchant's trade bills (the daily reconciliation). */
  bills: BillSource;
  /** The catalog, for the functions that price orders (CATALOG_TABLE); a ConfigError elsewhere. */
  catalog: () => CatalogStore;
  /** Publishes the events of transitions (the store hands it each transition it wrote). */
  events: EventPublisher<Order>;
  /** The outbox index and its writes, for the recovery schedule's sweep. */
  outbox: OutboxStore<Order>;
  now: () => Date;
}

export function createOrdersContext(
  config: AppConfig,
  gateways: { gatewayFor: (order: GatewayOrder) => PaymentGateway; bills: BillSource },
): OrdersContext {
  const db = createDocumentClient(config.dynamoEndpoint);
  const catalog = config.catalogTable ? new CatalogStore(db, config.catalogTable) : undefined;
  const events = createEventPublisher(ORDER_EVENTS, { busName: config.eventBusName, endpoint: config.eventBridgeEndpoint });
  // Each transition's events are published as soon as its write succeeded (docs/internals/architecture.md: The outbox).
  const publish: TransitionListener = async (order, entries) => {
    await events.publish(entries.map((entry) => ({ item: order, entry })));
  };
  return {
    config,
    store: new OrderStore(db, config.ordersTable, publish),
    refunds: new RefundStore(db, config.ordersTable, publish),
    claims: new ClaimStore(db, config.ordersTable),
    reports: new ReportStore(db, config.ordersTable),
    events,
    outbox: new OutboxStore(db, config.ordersTable, ORDER_EVENTS),
    catalog: () => {
      if (!catalog) throw new ConfigError('CATALOG_TABLE is not set');
      return catalog;
    },
    gatewayFor: gateways.gatewayFor,
    bills: gateways.bills,
    now: () => new Date(),
  };
}
