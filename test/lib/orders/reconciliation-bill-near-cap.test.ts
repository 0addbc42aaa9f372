/**
 * Security review finding: "A bill near the 100 MB cap would exhaust memory before the TOO_LARGE
 * check (about 8 KB per row held)." The bill was buffered, inflated and parsed whole, and the rows
 * filtered several times. It is now read as a stream, checked whole, then its rows matched in one
 * pass from a copy of the answer; reconciliation holds what this deployment recorded, not the bill.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { listen, readBody } from '../../../dev/emulator/http-server';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import type { OrdersContext } from '../../../lib/orders/context';
import { reconcileDay } from '../../../lib/orders/reconcile';
import { DEFAULT_MAX_BILL_BYTES, type BillRow } from '../../../lib/wechatpay/bill';
import { billLines, paymentRow, refundRow } from '../../../dev/wechatpay-documents/bill';
import { openBill } from '../../../lib/wechatpay/download-bill';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { create } from '../../support/api';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';
import { wechatPayV2Bills } from '../../../lib/gateways/wechatpay-v2/bills';

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

const DAY_MS = 24 * 60 * 60 * 1000;

/** Serves `bill` (gzip bytes) to every downloadbill request: WeChat Pay's answer, without the emulator. */
async function serving<T>(bill: Buffer, work: (baseUrl: string) => Promise<T>): Promise<T> {
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

/** Lines joined into chunks of about 64 KiB: gzip is slow fed a line at a time. */
function* inChunks(lines: Iterable<string>): Generator<string> {
  let chunk = '';
  for (const line of lines) {
    chunk += line;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** The gzip bytes of the bill of these rows, written and compressed a line at a time. */
async function gzipBill(rows: Iterable<BillRow>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(inChunks(billLines(rows, { bom: true, lineEnding: '\r\n' }))).pipe(createGzip({ level: 1 })))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function* foreignPayments(count: number, tradeTime: string): Generator<BillRow> {
  for (let i = 0; i < count; i++) {
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

describe('A bill near the 100 MB cap would exhaust memory before the TOO_LARGE check (about 8 KB per row held)', () => {
  it('a bill of 400,000 lines, 97.6 MB of text, is read, checked and read again with the heap flat', async () => {
    const rows = 400_000;
    const bill = await gzipBill(foreignPayments(rows, '2026-11-30 12:00:00'));
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    };
    const sampling = setInterval(sample, 2);
    const before = process.memoryUsage().heapUsed;
    const read = await serving(bill, async (baseUrl) => {
      const { appId, mchId, apiKey } = TEST_MERCHANT;
      const opened = await openBill({ appId, mchId, apiKey, baseUrl, timeoutMs: 120_000 }, { billDate: '20261130', gzip: true });
      if (!opened.ok) throw new Error(opened.message);
      try {
        let count = 0;
        for await (const row of opened.rows()) {
          if (row.mchId !== mchId) throw new Error('foreign');
          if (++count % 5_000 === 0) sample();
        }
        return { count, summary: opened.summary };
      } finally {
        await opened.close();
      }
    }).finally(() => clearInterval(sampling));
    expect(read.count).toBe(rows);
    expect(read.summary).toMatchObject({ tradeCount: rows, totalFeeFen: rows * 100 });
    // Held whole, the text alone is 97.6 MB (twice that as a JavaScript string) and its rows some 3 GB.
    const grewMB = (peak - before) / 1024 / 1024;
    expect(grewMB, `heap grew ${grewMB.toFixed(1)} MB`).toBeLessThan(64);
    expect(rows * 244).toBeGreaterThan(DEFAULT_MAX_BILL_BYTES * 0.9);
  }, 120_000);

  it("a refund line before its payment line: the refund waits until the bill's payments are recorded, then is recorded too", async () => {
    const day = toBeijingTimestamp(new Date(Date.now() - 5 * DAY_MS)).slice(0, 8);
    const tradeTime = (hms: string) => `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)} ${hms}`;
    await stack.sim.faults({ dropNotifies: 1_000_000 });
    try {
      const outTradeNo = (await create({ tradeType: 'NATIVE', totalFee: 3000, description: 'refunded before paid, in the bill' })).body
        .outTradeNo;
      await fetch(`${stack.emulator.url}/__sim/pay`, {
        method: 'POST',
        body: JSON.stringify({ out_trade_no: outTradeNo, time_end: `${day}120000` }),
      });
      const transactionId = (await stack.sim.order(outTradeNo)).transaction_id as string;
      const line = {
        appId: TEST_MERCHANT.appId,
        mchId: TEST_MERCHANT.mchId,
        transactionId,
        outTradeNo,
        openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
        tradeType: 'NATIVE',
        productName: 'refunded before paid',
      };
      const bill = await gzipBill([
        refundRow({
          ...line,
          tradeTime: tradeTime('13:00:00'),
          refundId: '50000000000000000000000000077',
          outRefundNo: 'platform-77',
          refundFeeFen: 500,
        }),
        paymentRow({ ...line, tradeTime: tradeTime('12:00:00'), totalFeeFen: 3000 }),
      ]);
      const report = await serving(bill, (baseUrl) => reconcileDay(day, { ...ctx, bills: wechatPayV2Bills({ ...ctx.config, baseUrl }) }));
      expect(report).toMatchObject({
        status: 'MATCHED',
        counts: { billRows: 2, matched: 0, repaired: 2, missingFromBill: 0, amountMismatches: 0 },
      });
      expect(report.items.map((item) => item.kind)).toEqual(['REPAIRED', 'REFUND_REPAIRED']);
      expect(await ctx.store.get(outTradeNo)).toMatchObject({
        status: 'PAID',
        paidVia: 'reconciliation',
        refundedFee: 500,
        refunds: { 'platform-77': { status: 'SUCCESS', origin: 'external' } },
      });
    } finally {
      await stack.sim.faults({ dropNotifies: 0 });
    }
  });
});
