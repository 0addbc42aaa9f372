import type { AppConfig } from '../config';
import { createWechatPayClient, type WechatPayClient } from '../wechatpay/client';
import { createDocumentClient, OrderStore } from './store';

/** What the order operations need; built once per container, replaced in tests. */
export interface OrdersContext {
  config: AppConfig;
  store: OrderStore;
  wechatPay: WechatPayClient;
  now: () => Date;
}

export function createOrdersContext(config: AppConfig): OrdersContext {
  return {
    config,
    store: new OrderStore(createDocumentClient(config.dynamoEndpoint), config.ordersTable),
    wechatPay: createWechatPayClient({
      appId: config.appId,
      mchId: config.mchId,
      apiKey: config.apiKey,
      baseUrl: config.baseUrl,
      // Three attempts of 3 s with backoff must finish inside the functions' 15 s timeout.
      timeoutMs: 3_000,
    }),
    now: () => new Date(),
  };
}
