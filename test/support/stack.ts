import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { listen, readBody } from '../../dev/emulator/http-server';
import { startEmulator, type RunningEmulator } from '../../dev/emulator/server';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { localStackApps } from '../../dev/local/apps';
import { LOCAL_SESSION_KEY } from '../../dev/local/session-key';
import { handler as notify } from '../../functions/notify';
import { handler as clearOutbox } from '../../functions/clearOutbox';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../dev/local/eventbridge';
import { handler as refundNotify } from '../../functions/refundNotify';
import { localCertificates } from '../../dev/emulator/certs';
import { apiEvent, TEST_MERCHANT_TOKEN } from './api';
import { createCatalogTable, createOrdersTable, startDynalite } from './dynalite';

/** The test stack's EventBridge bus (EVENT_BUS_NAME). */
export const TEST_EVENT_BUS = 'wechatpay-test';

export interface TestStack {
  emulator: RunningEmulator;
  /** The local EventBridge stand-in the product publishes to; it hands each event to clearOutbox, as the rule does. */
  events: RunningEventBridge;
  /** Turns that hand-over on or off (a confirmation that never comes). */
  confirmEvents(on: boolean): void;
  dynamoEndpoint: string;
  table: string;
  catalogTable: string;
  notifyUrl: string;
  /** Where the emulator sends refund callbacks (the real refundNotify handler behind it). */
  refundNotifyUrl: string;
  /** The emulator's control API. */
  sim: {
    pay(outTradeNo: string): Promise<Response>;
    /** A refund made by hand in the merchant platform (called back to the refund notify URL). */
    platformRefund(outTradeNo: string, refundFee: number, outRefundNo?: string): Promise<Response>;
    faults(faults: Record<string, unknown>): Promise<unknown>;
    order(outTradeNo: string): Promise<SimOrder>;
    reset(): Promise<void>;
  };
  close(): Promise<void>;
}

export interface SimOrder {
  trade_state: string;
  transaction_id?: string;
  total_fee: string;
  calls: Array<{ endpoint: string; at: string; return_code: string; result_code?: string; err_code?: string }>;
  notifications: Array<{ at: string; status: number | string; return_code?: string }>;
  refunds: SimRefund[];
}

export interface SimRefund {
  out_refund_no: string;
  refund_id: string;
  refund_fee: number;
  refund_status: string;
  source: string;
  notifications: Array<{ at: string; status: number | string; return_code?: string }>;
}

/** The page origin the test stack lets have a JS-SDK config (CORS_ORIGINS). */
export const TEST_PAGE_ORIGIN = 'https://shop.example.com';

/**
 * The apps as the local stack configures them: the merchant's official account (the default app)
 * and the local mini-program, their AppSecrets as local settings.
 */
export function localAppSettings(merchantAppId: string = TEST_MERCHANT.appId): { WECHAT_APPS: string; WECHAT_APP_SECRETS: string } {
  return localStackApps(merchantAppId, {}).settings;
}

/**
 * dynalite, the orders table, the WeChat Pay emulator (which also stands in for WeChat's platform
 * API), a small HTTP server that hands the emulator's callbacks to the real notify handler, and the
 * EventBridge stand-in, whose bus hands every event to the real clearOutbox handler (unless
 * `confirmEvents` is false) and to any `eventTargets` (the merchant's consumers), before it answers
 * PutEvents (unless `eventsAnswerFirst`: EventBridge's own order, for measurements); the handlers'
 * configuration points at them, with the local stack's two apps and session key.
 */
export async function startTestStack(
  options: {
    timeScale?: number;
    env?: Record<string, string>;
    confirmEvents?: boolean;
    eventTargets?: Array<(event: DeliveredEvent) => unknown>;
    eventsAnswerFirst?: boolean;
    refunds?: boolean;
  } = {},
): Promise<TestStack> {
  const db = await startDynalite();
  const table = `orders-${randomUUID().slice(0, 8)}`;
  await createOrdersTable(db.endpoint, table);
  const catalogTable = `catalog-${randomUUID().slice(0, 8)}`;
  await createCatalogTable(db.endpoint, catalogTable);
  // Refunds need the emulator's mutual-TLS port and the merchant's client certificate (about a second to make).
  const certs = options.refunds ? localCertificates(TEST_MERCHANT.mchId) : undefined;
  const emulator = await startEmulator({
    ...TEST_MERCHANT,
    port: 0,
    timeScale: options.timeScale ?? 0.001,
    log: () => {},
    ...(certs ? { tls: certs } : {}),
  });
  // Callbacks being handled: closing waits for them, so none meets a closed DynamoDB.
  const handling = new Set<Promise<void>>();
  const notifyServer = createServer((req, res) => {
    const done: Promise<void> = (async () => {
      const body = (await readBody(req)) as Buffer;
      const refund = req.url === '/wechatpay/refund-notify';
      const path = refund ? '/wechatpay/refund-notify' : '/wechatpay/notify';
      const result = await (refund ? refundNotify : notify)(
        apiEvent({ method: 'POST', path, body: body.toString('utf8'), base64: true, contentType: 'text/xml' }),
      );
      res.writeHead(result.statusCode ?? 200, { 'content-type': 'text/xml' });
      res.end(result.body);
    })().finally(() => handling.delete(done));
    handling.add(done);
  });
  const notifyListening = await listen(notifyServer);
  let confirming = options.confirmEvents ?? true;
  const events = await startEventBridge({
    busName: TEST_EVENT_BUS,
    log: () => {},
    // Every confirmation a request causes has landed when the request returns: tests compare tables.
    awaitTargets: !options.eventsAnswerFirst,
    targets: [(event) => (confirming ? clearOutbox(event) : undefined), ...(options.eventTargets ?? [])],
  });
  const notifyUrl = `${notifyListening.origin}/wechatpay/notify`;
  const refundNotifyUrl = `${notifyListening.origin}/wechatpay/refund-notify`;
  Object.assign(process.env, {
    WECHATPAY_APPID: TEST_MERCHANT.appId,
    WECHATPAY_MCHID: TEST_MERCHANT.mchId,
    WECHATPAY_API_KEY: TEST_MERCHANT.apiKey,
    WECHATPAY_BASE_URL: emulator.url,
    WECHATPAY_NOTIFY_URL: notifyUrl,
    ORDERS_TABLE: table,
    CATALOG_TABLE: catalogTable,
    MERCHANT_API_TOKEN: TEST_MERCHANT_TOKEN,
    DYNAMODB_ENDPOINT: db.endpoint,
    EVENT_BUS_NAME: TEST_EVENT_BUS,
    EVENTBRIDGE_ENDPOINT: events.url,
    WECHATPAY_REFUND_NOTIFY_URL: refundNotifyUrl,
    ...(certs
      ? { WECHATPAY_SECAPI_BASE_URL: emulator.secapiUrl, WECHATPAY_CLIENT_CERT_PEM: certs.clientPem, WECHATPAY_SECAPI_CA_PEM: certs.caPem }
      : {}),
    ...localAppSettings(),
    WECHAT_API_BASE_URL: emulator.url,
    SESSION_KEY: LOCAL_SESSION_KEY,
    CORS_ORIGINS: TEST_PAGE_ORIGIN,
    ...options.env,
  });
  delete process.env.WECHATPAY_API_KEY_PARAM;
  delete process.env.WECHATPAY_CERT_PARAM;
  delete process.env.SESSION_KEY_PARAM;
  const control = async (path: string, body?: unknown) =>
    fetch(
      `${emulator.url}${path}`,
      body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
  return {
    emulator,
    events,
    confirmEvents: (on) => {
      confirming = on;
    },
    dynamoEndpoint: db.endpoint,
    table,
    catalogTable,
    notifyUrl,
    refundNotifyUrl,
    sim: {
      pay: (outTradeNo) => control('/__sim/pay', { out_trade_no: outTradeNo }),
      platformRefund: (outTradeNo, refundFee, outRefundNo) =>
        control('/__sim/refund', {
          out_trade_no: outTradeNo,
          refund_fee: refundFee,
          notify_url: refundNotifyUrl,
          ...(outRefundNo ? { out_refund_no: outRefundNo } : {}),
        }),
      faults: async (faults) => (await control('/__sim/faults', faults)).json(),
      order: async (outTradeNo) => (await control(`/__sim/orders/${outTradeNo}`)).json() as Promise<SimOrder>,
      reset: async () => {
        await control('/__sim/reset', {});
      },
    },
    close: async () => {
      await events.close();
      await emulator.close();
      await Promise.allSettled([...handling]);
      await notifyListening.close();
      await db.close();
    },
  };
}
