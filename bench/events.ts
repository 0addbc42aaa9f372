/**
 * What publishing events costs the notify path: first callbacks recorded through the store with its
 * publisher and through the same store without one, interleaved, against dynalite and the local
 * EventBridge (so the difference is the PutEvents round trip and its CPU, on this machine); the
 * requests each callback makes; and the one-time load of the EventBridge client in fresh processes.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import type { OrdersContext } from '../lib/orders/context';
import { handlePaymentNotification } from '../lib/gateways/wechatpay-v2/notify';
import { OrderStore } from '../lib/orders/store';
import { ordersContext } from '../lib/runtime';
import { signedNotification } from '../dev/wechatpay-documents/payment-notification';
import { esbuildOptions, median, OUT, ROOT } from './bundles';
import { createOne } from './dynamo';

export interface LatencyFigures {
  medianMs: number;
  p95Ms: number;
}

export interface EventsBench {
  callbacks: number;
  firstCallback: { withPublishing: LatencyFigures; withoutPublishing: LatencyFigures; addedMedianMs: number };
  /** Requests per callback, counted by SDK middleware. */
  requests: Record<'first callback' | 'duplicate callback', { dynamodb: number; putEvents: number }>;
  /** Loading and building the EventBridge client after the DynamoDB client, in fresh processes (once per container). */
  clientLoadMs: number;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const figures = (values: number[]): LatencyFigures => ({ medianMs: median(values), p95Ms: percentile(values, 0.95) });

let transaction = 0;
function paidCallbackFor(order: { outTradeNo: string; totalFee: number }): Buffer {
  transaction += 1;
  return Buffer.from(
    signedNotification({
      apiKey: TEST_MERCHANT.apiKey,
      signType: 'HMAC-SHA256',
      fields: {
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        out_trade_no: order.outTradeNo,
        total_fee: String(order.totalFee),
        transaction_id: `4200${String(transaction).padStart(24, '8')}`,
      },
    }),
  );
}

async function timed(body: Buffer, ctx: OrdersContext): Promise<number> {
  const started = performance.now();
  const result = await handlePaymentNotification(body, ctx);
  const ms = performance.now() - started;
  if (result.outcome !== 'PAID') throw new Error(`expected a first payment, got ${result.outcome}`);
  return ms;
}

/** Median time to load and build the EventBridge client in a fresh process that already has the DynamoDB client. */
function clientLoad(runs: number): number {
  const file = join(OUT, 'eventbridge-load.js');
  const probe = `const m=require(process.argv[1]);const t=process.hrtime.bigint();m.loadClient().then(()=>process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6)))`;
  const once = () => Number(execFileSync(process.execPath, ['-e', probe, file], { encoding: 'utf8' }));
  once();
  return median(Array.from({ length: runs }, once));
}

export async function eventsBench(runs = 150, coldRuns = 15): Promise<EventsBench> {
  const ctx = await ordersContext();
  // The same store, the same client, without the publisher: a transition written, nothing published.
  const silent: OrdersContext = { ...ctx, store: new OrderStore(ctx.store.db, ctx.config.ordersTable) };
  const orders = [];
  // Two per timed pair, 20 to warm up, and one for the request count.
  for (let i = 0; i < 2 * runs + 21; i += 1) orders.push(await createOne('NATIVE', i));
  const bodies = orders.map(paidCallbackFor);
  // Warm both paths (the first publish loads the EventBridge client).
  for (let i = 0; i < 10; i += 1) {
    await timed(bodies[2 * i]!, ctx);
    await timed(bodies[2 * i + 1]!, silent);
  }
  const withPublishing: number[] = [];
  const withoutPublishing: number[] = [];
  for (let i = 10; i < runs + 10; i += 1) {
    // Interleaved, so that load on the machine weighs on both alike.
    withPublishing.push(await timed(bodies[2 * i]!, ctx));
    withoutPublishing.push(await timed(bodies[2 * i + 1]!, silent));
  }

  // Requests of one first callback and one duplicate, with publishing.
  const counts = { dynamodb: 0, putEvents: 0 };
  const events = await ctx.events.client();
  ctx.store.db.middlewareStack.add((next) => async (args) => ((counts.dynamodb += 1), next(args)), {
    step: 'initialize',
    name: 'benchEventsDynamo',
  });
  events.middlewareStack.add((next) => async (args) => ((counts.putEvents += 1), next(args)), {
    step: 'initialize',
    name: 'benchEventsPut',
  });
  const requests = {} as EventsBench['requests'];
  try {
    const last = bodies[2 * runs + 20]!;
    await handlePaymentNotification(last, ctx);
    requests['first callback'] = { ...counts };
    counts.dynamodb = 0;
    counts.putEvents = 0;
    await handlePaymentNotification(last, ctx);
    requests['duplicate callback'] = { ...counts };
  } finally {
    ctx.store.db.middlewareStack.remove('benchEventsDynamo');
    events.middlewareStack.remove('benchEventsPut');
  }

  await build({
    ...esbuildOptions(),
    entryPoints: [join(ROOT, 'bench/eventbridge-load.ts')],
    outfile: join(OUT, 'eventbridge-load.js'),
    logLevel: 'error',
    absWorkingDir: ROOT,
  });
  const loadMs = clientLoad(coldRuns);
  const withFigures = figures(withPublishing);
  const withoutFigures = figures(withoutPublishing);
  return {
    callbacks: runs,
    firstCallback: {
      withPublishing: withFigures,
      withoutPublishing: withoutFigures,
      addedMedianMs: withFigures.medianMs - withoutFigures.medianMs,
    },
    requests,
    clientLoadMs: loadMs,
  };
}
