/**
 * DynamoDB requests per operation, counted by an SDK middleware on the orders store's client, with
 * the real handlers running against dynalite and the WeChat Pay emulator; and recovery's reads as the
 * table of settled orders grows.
 */
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import { signedNotification } from '../dev/wechatpay-documents/payment-notification';
import { ordersContext } from '../lib/runtime';
import { PENDING_SHARDS } from '../lib/orders/store';
import { handler as createOrder } from '../functions/createOrder';
import { handler as createMerchantOrder } from '../functions/createMerchantOrder';
import { handler as getMerchantOrder } from '../functions/getMerchantOrder';
import { handler as notify } from '../functions/notify';
import { handler as queryOrder } from '../functions/queryOrder';
import { handler as recoverOrders } from '../functions/recoverOrders';
import { batchWrite, seedClient } from '../test/support/seed';
import { type TestStack } from '../test/support/stack';
import { apiEvent, MERCHANT_AUTHORIZATION, putProduct } from '../test/support/api';

/** The catalog the bench's frontend orders buy from (one line, its quantity varying). */
const BENCH_SKU = 'bench-coffee';
let catalogSeeded: Promise<unknown> | undefined;
export function seedCatalog(): Promise<unknown> {
  catalogSeeded ??= putProduct(BENCH_SKU, { name: 'Bench coffee', priceFen: 10_000 });
  return catalogSeeded;
}

export interface Counter {
  requests: Record<string, number>;
  queryItems: number;
  queryScanned: number;
  queryCapacity: number;
  reset(): void;
  total(): number;
}

/** Counts every command the store's client sends (one per logical request, retries not included). */
export async function countRequests(): Promise<Counter> {
  const { store } = await ordersContext();
  const counter: Counter = {
    requests: {},
    queryItems: 0,
    queryScanned: 0,
    queryCapacity: 0,
    reset() {
      this.requests = {};
      this.queryItems = 0;
      this.queryScanned = 0;
      this.queryCapacity = 0;
    },
    total() {
      return Object.values(this.requests).reduce((a, b) => a + b, 0);
    },
  };
  store.db.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      counter.requests[name] = (counter.requests[name] ?? 0) + 1;
      const input = args.input as Record<string, unknown>;
      if (name === 'Query') input.ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      if (name === 'Query') {
        const output = result.output as { Count?: number; ScannedCount?: number; ConsumedCapacity?: { CapacityUnits?: number } };
        counter.queryItems += output.Count ?? 0;
        counter.queryScanned += output.ScannedCount ?? 0;
        counter.queryCapacity += output.ConsumedCapacity?.CapacityUnits ?? 0;
      }
      return result;
    },
    { step: 'initialize', name: 'benchRequestCounter', override: true },
  );
  return counter;
}

export function createEvent(tradeType: 'JSAPI' | 'NATIVE' | 'MWEB' | 'APP', n = 0) {
  const body: Record<string, unknown> = { tradeType, items: [{ sku: BENCH_SKU, quantity: 1 + (n % 9) }] };
  if (tradeType === 'JSAPI') body.openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
  if (tradeType === 'MWEB') body.sceneInfo = { h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' } };
  return apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify(body) });
}

export function callbackEvent(outTradeNo: string, totalFee: number, transactionId?: string) {
  const xml = signedNotification({
    apiKey: TEST_MERCHANT.apiKey,
    signType: 'HMAC-SHA256',
    fields: {
      appid: TEST_MERCHANT.appId,
      mch_id: TEST_MERCHANT.mchId,
      out_trade_no: outTradeNo,
      total_fee: String(totalFee),
      ...(transactionId ? { transaction_id: transactionId } : {}),
    },
    coupons: [
      { id: '10000', fee: 100 },
      { id: '10001', fee: 50, type: 'CASH' },
    ],
  });
  return apiEvent({ method: 'POST', path: '/wechatpay/notify', body: xml, base64: true, contentType: 'text/xml' });
}

export function merchantCreateEvent(n = 0) {
  const body = { tradeType: 'NATIVE', totalFee: 10_000 + n, description: `Bench merchant order ${n}` };
  return apiEvent({ method: 'POST', path: '/merchant/orders', body: JSON.stringify(body), authorization: MERCHANT_AUTHORIZATION });
}

export function merchantGetEvent(outTradeNo: string) {
  return apiEvent({
    method: 'GET',
    path: `/merchant/orders/${outTradeNo}`,
    pathParameters: { outTradeNo },
    authorization: MERCHANT_AUTHORIZATION,
  });
}

export function getEvent(outTradeNo: string) {
  return apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } });
}

function bodyOf(result: unknown): Record<string, unknown> {
  return JSON.parse((result as { body: string }).body) as Record<string, unknown>;
}

/** Creates an order through the real handler; its out_trade_no and amount. */
export async function createOne(tradeType: 'JSAPI' | 'NATIVE' | 'MWEB' | 'APP', n = 0): Promise<{ outTradeNo: string; totalFee: number }> {
  await seedCatalog();
  const result = (await createOrder(createEvent(tradeType, n))) as { statusCode: number };
  const body = bodyOf(result);
  if (result.statusCode !== 201) throw new Error(`createOrder answered ${result.statusCode}: ${JSON.stringify(body)}`);
  return { outTradeNo: body.outTradeNo as string, totalFee: body.totalFee as number };
}

export type RequestCounts = Record<string, { requests: number; detail: Record<string, number> }>;

/** Counts what each run sends, into `out` under its name. */
export function measuring(counter: Counter, out: RequestCounts) {
  return async (name: string, run: () => Promise<unknown>): Promise<void> => {
    counter.reset();
    await run();
    out[name] = { requests: counter.total(), detail: { ...counter.requests } };
  };
}

export async function requestsPerOperation(counter: Counter): Promise<RequestCounts> {
  const out: RequestCounts = {};
  const measure = measuring(counter, out);
  let order = { outTradeNo: '', totalFee: 0 };
  await seedCatalog();
  await measure('create (JSAPI)', async () => {
    order = await createOne('JSAPI', 1);
  });
  await measure('create (NATIVE, QR code)', () => createOne('NATIVE', 2));
  const pending = await createOne('JSAPI', 3);
  const tx = `4200${'7'.repeat(24)}`;
  let reply = '';
  await measure('first callback', async () => {
    reply = ((await notify(callbackEvent(order.outTradeNo, order.totalFee, tx))) as { body: string }).body;
  });
  if (!reply.includes('SUCCESS')) throw new Error(`notify did not answer SUCCESS: ${reply}`);
  await measure('duplicate callback', () => notify(callbackEvent(order.outTradeNo, order.totalFee, tx)));
  await measure('GET settled order', async () => {
    const view = bodyOf(await queryOrder(getEvent(order.outTradeNo)));
    if (view.status !== 'PAID') throw new Error(`expected PAID, got ${JSON.stringify(view)}`);
  });
  await measure('GET pending order', () => queryOrder(getEvent(pending.outTradeNo)));
  let merchantOrder = '';
  await measure('merchant create (authorized)', async () => {
    const result = await createMerchantOrder(merchantCreateEvent(1));
    if (result.statusCode !== 201) throw new Error(`createMerchantOrder answered ${result.statusCode}: ${result.body}`);
    merchantOrder = bodyOf(result).outTradeNo as string;
  });
  await measure('merchant GET order (authorized)', () => getMerchantOrder(merchantGetEvent(order.outTradeNo)));
  if (!merchantOrder) throw new Error('no merchant order');
  return out;
}

export interface RecoveryLevel {
  settled: number;
  pending: number;
  seedSeconds: number;
  queries: number;
  itemsRead: number;
  scanned: number;
  capacity: number;
  examined: number;
  runMs: number;
}

function settledItem(i: number) {
  const outTradeNo = `benchpaid${String(i).padStart(10, '0')}`;
  return {
    pk: outTradeNo,
    outTradeNo,
    status: 'PAID',
    tradeType: 'JSAPI',
    totalFee: 100,
    description: 'Bench settled order',
    signType: 'HMAC-SHA256',
    createdAt: '2025-01-01T00:00:00.000Z',
    expiresAt: '2025-01-01T00:30:00.000Z',
    paidAt: '2025-01-01T00:01:00.000Z',
    transactionId: `4200${String(i).padStart(24, '0')}`,
    paidVia: 'notify',
    review: {},
  };
}

function pendingItem(i: number, now: number) {
  const outTradeNo = `benchpend${String(i).padStart(10, '0')}`;
  return {
    pk: outTradeNo,
    outTradeNo,
    status: 'PENDING',
    tradeType: 'JSAPI',
    totalFee: 100,
    description: 'Bench pending order',
    signType: 'HMAC-SHA256',
    createdAt: new Date(now - 60_000).toISOString(),
    expiresAt: new Date(now + 29 * 60_000).toISOString(),
    prepayId: `wx${i}`,
    pendingShard: String(i % PENDING_SHARDS),
    nextCheckAt: now - 1_000,
    checkCount: 1,
    review: {},
  };
}

const seededSoFar = new WeakMap<TestStack, number>();

/**
 * Seeds settled orders up to each size (they carry no pendingShard, so the sparse index never sees
 * them), puts 100 due pending orders back each time, and runs the recovery handler once.
 */
export async function recoveryReads(stack: TestStack, counter: Counter, sizes: number[], pending = 100): Promise<RecoveryLevel[]> {
  const db = seedClient(stack);
  const levels: RecoveryLevel[] = [];
  let seeded = seededSoFar.get(stack) ?? 0;
  for (const size of sizes) {
    const started = performance.now();
    await batchWrite(
      db,
      stack.table,
      Array.from({ length: Math.max(0, size - seeded) }, (_, k) => settledItem(seeded + k)),
    );
    const seedSeconds = (performance.now() - started) / 1000;
    seeded = Math.max(seeded, size);
    seededSoFar.set(stack, seeded);
    const now = Date.now();
    await batchWrite(
      db,
      stack.table,
      Array.from({ length: pending }, (_, i) => pendingItem(i, now)),
    );
    counter.reset();
    const run = performance.now();
    const summary = (await recoverOrders({} as never)) as { examined: number };
    levels.push({
      settled: size,
      pending,
      seedSeconds,
      queries: counter.requests.Query ?? 0,
      itemsRead: counter.queryItems,
      scanned: counter.queryScanned,
      capacity: counter.queryCapacity,
      examined: summary.examined,
      runMs: performance.now() - run,
    });
  }
  db.destroy();
  return levels;
}
