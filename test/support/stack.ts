import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { listen, readBody } from '../../emulator/http-server';
import { startEmulator, type RunningEmulator } from '../../emulator/server';
import { TEST_MERCHANT } from '../../emulator/test-merchant';
import type { ApiEvent } from '../../lib/http/api';
import { handler as notify } from '../../functions/notify';
import { createOrdersTable, startDynalite } from './dynalite';

export interface TestStack {
  emulator: RunningEmulator;
  dynamoEndpoint: string;
  table: string;
  notifyUrl: string;
  /** The emulator's control API. */
  sim: {
    pay(outTradeNo: string): Promise<Response>;
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
}

/** An API Gateway HTTP API (payload 2.0) event, as the real one carries it. */
export function apiEvent(options: {
  method: string;
  path: string;
  body?: string;
  base64?: boolean;
  pathParameters?: Record<string, string>;
  sourceIp?: string;
  claims?: Record<string, string>;
  contentType?: string;
}): ApiEvent {
  const body = options.body === undefined ? undefined : options.base64 ? Buffer.from(options.body).toString('base64') : options.body;
  return {
    version: '2.0',
    routeKey: `${options.method} ${options.path}`,
    rawPath: options.path,
    rawQueryString: '',
    headers: { 'content-type': options.contentType ?? 'application/json' },
    pathParameters: options.pathParameters,
    isBase64Encoded: options.base64 ?? false,
    body,
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      requestId: randomUUID(),
      routeKey: `${options.method} ${options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      http: { method: options.method, path: options.path, protocol: 'HTTP/1.1', sourceIp: options.sourceIp ?? '203.0.113.7', userAgent: 'test' },
      ...(options.claims ? { authorizer: { jwt: { claims: options.claims } } } : {}),
    },
  } as ApiEvent;
}

/**
 * dynalite, the orders table, the WeChat Pay emulator, and a small HTTP server that hands the
 * emulator's callbacks to the real notify handler; the handlers' configuration points at them.
 */
export async function startTestStack(options: { timeScale?: number; env?: Record<string, string> } = {}): Promise<TestStack> {
  const db = await startDynalite();
  const table = `orders-${randomUUID().slice(0, 8)}`;
  await createOrdersTable(db.endpoint, table);
  const emulator = await startEmulator({ ...TEST_MERCHANT, port: 0, timeScale: options.timeScale ?? 0.001, log: () => {} });
  const notifyServer = createServer((req, res) => {
    void (async () => {
      const body = (await readBody(req)) as Buffer;
      const result = await notify(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: body.toString('utf8'), base64: true, contentType: 'text/xml' }));
      res.writeHead(result.statusCode ?? 200, { 'content-type': 'text/xml' });
      res.end(result.body);
    })();
  });
  const notifyListening = await listen(notifyServer);
  const notifyUrl = `${notifyListening.origin}/wechatpay/notify`;
  Object.assign(process.env, {
    WECHATPAY_APPID: TEST_MERCHANT.appId,
    WECHATPAY_MCHID: TEST_MERCHANT.mchId,
    WECHATPAY_API_KEY: TEST_MERCHANT.apiKey,
    WECHATPAY_BASE_URL: emulator.url,
    WECHATPAY_NOTIFY_URL: notifyUrl,
    ORDERS_TABLE: table,
    DYNAMODB_ENDPOINT: db.endpoint,
    ...options.env,
  });
  delete process.env.WECHATPAY_API_KEY_PARAM;
  const control = async (path: string, body?: unknown) =>
    fetch(`${emulator.url}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return {
    emulator,
    dynamoEndpoint: db.endpoint,
    table,
    notifyUrl,
    sim: {
      pay: (outTradeNo) => control('/__sim/pay', { out_trade_no: outTradeNo }),
      faults: async (faults) => (await control('/__sim/faults', faults)).json(),
      order: async (outTradeNo) => (await control(`/__sim/orders/${outTradeNo}`)).json() as Promise<SimOrder>,
      reset: async () => {
        await control('/__sim/reset', {});
      },
    },
    close: async () => {
      await emulator.close();
      await notifyListening.close();
      await db.close();
    },
  };
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
