import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RETRYABLE_BILL_FAILURES } from '../../../lib/wechatpay/bill';
import type { BillResult } from '../../../lib/wechatpay/bill';
import { paymentRow, refundRow, writeBill } from '../../../dev/wechatpay-documents/bill';
import { downloadBill, openBill } from '../../../lib/wechatpay/download-bill';
import type { DownloadBillOptions } from '../../../lib/wechatpay/download-bill';
import { WechatPayConfigError } from '../../../lib/wechatpay/errors';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { parseXml } from '../../../lib/wechatpay/xml';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, control, MERCHANT, orderFields, startTestEmulator } from '../../support/emulator';

const DAY_MS = 24 * 60 * 60 * 1000;
const beijingDay = (days: number) => toBeijingTimestamp(new Date(Date.now() - days * DAY_MS)).slice(0, 8);
const YESTERDAY = beijingDay(1);

let emulator: RunningEmulator;
let options: DownloadBillOptions;
beforeAll(async () => {
  emulator = await startTestEmulator();
  options = { ...MERCHANT, baseUrl: emulator.url };
});
beforeEach(() => control(emulator, 'POST', '/__sim/reset'));
afterAll(() => emulator.close());

async function payYesterday(totalFee: string, second: string) {
  const fields = orderFields({ total_fee: totalFee });
  await call(emulator, 'unifiedorder', fields);
  const paid = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no, time_end: `${YESTERDAY}1200${second}` });
  return { outTradeNo: fields.out_trade_no ?? '', transactionId: String(paid.json.transaction_id) };
}

function expectOk(result: BillResult) {
  if (!result.ok) throw new Error(`expected a bill, got ${result.reason}: ${result.message}`);
  return result;
}

/** A fetch that records the request and answers with `reply`. */
function scriptedFetch(reply: () => Response) {
  const sent: Array<{ url: string; body: string }> = [];
  const fake = (async (url: string | URL | Request, init?: RequestInit) => {
    sent.push({ url: String(url), body: String(init?.body) });
    return reply();
  }) as typeof fetch;
  return { fake, sent };
}

describe('downloadBill against the emulator', () => {
  it("downloads yesterday's bill, plain and gzipped, signed with either sign type", async () => {
    const a = await payYesterday('101', '01');
    const b = await payYesterday('2500', '02');
    for (const signType of ['MD5', 'HMAC-SHA256'] as const) {
      for (const gzip of [false, true]) {
        const bill = expectOk(await downloadBill({ ...options, signType }, { billDate: YESTERDAY, gzip }));
        expect(bill.layout).toBe('ALL');
        expect(bill.rows.map((row) => [row.kind, row.outTradeNo, row.transactionId, row.totalFeeFen])).toEqual([
          ['payment', a.outTradeNo, a.transactionId, 101],
          ['payment', b.outTradeNo, b.transactionId, 2500],
        ]);
        expect(bill.summary).toMatchObject({ tradeCount: 2, totalFeeFen: 2601, feeFen: 1 + 15 });
      }
    }
  });

  it('downloads the SUCCESS bill', async () => {
    await payYesterday('101', '01');
    const bill = expectOk(await downloadBill(options, { billDate: YESTERDAY, billType: 'SUCCESS', gzip: true }));
    expect(bill.layout).toBe('SUCCESS');
    expect(bill.rows).toHaveLength(1);
  });

  it('NO_BILL for a day without payments, and for a REFUND bill without refunds', async () => {
    expect(await downloadBill(options, { billDate: YESTERDAY })).toMatchObject({ ok: false, reason: 'NO_BILL' });
    await payYesterday('101', '01');
    expect(await downloadBill(options, { billDate: YESTERDAY, billType: 'REFUND', gzip: true })).toMatchObject({
      ok: false,
      reason: 'NO_BILL',
    });
  });

  it("REFUSED for today, naming WeChat Pay's message, and for a wrong key", async () => {
    const today = await downloadBill(options, { billDate: beijingDay(0) });
    expect(today).toEqual({ ok: false, reason: 'REFUSED', message: expect.stringMatching(/"invalid bill_date" \(error_code "20001"\)/) });
    const wrongKey = await downloadBill({ ...options, apiKey: 'k'.repeat(32) }, { billDate: YESTERDAY });
    expect(wrongKey).toMatchObject({ ok: false, reason: 'REFUSED', message: expect.stringMatching(/sign error/) });
  });

  it('TOO_LARGE when the bill is over maxBytes', async () => {
    await payYesterday('101', '01');
    expect(await downloadBill({ ...options, maxBytes: 200 }, { billDate: YESTERDAY })).toMatchObject({ ok: false, reason: 'TOO_LARGE' });
  });

  it('NETWORK_ERROR when the answer is late, with the timeout named', async () => {
    await control(emulator, 'POST', '/__sim/faults', { delayMs: 300 });
    const late = await downloadBill({ ...options, timeoutMs: 50 }, { billDate: YESTERDAY });
    expect(late).toEqual({ ok: false, reason: 'NETWORK_ERROR', message: 'WeChat Pay downloadbill did not answer within 50 ms' });
    expect(RETRYABLE_BILL_FAILURES.has('NETWORK_ERROR')).toBe(true);
  });
});

describe('downloadBill on its own', () => {
  it('sends a signed request of the day, the type and tar_type, to /pay/downloadbill', async () => {
    const { fake, sent } = scriptedFetch(() => new Response('No Bill Exist'));
    await downloadBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130', billType: 'REFUND', gzip: true });
    await downloadBill({ ...MERCHANT, fetch: fake, signType: 'MD5', baseUrl: 'https://api2.mch.weixin.qq.com/' }, { billDate: '20261130' });
    expect(sent[0]?.url).toBe('https://api.mch.weixin.qq.com/pay/downloadbill');
    expect(sent[1]?.url).toBe('https://api2.mch.weixin.qq.com/pay/downloadbill');
    const first = parseXml(sent[0]?.body ?? '');
    expect(first).toMatchObject({
      appid: MERCHANT.appId,
      mch_id: MERCHANT.mchId,
      bill_date: '20261130',
      bill_type: 'REFUND',
      tar_type: 'GZIP',
      sign_type: 'HMAC-SHA256',
    });
    expect(first.nonce_str).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(verifySignature(first, MERCHANT.apiKey).ok).toBe(true);
    const second = parseXml(sent[1]?.body ?? '');
    expect(second).toMatchObject({ bill_type: 'ALL' });
    expect(second.tar_type).toBeUndefined();
    expect(second.sign_type).toBeUndefined();
    expect(verifySignature(second, MERCHANT.apiKey).ok).toBe(true);
  });

  it.each([
    ['<xml><return_code>FAIL</return_code><return_msg>Bill Creating</return_msg></xml>', 'BILL_CREATING', true],
    ['<xml><return_code>FAIL</return_code><return_msg>SYSTEMERROR</return_msg></xml>', 'SYSTEM_ERROR', true],
    ['<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg><error_code>20002</error_code></xml>', 'NO_BILL', false],
    ['garbage', 'MALFORMED_BILL', false],
  ])('reads %s as %s', async (answer, reason, retryable) => {
    const { fake } = scriptedFetch(() => new Response(answer));
    const result = await downloadBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130' });
    expect(result).toMatchObject({ ok: false, reason });
    expect(RETRYABLE_BILL_FAILURES.has(reason as never)).toBe(retryable);
  });

  const line = (mchId: string) =>
    paymentRow({
      tradeTime: '2026-11-30 12:00:00',
      appId: MERCHANT.appId,
      mchId,
      transactionId: '4200000540202611301234567890',
      outTradeNo: '20261130abcdefghijABCDEFGHIJ',
      openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      tradeType: 'JSAPI',
      totalFeeFen: 100,
      productName: 'coffee',
    });

  it("FOREIGN_BILL when a line is another merchant's", async () => {
    const { fake } = scriptedFetch(() => new Response(gzipSync(writeBill([line(MERCHANT.mchId), line('1900000109')]))));
    expect(await downloadBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130', gzip: true })).toMatchObject({
      ok: false,
      reason: 'FOREIGN_BILL',
      message: expect.stringMatching(/1900000109/),
    });
  });

  it('MALFORMED_BILL when the bill is not of the type asked for', async () => {
    const { fake } = scriptedFetch(() => new Response(writeBill([line(MERCHANT.mchId)], { layout: 'SUCCESS' })));
    expect(await downloadBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130' })).toMatchObject({
      ok: false,
      reason: 'MALFORMED_BILL',
      message: 'asked for the ALL bill, the answer is a SUCCESS bill',
    });
  });

  it('NETWORK_ERROR for an HTTP error and for a refused connection', async () => {
    const { fake } = scriptedFetch(() => new Response('busy', { status: 503 }));
    expect(await downloadBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130' })).toEqual({
      ok: false,
      reason: 'NETWORK_ERROR',
      message: 'WeChat Pay downloadbill answered HTTP 503 (is baseUrl right?)',
    });
    // A port that was free a moment ago: nothing listens there.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const unreachable = await downloadBill({ ...MERCHANT, baseUrl: `http://127.0.0.1:${port}` }, { billDate: '20261130' });
    expect(unreachable).toMatchObject({
      ok: false,
      reason: 'NETWORK_ERROR',
      message: expect.stringMatching(/could not be reached.*ECONNREFUSED/),
    });
  });

  it('throws for a wrong configuration or request, before any call', async () => {
    const { fake, sent } = scriptedFetch(() => new Response('No Bill Exist'));
    const good = { ...MERCHANT, fetch: fake };
    await expect(downloadBill({ ...good, apiKey: 'short' }, { billDate: '20261130' })).rejects.toThrow(WechatPayConfigError);
    await expect(downloadBill({ ...good, mchId: 'abc' }, { billDate: '20261130' })).rejects.toThrow(WechatPayConfigError);
    await expect(downloadBill({ ...good, baseUrl: 'ftp://x' }, { billDate: '20261130' })).rejects.toThrow(WechatPayConfigError);
    await expect(downloadBill({ ...good, timeoutMs: 0 }, { billDate: '20261130' })).rejects.toThrow(WechatPayConfigError);
    for (const billDate of ['2026-11-30', '20261131', '2026113', '']) {
      await expect(downloadBill(good, { billDate })).rejects.toThrow(TypeError);
    }
    await expect(downloadBill(good, { billDate: '20261130', billType: 'toString' as never })).rejects.toThrow(TypeError);
    expect(sent).toEqual([]);
  });
});

describe('openBill: the bill read as it arrives, checked whole, then its rows read from a copy', () => {
  const row = (i: number, mchId: string = MERCHANT.mchId) =>
    paymentRow({
      tradeTime: '2026-11-30 12:00:00',
      appId: MERCHANT.appId,
      mchId,
      transactionId: `42000005402026113${String(i).padStart(11, '0')}`,
      outTradeNo: `20261130order${String(i).padStart(8, '0')}`,
      openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      tradeType: 'JSAPI',
      totalFeeFen: 100 + i,
      productName: '咖啡',
    });

  /** A fetch answering with these bytes, in chunks of `chunk`, counting the chunks pulled. */
  function streamingFetch(bytes: Uint8Array, chunk = 1024) {
    const state = { pulled: 0, cancelled: false };
    const fake = (async () => {
      let at = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          state.pulled += 1;
          controller.enqueue(bytes.subarray(at, at + chunk));
          at += chunk;
        },
        cancel() {
          state.cancelled = true;
        },
      });
      return new Response(body);
    }) as typeof fetch;
    return { fake, state };
  }

  /** Runs `work` with the system's temporary directory a fresh one, and answers what was left in it. */
  async function leftInTmp(work: () => Promise<void>): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'open-bill-test-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      await work();
      return readdirSync(dir, { recursive: true }) as string[];
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('gives the same rows each time they are read, and leaves no file named in the temporary directory, open or closed', async () => {
    const rows = [row(1), row(2), refundRow({ ...row(1), refundId: '50000000000000000000000000001', outRefundNo: 'R1', refundFeeFen: 50 })];
    const { fake } = streamingFetch(gzipSync(writeBill(rows, { bom: true, lineEnding: '\r\n' })), 7);
    const left = await leftInTmp(async () => {
      const bill = await openBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130', gzip: true });
      if (!bill.ok) throw new Error(bill.message);
      expect(readdirSync(process.env.TMPDIR as string)).toEqual([]);
      try {
        expect(bill).toMatchObject({ layout: 'ALL', summary: { tradeCount: 3 } });
        for (let pass = 0; pass < 2; pass++) {
          const read = [];
          for await (const each of bill.rows()) read.push(each);
          expect(read).toEqual(rows);
        }
        // Stopping early leaves the copy readable.
        for await (const first of bill.rows()) {
          expect(first).toEqual(rows[0]);
          break;
        }
        expect((await bill.rows().next()).value).toEqual(rows[0]);
      } finally {
        await bill.close();
      }
    });
    expect(left).toEqual([]);
  });

  it('hands on no row of a bill that turns out cut short: its summary is the last line', async () => {
    const text = writeBill([row(1), row(2), row(3)]);
    const cut = text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1);
    const { fake } = streamingFetch(Buffer.from(cut), 100);
    const left = await leftInTmp(async () => {
      expect(await openBill({ ...MERCHANT, fetch: fake }, { billDate: '20261130' })).toMatchObject({
        ok: false,
        reason: 'MALFORMED_BILL',
        message: expect.stringMatching(/without the summary/),
      });
    });
    expect(left).toEqual([]);
  });

  it('stops downloading at the first line of another merchant, and at the limit on the bytes received or inflated', async () => {
    const foreign = writeBill([row(1), row(2, '1900000109'), ...Array.from({ length: 2000 }, (_, i) => row(i + 3))]);
    const first = streamingFetch(Buffer.from(foreign));
    expect(await openBill({ ...MERCHANT, fetch: first.fake }, { billDate: '20261130' })).toMatchObject({
      ok: false,
      reason: 'FOREIGN_BILL',
    });
    expect(first.state.cancelled).toBe(true);
    expect(first.state.pulled).toBeLessThan(10);

    const large = Buffer.from(writeBill(Array.from({ length: 2000 }, (_, i) => row(i))));
    const received = streamingFetch(large);
    expect(await openBill({ ...MERCHANT, fetch: received.fake, maxBytes: 64 * 1024 }, { billDate: '20261130' })).toEqual({
      ok: false,
      reason: 'TOO_LARGE',
      message: 'the answer is over the 65536-byte limit',
    });
    expect(received.state.cancelled).toBe(true);
    // 64 chunks of 1 KiB fill the limit; the stream pulls one or two ahead.
    expect(received.state.pulled).toBeLessThanOrEqual(66);

    const inflating = streamingFetch(gzipSync(large));
    expect(await openBill({ ...MERCHANT, fetch: inflating.fake, maxBytes: 64 * 1024 }, { billDate: '20261130', gzip: true })).toMatchObject(
      { ok: false, reason: 'TOO_LARGE', message: expect.stringMatching(/inflates to over 65536 bytes/) },
    );
  });

  it('NETWORK_ERROR when the bill stops arriving before the timeout ends', async () => {
    const stalled = (async (_url: unknown, init?: RequestInit) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(Buffer.from(writeBill([row(1)]).slice(0, 200)));
          init?.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
        },
      });
      return new Response(body);
    }) as typeof fetch;
    expect(await openBill({ ...MERCHANT, fetch: stalled, timeoutMs: 100 }, { billDate: '20261130' })).toEqual({
      ok: false,
      reason: 'NETWORK_ERROR',
      message: 'WeChat Pay downloadbill did not answer within 100 ms',
    });
  });
});
