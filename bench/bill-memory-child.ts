/**
 * Reads one bill of N payments of another system, in a process of its own (bundled and run by
 * bench/reconciliation-memory.ts with --expose-gc): the bill is made and served here first, then,
 * from a collected heap, openBill downloads and checks it and its rows are read again from the
 * copy, while the process's memory is sampled. Prints the figures as JSON.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { listen, readBody } from '../dev/emulator/http-server';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import type { BillRow } from '../lib/wechatpay/bill';
import { billLines, paymentRow } from '../dev/wechatpay-documents/bill';
import { openBill } from '../lib/wechatpay/download-bill';

const rows = Number(process.argv[2]);
const maxBytes = Number(process.argv[3]);

function* foreignPayments(): Generator<BillRow> {
  for (let i = 0; i < rows; i++) {
    yield paymentRow({
      tradeTime: '2026-11-30 12:00:00',
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

let textBytes = 0;
/** The bill's lines in chunks of about 64 KiB (gzip is slow fed a line at a time), counted. */
function* chunks(): Generator<string> {
  let chunk = '';
  for (const line of billLines(foreignPayments(), { bom: true, lineEnding: '\r\n' })) {
    textBytes += Buffer.byteLength(line);
    chunk += line;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  yield chunk;
}

async function main() {
  const parts: Buffer[] = [];
  for await (const part of Readable.from(chunks()).pipe(createGzip({ level: 1 }))) parts.push(part as Buffer);
  const bill = Buffer.concat(parts);
  const server = createServer((request, response) => {
    void readBody(request, 1 << 20).then(() => response.writeHead(200, { 'content-type': 'application/x-gzip' }).end(bill));
  });
  const listening = await listen(server, 0, '127.0.0.1');
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage();
  const peak = { rss: base.rss, heapUsed: base.heapUsed };
  const sample = () => {
    const now = process.memoryUsage();
    peak.rss = Math.max(peak.rss, now.rss);
    peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed);
  };
  const sampling = setInterval(sample, 2);
  const started = performance.now();
  const { appId, mchId, apiKey } = TEST_MERCHANT;
  const opened = await openBill(
    { appId, mchId, apiKey, baseUrl: listening.origin, maxBytes, timeoutMs: 600_000 },
    { billDate: '20261130', gzip: true },
  );
  if (!opened.ok) throw new Error(`${opened.reason}: ${opened.message}`);
  const checkedMs = performance.now() - started;
  let read = 0;
  for await (const row of opened.rows()) {
    if (row.kind !== 'payment') throw new Error(`row ${read} is a ${row.kind}`);
    if (++read % 5_000 === 0) sample();
  }
  await opened.close();
  const rowsMs = performance.now() - started - checkedMs;
  clearInterval(sampling);
  sample();
  await listening.close();
  if (read !== rows) throw new Error(`read ${read} rows of ${rows}`);
  process.stdout.write(
    JSON.stringify({ rows, textBytes, gzipBytes: bill.length, checkedMs, rowsMs, base: { rss: base.rss, heapUsed: base.heapUsed }, peak }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(String((error as Error)?.stack ?? error));
  process.exit(1);
});
