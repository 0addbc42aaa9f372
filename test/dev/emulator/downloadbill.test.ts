import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readBillAnswer } from '../../../lib/wechatpay/bill';
import type { BillResult } from '../../../lib/wechatpay/bill';
import { writeBill } from '../../../dev/wechatpay-documents/bill';
import { nonceStr } from '../../../lib/wechatpay/ids';
import { signFields } from '../../../lib/wechatpay/sign';
import type { SignableFields, SignType } from '../../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { buildXml, parseXml } from '../../../lib/wechatpay/xml';
import { billRows, checkBillDate } from '../../../dev/emulator/bill';
import type { BillRefundRecord } from '../../../dev/emulator/bill';
import { createOrder, payOrder } from '../../../dev/emulator/orders';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { emptyState } from '../../../dev/emulator/state';
import { SIM_PAYER_OPENID } from '../../../dev/emulator/identifiers';
import { call, control, MERCHANT, orderFields, query, startReceiver, startTestEmulator } from '../../support/emulator';
import { waitFor } from '../../support/eventually';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A Beijing day `yyyyMMdd`, `days` before today. */
const beijingDay = (days: number) => toBeijingTimestamp(new Date(Date.now() - days * DAY_MS)).slice(0, 8);

let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startTestEmulator();
});
beforeEach(() => control(emulator, 'POST', '/__sim/reset'));
afterAll(() => emulator.close());

interface BillReply {
  status: number;
  contentType: string;
  bytes: Buffer;
}

function billRequest(overrides: SignableFields = {}): SignableFields {
  return {
    appid: MERCHANT.appId,
    mch_id: MERCHANT.mchId,
    nonce_str: nonceStr(),
    bill_date: beijingDay(1),
    bill_type: 'ALL',
    ...overrides,
  };
}

async function postBill(body: string | undefined, method = 'POST'): Promise<BillReply> {
  const response = await fetch(`${emulator.url}/pay/downloadbill`, { method, body, headers: { 'content-type': 'text/xml' } });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    bytes: Buffer.from(await response.arrayBuffer()),
  };
}

function downloadBill(overrides: SignableFields = {}, signType: SignType = 'MD5', key: string = MERCHANT.apiKey) {
  return postBill(buildXml(signFields(billRequest(overrides), key, signType)));
}

/** Creates a NATIVE order and pays it at `timeEnd` (Beijing `yyyyMMddHHmmss`); answers /__sim/pay's JSON. */
async function paidOrder(timeEnd: string | undefined, overrides: SignableFields = {}) {
  const fields = orderFields(overrides);
  expect((await call(emulator, 'unifiedorder', fields)).fields.result_code).toBe('SUCCESS');
  const paid = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no, time_end: timeEnd });
  expect(paid.status).toBe(200);
  return { fields, paid: paid.json as { transaction_id: string; time_end: string; out_trade_no: string } };
}

function expectOk(result: BillResult) {
  if (!result.ok) throw new Error(`expected a bill, got ${result.reason}: ${result.message}`);
  return result;
}

function refusalOf(reply: BillReply) {
  expect(reply.status).toBe(200);
  expect(reply.contentType).toMatch(/xml/);
  return parseXml(reply.bytes);
}

describe('POST /__sim/pay with time_end', () => {
  it('pays the order at that Beijing time: orderquery and the callback carry it', async () => {
    const receiver = await startReceiver();
    try {
      const timeEnd = `${beijingDay(1)}235959`;
      const { fields, paid } = await paidOrder(timeEnd, { notify_url: receiver.url });
      expect(paid.time_end).toBe(timeEnd);
      // WeChat Pay's transaction ids carry the payment's date.
      expect(paid.transaction_id.slice(8, 16)).toBe(beijingDay(1));
      expect((await query(emulator, fields.out_trade_no ?? '')).fields).toMatchObject({ trade_state: 'SUCCESS', time_end: timeEnd });
      await waitFor(() => receiver.received.length > 0);
      expect(receiver.received[0]?.fields).toMatchObject({ time_end: timeEnd, out_trade_no: fields.out_trade_no });
    } finally {
      await receiver.close();
    }
  });

  it.each([
    [toBeijingTimestamp(new Date(Date.now() + 60 * 60 * 1000))],
    ['20261131120000'],
    ['2026-11-30 12:00:00'],
    [20261130120000],
    [''],
    [null],
  ])('refuses time_end %j with 400 and leaves the order unpaid', async (timeEnd) => {
    const fields = orderFields();
    await call(emulator, 'unifiedorder', fields);
    const refused = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no, time_end: timeEnd });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringMatching(/time_end/) });
    expect((await query(emulator, fields.out_trade_no ?? '')).fields.trade_state).toBe('NOTPAY');
  });
});

describe('/pay/downloadbill', () => {
  it("answers yesterday's paid orders as WeChat Pay's ALL bill: BOM, CRLF, one SUCCESS line each, the summary", async () => {
    const a = await paidOrder(`${beijingDay(1)}090807`, { total_fee: '101', attach: 'shop=1', body: '咖啡, 大杯' });
    const b = await paidOrder(`${beijingDay(1)}000000`, {
      trade_type: 'JSAPI',
      openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      product_id: undefined,
      total_fee: '10000',
      device_info: 'till-7',
    });
    await paidOrder(`${beijingDay(2)}235959`); // the day before
    await paidOrder(undefined); // today
    await call(emulator, 'unifiedorder', orderFields()); // never paid

    const reply = await downloadBill();
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe('text/plain; charset=utf-8');
    expect([...reply.bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = reply.bytes.toString('utf8');
    expect(text.split('\r\n')).toHaveLength(6); // header, 2 lines, summary header, summary, ''
    expect(text.split('\r\n')[0]).toBe(
      '\uFEFF交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注',
    );

    const bill = expectOk(readBillAnswer(reply.bytes));
    expect(bill.layout).toBe('ALL');
    // In time order: b (00:00:00) before a (09:08:07).
    expect(bill.rows).toEqual([
      {
        kind: 'payment',
        tradeTime: `${beijingDay(1).replace(/^(\d{4})(\d{2})(\d{2})$/, '$1-$2-$3')} 00:00:00`,
        appId: MERCHANT.appId,
        mchId: MERCHANT.mchId,
        subMchId: '0',
        deviceInfo: 'till-7',
        transactionId: b.paid.transaction_id,
        outTradeNo: b.fields.out_trade_no,
        openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
        tradeType: 'JSAPI',
        tradeState: 'SUCCESS',
        bankType: 'OTHERS',
        feeType: 'CNY',
        settlementTotalFeeFen: 10000,
        couponFeeFen: 0,
        refundId: '0',
        outRefundNo: '0',
        refundFeeFen: 0,
        couponRefundFeeFen: 0,
        refundType: '',
        refundStatus: '',
        productName: '测试商品-emulator',
        attach: '',
        feeFen: 60,
        rate: '0.60%',
        totalFeeFen: 10000,
        appliedRefundFeeFen: 0,
        rateRemark: '',
      },
      expect.objectContaining({
        kind: 'payment',
        tradeTime: `${beijingDay(1).replace(/^(\d{4})(\d{2})(\d{2})$/, '$1-$2-$3')} 09:08:07`,
        transactionId: a.paid.transaction_id,
        outTradeNo: a.fields.out_trade_no,
        openid: SIM_PAYER_OPENID,
        tradeType: 'NATIVE',
        totalFeeFen: 101,
        settlementTotalFeeFen: 101,
        productName: '咖啡, 大杯',
        attach: 'shop=1',
        feeFen: 1, // 0.606 fen, rounded
      }),
    ]);
    expect(bill.summary).toEqual({
      tradeCount: 2,
      settlementTotalFeeFen: 10101,
      refundFeeFen: 0,
      couponRefundFeeFen: 0,
      feeFen: 61,
      totalFeeFen: 10101,
      appliedRefundFeeFen: 0,
    });
    // The same writer the tests use wrote it.
    expect(text).toBe(writeBill(bill.rows, { bom: true, lineEnding: '\r\n' }));
  });

  it('gzips the same bill for tar_type=GZIP, with either sign type', async () => {
    await paidOrder(`${beijingDay(1)}120000`);
    const plain = await downloadBill({}, 'HMAC-SHA256');
    const zipped = await downloadBill({ tar_type: 'GZIP' }, 'HMAC-SHA256');
    expect(zipped.status).toBe(200);
    expect([...zipped.bytes.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(gunzipSync(zipped.bytes).equals(plain.bytes)).toBe(true);
    expect(readBillAnswer(zipped.bytes)).toEqual(readBillAnswer(plain.bytes));
  });

  it('serves the SUCCESS bill in its own 20 columns; REFUND and RECHARGE_REFUND have no bill without refunds', async () => {
    const { paid } = await paidOrder(`${beijingDay(1)}120000`);
    const success = expectOk(readBillAnswer((await downloadBill({ bill_type: 'SUCCESS' })).bytes));
    expect(success.layout).toBe('SUCCESS');
    expect(success.rows).toEqual([expect.objectContaining({ kind: 'payment', transactionId: paid.transaction_id, totalFeeFen: 101 })]);
    for (const billType of ['REFUND', 'RECHARGE_REFUND']) {
      expect(refusalOf(await downloadBill({ bill_type: billType }))).toEqual({
        return_code: 'FAIL',
        return_msg: 'No Bill Exist',
        error_code: '20002',
      });
    }
  });

  it('answers No Bill Exist (20002, unsigned XML) for a day without payments; bill_type defaults to ALL', async () => {
    await paidOrder(`${beijingDay(2)}120000`);
    const reply = await downloadBill({ bill_type: undefined });
    expect(refusalOf(reply)).toEqual({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' });
    expect(readBillAnswer(reply.bytes)).toMatchObject({ ok: false, reason: 'NO_BILL' });
    expect(expectOk(readBillAnswer((await downloadBill({ bill_date: beijingDay(2), bill_type: undefined })).bytes)).rows).toHaveLength(1);
  });

  it.each([
    ['today', () => beijingDay(0)],
    ['tomorrow', () => beijingDay(-1)],
    ['more than three months back', () => beijingDay(95)],
    ['not a date', () => '20261131'],
    ['dashed', () => '2026-11-30'],
    ['short', () => '2026113'],
  ])('refuses a bill_date %s with invalid bill_date (20001)', async (_name, date) => {
    const reply = await downloadBill({ bill_date: date() });
    expect(refusalOf(reply)).toEqual({ return_code: 'FAIL', return_msg: 'invalid bill_date', error_code: '20001' });
    expect(readBillAnswer(reply.bytes)).toMatchObject({ ok: false, reason: 'REFUSED' });
  });

  it.each([
    ['a wrong key', () => buildXml(signFields(billRequest(), 'x'.repeat(32), 'MD5')), 'sign error'],
    ['a changed field', () => buildXml({ ...signFields(billRequest(), MERCHANT.apiKey, 'MD5'), bill_type: 'SUCCESS' }), 'sign error'],
    ['no sign', () => buildXml(billRequest()), 'missing parameter'],
    ['another merchant', () => buildXml(signFields(billRequest({ mch_id: '1900000109' }), MERCHANT.apiKey, 'MD5')), 'sign error'],
    ['another app', () => buildXml(signFields(billRequest({ appid: 'wx0000000000000000' }), MERCHANT.apiKey, 'MD5')), 'invalid appid'],
    ['no bill_date', () => buildXml(signFields(billRequest({ bill_date: undefined }), MERCHANT.apiKey, 'MD5')), 'missing parameter'],
    ['bill_type FOO', () => buildXml(signFields(billRequest({ bill_type: 'FOO' }), MERCHANT.apiKey, 'MD5')), 'invalid bill_type'],
    [
      'tar_type ZIP',
      () => buildXml(signFields(billRequest({ tar_type: 'ZIP' }), MERCHANT.apiKey, 'MD5')),
      'invalid tar_type, Only GZIP supported',
    ],
    ['a long nonce', () => buildXml(signFields(billRequest({ nonce_str: 'n'.repeat(33) }), MERCHANT.apiKey, 'MD5')), 'nonce_str too long'],
    ['a bad sign_type', () => buildXml({ ...signFields(billRequest(), MERCHANT.apiKey, 'MD5'), sign_type: 'SHA1' }), 'sign error'],
    ['not XML', () => 'bill_date=20261130', 'data format error'],
    ['an empty body', () => '', 'empty post data'],
  ])('refuses %s with its WeChat Pay message', async (_name, body, returnMsg) => {
    await paidOrder(`${beijingDay(1)}120000`);
    expect(refusalOf(await postBill(body()))).toEqual({ return_code: 'FAIL', return_msg: returnMsg, error_code: '20001' });
  });

  it('refuses GET', async () => {
    expect(refusalOf(await postBill(undefined, 'GET')).return_msg).toBe('require POST method');
  });

  it('answers late under the delay fault', async () => {
    await paidOrder(`${beijingDay(1)}120000`);
    await control(emulator, 'POST', '/__sim/faults', { delayMs: 150 });
    const started = performance.now();
    expect((await downloadBill()).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe("the bill's days", () => {
  const now = new Date('2026-05-31T04:00:00Z'); // 12:00 on 31 May in Beijing
  it.each([
    ['20260530', true],
    ['20260531', false], // today
    ['20260601', false],
    ['20260303', true], // 31 February rolls over to 3 March: three calendar months back
    ['20260302', false],
    ['20260229', false], // no such day
  ])('%s is %s', (date, allowed) => {
    expect(checkBillDate(date, now)).toBe(allowed);
  });

  it('a Beijing day runs from 00:00 to 23:59:59 Beijing, not UTC', () => {
    // 16:30 UTC on 30 May is 00:30 on 31 May in Beijing.
    expect(checkBillDate('20260530', new Date('2026-05-30T16:30:00Z'))).toBe(true);
    expect(checkBillDate('20260530', new Date('2026-05-30T15:30:00Z'))).toBe(false);
  });
});

describe("refund lines (the extension point for the emulator's refunds)", () => {
  function stateWithRefunds() {
    const state = emptyState();
    const fields = orderFields({ total_fee: '1000' });
    const order = createOrder(state, buildXmlFields(fields), 'MD5', new Date());
    payOrder(state, order, new Date('2026-05-29T04:00:00Z')); // 12:00 Beijing, 29 May
    const refunds: BillRefundRecord[] = [
      {
        outTradeNo: order.outTradeNo,
        outRefundNo: 'R1',
        refundId: '50300000000000000000000000001',
        refundFee: 400,
        requestedAt: '20260530100000',
        status: 'SUCCESS',
        succeededAt: '20260530100005',
      },
      {
        outTradeNo: order.outTradeNo,
        outRefundNo: 'R2',
        refundId: '50300000000000000000000000002',
        refundFee: 100,
        requestedAt: '20260530110000',
        status: 'PROCESSING',
      },
      {
        outTradeNo: 'unknown-order',
        outRefundNo: 'R3',
        refundId: '50300000000000000000000000003',
        refundFee: 1,
        requestedAt: '20260530110000',
        status: 'SUCCESS',
      },
    ];
    Object.assign(state, { refunds: new Map(refunds.map((refund) => [refund.outRefundNo, refund])) });
    return { state, order };
  }

  function buildXmlFields(fields: SignableFields) {
    return parseXml(buildXml(fields));
  }

  it('refunds in state.refunds become REFUND lines of the day they were accepted', () => {
    const { state, order } = stateWithRefunds();
    const all = billRows(state, MERCHANT, '20260530', 'ALL');
    expect(all.map((row) => [row.kind, row.tradeTime, row.outRefundNo, row.refundFeeFen, row.feeFen, row.refundStatus])).toEqual([
      ['refund', '2026-05-30 10:00:00', 'R1', 400, -2, 'SUCCESS'],
      ['refund', '2026-05-30 11:00:00', 'R2', 100, -1, 'PROCESSING'],
    ]);
    expect(all[0]).toMatchObject({
      transactionId: order.transactionId,
      outTradeNo: order.outTradeNo,
      tradeState: 'REFUND',
      appliedRefundFeeFen: 400,
      totalFeeFen: 0,
    });
    expect(billRows(state, MERCHANT, '20260530', 'SUCCESS')).toEqual([]);
    expect(billRows(state, MERCHANT, '20260529', 'ALL').map((row) => row.kind)).toEqual(['payment']);

    // Written and read back in the ALL and REFUND layouts.
    const bill = expectOk(readBillAnswer(writeBill(all)));
    expect(bill.summary).toMatchObject({ tradeCount: 2, refundFeeFen: 500, appliedRefundFeeFen: 500, feeFen: -3 });
    const refundBill = expectOk(readBillAnswer(writeBill(billRows(state, MERCHANT, '20260530', 'REFUND'), { layout: 'REFUND' })));
    expect(refundBill.layout).toBe('REFUND');
    expect(refundBill.rows.map((row) => [row.refundRequestTime, row.refundSuccessTime])).toEqual([
      ['2026-05-30 10:00:00', '2026-05-30 10:00:05'],
      ['2026-05-30 11:00:00', ''],
    ]);
  });
});
