import type { AppConfig } from '../config';
import { ConfigError, loadClientCertificate } from '../config';
import { CatalogStore } from '../catalog/store';
import { OutboxStore } from '../events/outbox-store';
import { createEventPublisher, type EventPublisher } from '../events/publisher';
import { createWechatPayClient, type WechatPayClient } from '../wechatpay/client';
import { createDocumentClient } from '../store/dynamo';
import { ORDER_EVENTS } from './events';
import type { Order } from './model';
import { OrderStore } from './store';

/** What the order operations need; built once per container, replaced in tests. */
export interface OrdersContext {
  config: AppConfig;
  store: OrderStore;
  /** WeChat Pay under the default app, for calls about no order in particular. */
  wechatPay: WechatPayClient;
  /**
   * WeChat Pay under an app: an order's calls go under the app it was made with (`order.appId`;
   * the default app for orders made before apps were recorded). One client per app, made on first use.
   */
  wechatPayFor(appId: string | undefined): WechatPayClient;
  /** The catalog, for the functions that price orders (CATALOG_TABLE); a ConfigError elsewhere. */
  catalog: () => CatalogStore;
  /** Publishes the events of transitions (the store hands it each transition it wrote). */
  events: EventPublisher<Order>;
  /** The outbox index and its writes, for the recovery schedule's sweep. */
  outbox: OutboxStore<Order>;
  now: () => Date;
}

export function createOrdersContext(config: AppConfig): OrdersContext {
  const db = createDocumentClient(config.dynamoEndpoint);
  const catalog = config.catalogTable ? new CatalogStore(db, config.catalogTable) : undefined;
  const events = createEventPublisher(ORDER_EVENTS, { busName: config.eventBusName, endpoint: config.eventBridgeEndpoint });
  const clients = new Map<string, WechatPayClient>();
  const clientFor = (appId: string): WechatPayClient => {
    let client = clients.get(appId);
    if (!client) {
      client = createWechatPayClient({
        appId,
        mchId: config.mchId,
        apiKey: config.apiKey,
        baseUrl: config.baseUrl,
        // Three attempts of 3 s with backoff must finish inside the functions' 15 s timeout.
        timeoutMs: 3_000,
        // Refunds only: loaded on the first refund of the container, never at cold start.
        secapiBaseUrl: config.secapiBaseUrl,
        clientCertificate: () => loadClientCertificate(config),
      });
      clients.set(appId, client);
    }
    return client;
  };
  return {
    config,
    // Each transition's events are published as soon as its write succeeded (README: Events).
    store: new OrderStore(db, config.ordersTable, async (order, entries) => {
      await events.publish(entries.map((entry) => ({ item: order, entry })));
    }),
    events,
    outbox: new OutboxStore(db, config.ordersTable, ORDER_EVENTS),
    catalog: () => {
      if (!catalog) throw new ConfigError('CATALOG_TABLE is not set');
      return catalog;
    },
    wechatPay: clientFor(config.appId),
    wechatPayFor: (appId) => clientFor(appId ?? config.appId),
    now: () => new Date(),
  };
}
