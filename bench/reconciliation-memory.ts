/**
 * Reconciliation as the bill grows past what this deployment recorded: a merchant id shared with
 * another system puts each of its payments in the bill, each an UNKNOWN_ORDER item of the report.
 * Three measures: the memory of reading such a bill (downloaded, checked whole, read again from the
 * copy), each size in a process of its own from a collected heap; the peak memory of the
 * runReconciliation function (its bundle, as deployed) reconciling such a day end to end, as V8
 * runs it and with its old space held small (V8 collects lazily, so the first peak also holds
 * garbage that a bigger run accumulates; the second shows what is live); and the
 * DynamoDB requests of reconciling such a day, again, and reading its report a page at a time.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { build } from 'esbuild';
import { listen, readBody } from '../dev/emulator/http-server';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import { handler as getReconciliation } from '../functions/getReconciliation';
import { reconcileDay } from '../lib/orders/reconcile';
import { ordersContext, reportStore } from '../lib/runtime';
import type { BillRow } from '../lib/wechatpay/bill';
import { billLines, paymentRow } from '../dev/wechatpay-documents/bill';
import { toBeijingTimestamp } from '../lib/wechatpay/time';
import { apiEvent, MERCHANT_AUTHORIZATION } from '../test/support/api';
import type { Bundle } from './bundles';
import { OUT, ROOT } from './bundles';
import type { Counter, RequestCounts } from './dynamo';
import { peakMemory, type MemoryResult } from './memory';
import { wechatPayV2Bills } from '../lib/gateways/wechatpay-v2/bills';

const run = promisify(execFile);
const MB = 1024 * 1024;
const DAY_MS = 86_400_000;

function* foreignPayments(rows: number, tradeTime: string): Generator<BillRow> {
  for (let i = 0; i < rows; i++) {
    yield paymentRow({
      tradeTime,
      appId: TEST_MERCHANT.appId,
      mchId: TEST_MERCHANT.mchId,
      transactionId: `42000000${String(i).padStart(20, '0')}`,
      outTradeNo: `LEGACY${String(i).padStart(10, '0')}`,
      openid: 'oLegacyShopPayer000000000000',
      tradeType: 'NATIVE',
      productName: 'legacy shop',
      totalFeeFen: 100,
    });
  }
}

/** The gzip bytes of a bill of `rows` payments of another system on `day`, written a chunk of lines at a time. */
async function foreignBill(rows: number, day: string): Promise<Buffer> {
  const tradeTime = `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)} 12:00:00`;
  function* chunks(): Generator<string> {
    let chunk = '';
    for (const line of billLines(foreignPayments(rows, tradeTime), { bom: true, lineEnding: '\r\n' })) {
      chunk += line;
      if (chunk.length >= 65_536) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
  }
  const parts: Buffer[] = [];
  for await (const part of Readable.from(chunks()).pipe(createGzip({ level: 1 }))) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Serves `bill` as WeChat Pay's downloadbill answer to every request while `work` runs. */
async function servingBill<T>(bill: Buffer, work: (baseUrl: string) => Promise<T>): Promise<T> {
  const server = createServer((request, response) => {
    void readBody(request, 1 << 20).then(() => response.writeHead(200, { 'content-type': 'application/x-gzip' }).end(bill));
  });
  const listening = await listen(server, 0, '127.0.0.1');
  try {
    return await work(listening.origin);
  } finally {
    await listening.close();
  }
}

export interface BillReading {
  rows: number;
  textMB: number;
  gzipMB: number;
  /** Downloading and checking it whole, then reading its rows again from the copy. */
  checkedMs: number;
  rowsMs: number;
  /** Peak over the collected heap before reading: resident set and JavaScript heap. */
  rssGrowthMB: number;
  heapGrowthMB: number;
  baseRssMB: number;
}

/** Reads a bill of each size of foreign payments, each in a process of its own; `maxBytes` the limit used. */
export async function billReadingMemory(sizes: number[], maxBytes: number): Promise<BillReading[]> {
  const child = join(OUT, 'bill-memory-child.mjs');
  await build({
    entryPoints: [join(ROOT, 'bench/bill-memory-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: child,
    logLevel: 'error',
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  const readings: BillReading[] = [];
  for (const rows of sizes) {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--no-warnings', child, String(rows), String(maxBytes)], {
      maxBuffer: 1024 * 1024,
      env: { PATH: process.env.PATH ?? '' },
    });
    const r = JSON.parse(stdout) as {
      textBytes: number;
      gzipBytes: number;
      checkedMs: number;
      rowsMs: number;
      base: { rss: number; heapUsed: number };
      peak: { rss: number; heapUsed: number };
    };
    readings.push({
      rows,
      textMB: r.textBytes / MB,
      gzipMB: r.gzipBytes / MB,
      checkedMs: r.checkedMs,
      rowsMs: r.rowsMs,
      rssGrowthMB: (r.peak.rss - r.base.rss) / MB,
      heapGrowthMB: (r.peak.heapUsed - r.base.heapUsed) / MB,
      baseRssMB: r.base.rss / MB,
    });
  }
  return readings;
}

export interface FunctionReconciling extends MemoryResult {
  rows: number;
  billDate: string;
  /** The same day reconciled again with V8's old space held to SMALL_HEAP_MB: what is live, not garbage V8 had no need to collect yet. */
  smallHeap: MemoryResult;
}

export const SMALL_HEAP_MB = 48;

/**
 * The runReconciliation bundle, in a process of its own (bench/memory.ts), reconciling a day of each
 * size of foreign payments (a day of its own each, nothing recorded on it) against a bill served here.
 */
export async function reconcilingFunctionMemory(bundle: Bundle, sizes: number[]): Promise<FunctionReconciling[]> {
  const results: FunctionReconciling[] = [];
  for (const [k, rows] of sizes.entries()) {
    const billDate = toBeijingTimestamp(new Date(Date.now() - (40 + k) * DAY_MS)).slice(0, 8);
    const bill = await foreignBill(rows, billDate);
    const saved = process.env.WECHATPAY_BASE_URL;
    const events = [
      apiEvent({
        method: 'POST',
        path: '/merchant/reconciliations',
        body: JSON.stringify({ billDate }),
        authorization: MERCHANT_AUTHORIZATION,
      }),
    ];
    const [memory, smallHeap] = await servingBill(bill, async (baseUrl) => {
      process.env.WECHATPAY_BASE_URL = baseUrl;
      try {
        const held = await peakMemory(bundle, events, { nodeOptions: [`--max-old-space-size=${SMALL_HEAP_MB}`] }).catch(
          // Out of heap: the process ends without its figures.
          (): MemoryResult => ({ requests: 1, rssPeakMB: 0, heapPeakMB: 0, rssAfterRequireMB: 0, statuses: { 'out of memory': 1 } }),
        );
        return [await peakMemory(bundle, events), held];
      } finally {
        process.env.WECHATPAY_BASE_URL = saved;
      }
    });
    results.push({ rows, billDate, ...memory, smallHeap });
  }
  return results;
}

/**
 * The DynamoDB requests of a day of `rows` foreign payments: reconciled (nothing recorded that day),
 * reconciled again (the report replaced), and its report read: its first page, and every item
 * 1,000 at a time through the cursor.
 */
export async function reconciliationRequests(counter: Counter, rows: number): Promise<{ counts: RequestCounts; answers: number }> {
  const ctx = await ordersContext();
  const billDate = toBeijingTimestamp(new Date(Date.now() - 50 * DAY_MS)).slice(0, 8);
  const bill = await foreignBill(rows, billDate);
  const out: RequestCounts = {};
  const reads: Record<string, number> = {};
  const readsName = 'bench-report-reads';
  // The GET route reads through a store of its own (lib/runtime.ts reportStore).
  reportStore().db.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      reads[name] = (reads[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: readsName, override: true },
  );
  let answers = 0;
  try {
    await servingBill(bill, async (baseUrl) => {
      const withBill = { ...ctx, bills: wechatPayV2Bills({ ...ctx.config, baseUrl }) };
      for (const which of ['reconcile', 'reconcile again (replaces the report)'] as const) {
        counter.reset();
        const report = await reconcileDay(billDate, withBill);
        if (report.itemCount !== rows || report.stored === false)
          throw new Error(`reconciled ${report.itemCount} items of ${rows}, stored ${report.stored ?? true}`);
        out[`${which}: ${rows.toLocaleString('en')} foreign payments`] = { requests: counter.total(), detail: { ...counter.requests } };
      }
    });
    const get = (query: string) =>
      getReconciliation(
        apiEvent({
          method: 'GET',
          path: `/merchant/reconciliations/${billDate}`,
          pathParameters: { billDate },
          authorization: MERCHANT_AUTHORIZATION,
          query,
        }),
      );
    const measure = async (name: string, work: () => Promise<void>) => {
      for (const key of Object.keys(reads)) delete reads[key];
      await work();
      out[name] = { requests: Object.values(reads).reduce((a, b) => a + b, 0), detail: { ...reads } };
    };
    await measure('GET its report, no cursor (100 items)', async () => {
      await get('');
    });
    let read = 0;
    await measure(`GET every item, 1,000 at a time through the cursor (${Math.ceil(rows / 1000)} answers)`, async () => {
      let cursor: string | undefined;
      do {
        const answer = JSON.parse((await get(`limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).body as string) as {
          items: unknown[];
          nextCursor?: string;
        };
        read += answer.items.length;
        cursor = answer.nextCursor;
        answers++;
      } while (cursor);
    });
    if (read !== rows) throw new Error(`read ${read} items of ${rows}`);
  } finally {
    reportStore().db.middlewareStack.remove(readsName);
  }
  return { counts: out, answers };
}
