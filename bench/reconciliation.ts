/**
 * Daily reconciliation at size: a Beijing day of N payments, 1% of their callbacks lost, seeded
 * beside everything else in the bench's table (test/support/seed.ts), reconciled by the real handler
 * (POST /merchant/reconciliations) against the emulator's bill: its time, its DynamoDB requests and
 * what it read of the paid-by-day index; then the same day again, nothing left to repair. And the
 * size of the bill it downloaded.
 */
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { handler as runReconciliation } from '../functions/runReconciliation';
import { ordersContext } from '../lib/runtime';
import { downloadBill } from '../lib/wechatpay/download-bill';
import { toBeijingTimestamp } from '../lib/wechatpay/time';
import { apiEvent, MERCHANT_AUTHORIZATION } from '../test/support/api';
import { seedPaidDay } from '../test/support/seed';
import type { TestStack } from '../test/support/stack';
import type { Counter } from './dynamo';

export interface ReconciliationRun {
  runMs: number;
  /** Every DynamoDB request of the run, and by command. */
  requests: number;
  detail: Record<string, number>;
  /** Of the paid-by-day index: items returned, items read, read capacity consumed. */
  queryItems: number;
  queryScanned: number;
  queryCapacity: number;
  counts: { billRows: number; matched: number; repaired: number; missingFromBill: number; amountMismatches: number };
}

export interface ReconciliationLevel {
  billDate: string;
  orders: number;
  lostCallbacks: number;
  seedSeconds: number;
  /** The bill as downloaded (gzip) and as text. */
  billGzipBytes: number;
  billTextBytes: number;
  first: ReconciliationRun;
  again: ReconciliationRun;
}

const DAY_MS = 86_400_000;

/** The bill of a day as the reconciliation downloads it (ALL, gzip), its bytes counted on the way in. */
async function billSize(billDate: string): Promise<{ gzip: number; text: number }> {
  const { appId, mchId, apiKey, baseUrl, signType } = (await ordersContext()).config;
  let body: Buffer | undefined;
  const counting: typeof fetch = async (input, init) => {
    const answer = await fetch(input, init);
    body = Buffer.from(await answer.arrayBuffer());
    return new Response(body, { status: answer.status, headers: answer.headers });
  };
  const bill = await downloadBill({ appId, mchId, apiKey, baseUrl, signType, fetch: counting }, { billDate, billType: 'ALL', gzip: true });
  if (!bill.ok || !body) throw new Error(`the bill of ${billDate} could not be read: ${bill.ok ? 'no body' : bill.message}`);
  return { gzip: body.length, text: gunzipSync(body).length };
}

async function reconcileOnce(billDate: string, counter: Counter): Promise<ReconciliationRun> {
  counter.reset();
  const started = performance.now();
  const answer = await runReconciliation(
    apiEvent({
      method: 'POST',
      path: '/merchant/reconciliations',
      body: JSON.stringify({ billDate }),
      authorization: MERCHANT_AUTHORIZATION,
    }),
  );
  const runMs = performance.now() - started;
  if (answer.statusCode !== 200) throw new Error(`runReconciliation answered ${answer.statusCode}: ${answer.body}`);
  const report = JSON.parse(answer.body as string) as { counts: ReconciliationRun['counts'] };
  return {
    runMs,
    requests: counter.total(),
    detail: { ...counter.requests },
    queryItems: counter.queryItems,
    queryScanned: counter.queryScanned,
    queryCapacity: counter.queryCapacity,
    counts: report.counts,
  };
}

/** One day per size, the largest yesterday, each reconciled twice; every count checked against what was seeded. */
export async function reconciliationAtSize(stack: TestStack, counter: Counter, sizes: number[]): Promise<ReconciliationLevel[]> {
  const levels: ReconciliationLevel[] = [];
  for (const [k, orders] of sizes.entries()) {
    const billDate = toBeijingTimestamp(new Date(Date.now() - (sizes.length - k) * DAY_MS)).slice(0, 8);
    const lostCallbacks = Math.ceil(orders / 100);
    const seedStarted = performance.now();
    await seedPaidDay(stack, { day: billDate, orders, lost: lostCallbacks });
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const first = await reconcileOnce(billDate, counter);
    const again = await reconcileOnce(billDate, counter);
    const expected = {
      billRows: orders,
      matched: orders - lostCallbacks,
      repaired: lostCallbacks,
      missingFromBill: 0,
      amountMismatches: 0,
    };
    const expectedAgain = { ...expected, matched: orders, repaired: 0 };
    if (!isDeepStrictEqual(first.counts, expected) || !isDeepStrictEqual(again.counts, expectedAgain)) {
      throw new Error(
        `reconciliation of ${orders} orders counted ${JSON.stringify(first.counts)} then ${JSON.stringify(again.counts)}; expected ${JSON.stringify(expected)} then ${JSON.stringify(expectedAgain)}`,
      );
    }
    const bill = await billSize(billDate);
    levels.push({ billDate, orders, lostCallbacks, seedSeconds, billGzipBytes: bill.gzip, billTextBytes: bill.text, first, again });
  }
  return levels;
}
