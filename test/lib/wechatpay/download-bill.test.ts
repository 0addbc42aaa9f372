import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RETRYABLE_BILL_FAILURES } from '../../../lib/wechatpay/bill';
import type { BillResult } from '../../../lib/wechatpay/bill';
import { paymentRow, writeBill } from '../../../lib/wechatpay/bill-testing';
import { downloadBill } from '../../../lib/wechatpay/download-bill';
import type { DownloadBillOptions } from '../../../lib/wechatpay/download-bill';
import { WechatPayConfigError } from '../../../lib/wechatpay/errors';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { parseXml } from '../../../lib/wechatpay/xml';
import type { RunningEmulator } from '../../../emulator/server';
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
  it('downloads yesterday\'s bill, plain and gzipped, signed with either sign type', async () => {
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

  it('REFUSED for today, naming WeChat Pay\'s message, and for a wrong key', async () => {
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

  it('FOREIGN_BILL when a line is another merchant\'s', async () => {
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
    expect(unreachable).toMatchObject({ ok: false, reason: 'NETWORK_ERROR', message: expect.stringMatching(/could not be reached.*ECONNREFUSED/) });
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
