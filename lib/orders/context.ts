import type { AppConfig } from '../config';
import type { WechatPayClient } from '../wechatpay/client';
import { resolveOptions, type WechatPayClientOptions } from '../wechatpay/client-options';
import { createDocumentClient, OrderStore } from './store';

/** What the order operations need; built once per container, replaced in tests. */
export interface OrdersContext {
  config: AppConfig;
  store: OrderStore;
  wechatPay: WechatPayClient;
  now: () => Date;
}

/**
 * The WeChat Pay client, loaded on its first call: a callback and a GET of a settled order never
 * call WeChat Pay, and its code (the transport, the XML parser behind it) is not run for them.
 */
function wechatPayOnFirstCall(options: WechatPayClientOptions): WechatPayClient {
  // Checked now, as building the client would: a misconfigured merchant fails the context at once.
  resolveOptions(options);
  let client: Promise<WechatPayClient> | undefined;
  const loaded = () => {
    client ??= import('../wechatpay/client').then(({ createWechatPayClient }) => createWechatPayClient(options));
    // A failure to load is not kept: the next call tries again.
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
  return {
    unifiedOrder: async (params, callOptions) => (await loaded()).unifiedOrder(params, callOptions),
    orderQuery: async (query, callOptions) => (await loaded()).orderQuery(query, callOptions),
    closeOrder: async (query, callOptions) => (await loaded()).closeOrder(query, callOptions),
  };
}

export function createOrdersContext(config: AppConfig): OrdersContext {
  return {
    config,
    store: new OrderStore(createDocumentClient(config.dynamoEndpoint), config.ordersTable),
    wechatPay: wechatPayOnFirstCall({
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
