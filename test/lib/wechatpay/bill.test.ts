import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BILL_LAYOUTS,
  feeYuanToFen,
  fenToYuan,
  parseBillText,
  readBillAnswer,
  yuanToFen,
  type BillResult,
  type BillRow,
} from '../../../lib/wechatpay/bill';
import { paymentRow, refundRow, summarize, wechatPayFeeFen, writeBill } from '../../../dev/wechatpay-documents/bill';
import { downloadBill } from '../../../lib/wechatpay/download-bill';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, control, MERCHANT, orderFields, startTestEmulator } from '../../support/emulator';

/**
 * A bill downloaded from WeChat Pay (anonymised ids): TheNorthMemory/wechatpay-axios-plugin
 * tests/fixtures/bill.ALL.csv at f5bc863b9044f9205fde13554c9c9bfd68af5b8d, copied byte for byte
 * (see fixtures/README.md).
 */
const REAL_BILL = readFileSync(join(__dirname, 'fixtures', 'bill.ALL.csv'));

/**
 * The pre-2018 24-column ALL bill, as WeChat Pay's old downloadbill page gave it (copy:
 * blog.csdn.net/weixin_33268205/article/details/111897134, "举例如下").
 */
const LEGACY_BILL = [
  '交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率',
  '`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%',
  '`2014-11-10 16:46:14,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1002780740201411100005729794,`1415635270,`085e9858e90ca40c0b5aee463,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%',
  '总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额',
  '`2,`0.02,`0.0,`0.0,`0',
].join('\n');

function expectOk(result: BillResult) {
  if (!result.ok) throw new Error(`expected a bill, got ${result.reason}: ${result.message}`);
  return result;
}

function expectFailure(result: BillResult, reason: string, message?: RegExp) {
  expect(result).toMatchObject({ ok: false, reason });
  if (message && !result.ok) expect(result.message).toMatch(message);
  if (!result.ok) expect(Object.keys(result).sort()).toEqual(['message', 'ok', 'reason']);
}

describe('a bill downloaded from WeChat Pay (wechatpay-axios-plugin tests/fixtures/bill.ALL.csv)', () => {
  it('is the 27-column ALL bill with a BOM and CRLF line ends', () => {
    expect([...REAL_BILL.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(REAL_BILL.toString('utf8')).toContain('\r\n');
  });

  it('reads as 45 lines, 31 payments and 14 refunds, with the summary WeChat Pay wrote (`45.0` trades)', () => {
    const bill = expectOk(readBillAnswer(REAL_BILL));
    expect(bill.layout).toBe('ALL');
    expect(bill.rows).toHaveLength(45);
    expect(bill.rows.filter((row) => row.kind === 'payment')).toHaveLength(31);
    expect(bill.rows.filter((row) => row.kind === 'refund')).toHaveLength(14);
    expect(bill.summary).toEqual({
      tradeCount: 45,
      settlementTotalFeeFen: 47,
      refundFeeFen: 14,
      couponRefundFeeFen: 0,
      feeFen: 8,
      totalFeeFen: 47,
      appliedRefundFeeFen: 14,
    });
  });

  it('reads a refund line and a payment line field by field', () => {
    const bill = expectOk(readBillAnswer(REAL_BILL));
    expect(bill.rows[0]).toEqual({
      kind: 'refund',
      tradeTime: '2019-02-19 05:01:46',
      appId: 'wxab8acd895ab1638a',
      mchId: '1921000401',
      subMchId: '0',
      deviceInfo: 'harryma007',
      transactionId: '4200000263201902167700134212',
      outTradeNo: 'autotest_20190216081946_82335',
      openid: 'oHkLxtx0vUqe-18p_AXTZ1innxkCY',
      tradeType: 'JSAPI',
      tradeState: 'REFUND',
      bankType: 'OTHERS',
      feeType: 'CNY',
      settlementTotalFeeFen: 0,
      couponFeeFen: 0,
      refundId: '50000709672019011908420787722',
      outRefundNo: 'REF4200000263201902167700963919',
      refundFeeFen: 1,
      couponRefundFeeFen: 0,
      refundType: 'ORIGINAL',
      refundStatus: 'SUCCESS',
      productName: '系统拨测-cheeryin-test_micropay_succ',
      attach: '',
      feeFen: 0,
      rate: '39.00%',
      totalFeeFen: 0,
      appliedRefundFeeFen: 1,
      rateRemark: '',
    });
    // The last line: a NATIVE payment of 0.03 with a 0.01 (recharge) coupon and a fee of 0.01000.
    expect(bill.rows[44]).toMatchObject({
      kind: 'payment',
      tradeTime: '2019-02-19 01:51:59',
      transactionId: '4200000263201902167700136502',
      outTradeNo: 'autotest_20190219015157_13391',
      tradeType: 'NATIVE',
      tradeState: 'SUCCESS',
      settlementTotalFeeFen: 3,
      couponFeeFen: 1,
      refundId: '0',
      outRefundNo: '0',
      refundFeeFen: 0,
      productName: 'autotest',
      feeFen: 1,
      totalFeeFen: 3,
      appliedRefundFeeFen: 0,
    });
    for (const row of bill.rows) expect(row.transactionId).toMatch(/^\d{28}$/);
  });

  it('reads the same from a string, without the BOM, with LF line ends, and gzipped', () => {
    const expected = expectOk(readBillAnswer(REAL_BILL));
    const text = REAL_BILL.toString('utf8');
    const bare = text.replace(/^\uFEFF/, '').replaceAll('\r\n', '\n');
    expect(readBillAnswer(text)).toEqual(expected);
    expect(readBillAnswer(bare)).toEqual(expected);
    expect(parseBillText(bare)).toEqual(expected);
    expect(readBillAnswer(gzipSync(REAL_BILL))).toEqual(expected);
    expect(readBillAnswer(Buffer.from(bare.replaceAll('\n', '\r\n')))).toEqual(expected);
  });

  it('has fees of the rate rounded to whole fen: of the settled amount for a payment, given back for a refund', () => {
    const bill = expectOk(readBillAnswer(REAL_BILL));
    for (const row of bill.rows) {
      const fee = wechatPayFeeFen(row.kind === 'payment' ? row.settlementTotalFeeFen : row.refundFeeFen, row.rate);
      expect(Math.abs(row.feeFen)).toBe(fee);
    }
  });

  it('written again by the writer gives the same bill', () => {
    const bill = expectOk(readBillAnswer(REAL_BILL));
    const again = writeBill(bill.rows, { bom: true, lineEnding: '\r\n' });
    expect(readBillAnswer(again)).toEqual(bill);
  });
});

describe('the pre-2018 24-column ALL bill (WeChat Pay documentation sample)', () => {
  it('reads both lines, `0.0` and `0` amounts, and the 5-column summary', () => {
    const bill = expectOk(readBillAnswer(LEGACY_BILL));
    expect(bill.layout).toBe('ALL_LEGACY');
    expect(bill.rows).toHaveLength(2);
    expect(bill.rows[0]).toEqual({
      kind: 'payment',
      tradeTime: '2014-11-10 16:33:45',
      appId: 'wx2421b1c4370ec43b',
      mchId: '10000100',
      subMchId: '0',
      deviceInfo: '1000',
      transactionId: '1001690740201411100005734289',
      outTradeNo: '1415640626',
      openid: '085e9858e3ba5186aafcbaed1',
      tradeType: 'MICROPAY',
      tradeState: 'SUCCESS',
      bankType: 'OTHERS',
      feeType: 'CNY',
      settlementTotalFeeFen: 1,
      couponFeeFen: 0,
      refundId: '0',
      outRefundNo: '0',
      refundFeeFen: 0,
      couponRefundFeeFen: 0,
      refundType: '',
      refundStatus: '',
      productName: '被扫支付测试',
      attach: '订单额外描述',
      feeFen: 0,
      rate: '0.60%',
      totalFeeFen: 1,
      appliedRefundFeeFen: 0,
      rateRemark: '',
    });
    expect(bill.summary).toEqual({
      tradeCount: 2,
      settlementTotalFeeFen: 2,
      refundFeeFen: 0,
      couponRefundFeeFen: 0,
      feeFen: 0,
      totalFeeFen: 2,
      appliedRefundFeeFen: 0,
    });
  });

  it('reads the full-width colons of the documentation page (WxJava WxPayBillResultTest) as colons', () => {
    const fullWidth = LEGACY_BILL.replace('16:33:45', '16：33：45').replace('16:46:14', '16：46：14');
    expect(readBillAnswer(fullWidth)).toEqual(readBillAnswer(LEGACY_BILL));
  });

  it('is written and read back by the same layout table', () => {
    const bill = expectOk(readBillAnswer(LEGACY_BILL));
    expect(readBillAnswer(writeBill(bill.rows, { layout: 'ALL_LEGACY' }))).toEqual(bill);
  });
});

describe('WeChat Pay SUCCESS and REFUND bills (headers of WxJava WxPayBillResultTest)', () => {
  it("WxJava's excerpts are recognised, and refused because their summaries count lines that are not there", () => {
    const success = [
      '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注',
      '`2019-07-23 18:46:41,`XXXX,`XXX,`XXX,`,`XXX,`XXX,`XXX,`JSAPI,`SUCCESS,`CFT,`CNY,`0.01,`0.00,`XXX,`XXXX,`0.00000,`0.60%,`0.01,`',
      '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
      '`31,`3.05,`0.00,`0.00,`0.02000,`3.05,`0.00',
    ].join('\n');
    expectFailure(readBillAnswer(success), 'MALFORMED_BILL', /counts 31 trades but the bill has 1 lines/);
    const refund = [
      '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注',
      '`2019-07-23 20:53:36,`xxx,`xxx,`xxx,`,`xxx,`xxxx,`xxxxx,`JSAPI,`REFUND,`CFT,`CNY,`0.00,`0.00,`2019-07-23 20:53:36,`2019-07-23 20:53:40,`xxxx,`xxx,`0.01,`0.00,`ORIGINAL,`SUCCESS,`xxxx,`xxxx,`0.00000,`0.60%,`0.00,`0.01,`',
      '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
      '`4,`0.00,`2.02,`0.00,`-0.02000,`0.00,`2.02',
    ].join('\n');
    expectFailure(readBillAnswer(refund), 'MALFORMED_BILL', /counts 4 trades but the bill has 1 lines/);
    // With a summary of their own lines, both read, and the REFUND line carries its two times.
    const fixed = refund.replace('`4,`0.00,`2.02,`0.00,`-0.02000,`0.00,`2.02', '`1,`0.00,`0.01,`0.00,`0.00000,`0.00,`0.01');
    const bill = expectOk(readBillAnswer(fixed));
    expect(bill.layout).toBe('REFUND');
    expect(bill.rows[0]).toMatchObject({
      kind: 'refund',
      refundRequestTime: '2019-07-23 20:53:36',
      refundSuccessTime: '2019-07-23 20:53:40',
      refundFeeFen: 1,
      appliedRefundFeeFen: 1,
    });
    expect(
      expectOk(readBillAnswer(success.replace('`31,`3.05,`0.00,`0.00,`0.02000,`3.05', '`1,`0.01,`0.00,`0.00,`0.00000,`0.01'))).layout,
    ).toBe('SUCCESS');
  });
});

describe("WeChat Pay's other answers", () => {
  it.each([
    // A real answer, quoted on WeChat's developer community (developers.weixin.qq.com/community/pay/doc/000a6227c40f583e4598ad7f15fc00).
    [
      '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>',
      'NO_BILL',
    ],
    ['<xml><return_code>FAIL</return_code><return_msg>NO Bill Exist</return_msg></xml>', 'NO_BILL'],
    ['<xml><return_code>FAIL</return_code><return_msg>not found</return_msg><err_code>NO_BILL_EXIST</err_code></xml>', 'NO_BILL'],
    ['No Bill Exist', 'NO_BILL'],
    ['\uFEFFNo Bill Exist\r\n', 'NO_BILL'],
    ['<xml><return_code>FAIL</return_code><return_msg>Bill Creating</return_msg></xml>', 'BILL_CREATING'],
    ['<xml><return_code>FAIL</return_code><return_msg>wait</return_msg><err_code>BILL_CREATING</err_code></xml>', 'BILL_CREATING'],
    ['<xml><return_code>FAIL</return_code><return_msg>SYSTEMERROR</return_msg></xml>', 'SYSTEM_ERROR'],
    ['<xml><return_code>FAIL</return_code><return_msg>CompressGZip Error</return_msg></xml>', 'SYSTEM_ERROR'],
    // w7corp/easywechat's tests of its downloadbill client.
    [
      '<xml><return_code><![CDATA[FAIL]]></return_code>\n<return_msg><![CDATA[invalid bill_date]]></return_msg>\n<error_code><![CDATA[20001]]></error_code>\n</xml>',
      'REFUSED',
    ],
    [
      '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[sign error]]></return_msg><error_code><![CDATA[20001]]></error_code></xml>',
      'REFUSED',
    ],
  ])('%s → %s', (answer, reason) => {
    expectFailure(readBillAnswer(answer), reason);
    expectFailure(readBillAnswer(Buffer.from(answer)), reason);
  });

  it("names WeChat Pay's own words in the message", () => {
    const answer = '<xml><return_code>FAIL</return_code><return_msg>invalid bill_date</return_msg><error_code>20001</error_code></xml>';
    expectFailure(readBillAnswer(answer), 'REFUSED', /"invalid bill_date" \(error_code "20001"\)/);
  });

  it.each([
    ['<xml><return_code>SUCCESS</return_code></xml>', /neither a bill nor a refusal/],
    ['<xml><return_code>FAIL</return_code>', /not a WeChat Pay document/],
    ['<!DOCTYPE x [<!ENTITY a "b">]><xml><return_code>FAIL</return_code></xml>', /not a WeChat Pay document/],
    ['<html><body>502 Bad Gateway</body></html>', /not a WeChat Pay document/],
  ])('refuses %s as malformed', (answer, message) => {
    expectFailure(readBillAnswer(answer), 'MALFORMED_BILL', message);
  });
});

describe('amounts: yuan text to integer fen, exactly', () => {
  it.each([
    ['0', 0],
    ['0.0', 0],
    ['0.00', 0],
    ['0.01', 1],
    ['0.1', 10],
    ['0.47', 47],
    ['6.00', 600],
    ['100.00', 10000],
    ['19.99', 1999],
    ['1.10', 110],
    ['999999999999.99', 99999999999999],
  ])('%s yuan is %d fen', (yuan, fen) => {
    expect(yuanToFen(yuan)).toBe(fen);
  });

  it.each([
    '1.234',
    '-1',
    '-0.01',
    '1e3',
    '1E3',
    '',
    '`',
    '``',
    ' 1',
    '1 ',
    '01',
    '00.01',
    '1.',
    '.5',
    '+1',
    '0x10',
    'NaN',
    'Infinity',
    '1,000.00',
    '１.00',
    '1.2.3',
    '0.001',
    '1000000000000.00',
    '0.0000',
  ])('refuses %j', (yuan) => {
    expect(yuanToFen(yuan)).toBeUndefined();
  });

  it('any whole fen written as yuan reads back as the same fen', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999_999_999_999 }), (fen) => {
        expect(yuanToFen(fenToYuan(fen))).toBe(fen);
      }),
    );
  });

  it('a fee is signed, has up to five decimals and is whole fen', () => {
    expect(feeYuanToFen('0.04000')).toBe(4);
    expect(feeYuanToFen('-0.02000')).toBe(-2);
    expect(Object.is(feeYuanToFen('-0.00000'), 0)).toBe(true);
    expect(feeYuanToFen('0')).toBe(0);
    expect(feeYuanToFen('0.08')).toBe(8);
    for (const bad of ['0.00500', '0.05940', '0.000001', '--1', '-', '1e-2', '0.04000 ']) expect(feeYuanToFen(bad)).toBeUndefined();
    fc.assert(
      fc.property(fc.integer({ min: -99_999_999_999_999, max: 99_999_999_999_999 }), (fen) => {
        expect(feeYuanToFen(`${fenToYuan(fen)}000`)).toBe(fen);
        expect(feeYuanToFen(fenToYuan(fen))).toBe(fen);
      }),
    );
  });

  it('fenToYuan writes two decimals and refuses what is not whole fen', () => {
    expect(fenToYuan(1)).toBe('0.01');
    expect(fenToYuan(10000)).toBe('100.00');
    expect(fenToYuan(-4)).toBe('-0.04');
    expect(() => fenToYuan(0.5)).toThrow(TypeError);
  });
});

describe('the fee rule: the rate of the amount, rounded to whole fen', () => {
  it.each([
    [600, '0.60%', 4], // WxJava WxPayBillResultTest: 6.00 → 0.04000
    [3, '39.00%', 1], // bill.ALL.csv: 0.03 → 0.01000
    [1, '39.00%', 0], // bill.ALL.csv: 0.01 → 0.00000
    [1, '0.90%', 0], // WeChat cloud hosting's bill sample: 0.01 → 0.00000
    [84, '0.60%', 1], // 0.504 fen rounds up
    [83, '0.60%', 0], // 0.498 fen rounds down
    [10000, '0.60%', 60],
  ])('%d fen at %s is %d fen', (amountFen, rate, fee) => {
    expect(wechatPayFeeFen(amountFen, rate)).toBe(fee);
  });
});

// --------------------------------------------------------------------------------------------
// Properties

const DIGITS = fc.stringMatching(/^[0-9]{1,32}$/);
const ID = fc.stringMatching(/^[0-9A-Za-z_-]{1,32}$/);
/** Any well-formed text a bill can carry: no ",`" and no line break. */
const FREE_TEXT = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((text) => !text.includes(',`') && !/[\r\n]/.test(text));
const TIME = fc
  .date({ min: new Date('2015-01-01T00:00:00Z'), max: new Date('2035-12-31T23:59:59Z'), noInvalidDate: true })
  .map((date) => date.toISOString().slice(0, 19).replace('T', ' '));
const FEN = fc.integer({ min: 0, max: 10_000_000_000 });

const ROW: fc.Arbitrary<BillRow> = fc
  .record({
    tradeState: fc.constantFrom('SUCCESS', 'REFUND', 'REVOKED'),
    tradeTime: TIME,
    appId: ID,
    mchId: DIGITS,
    subMchId: DIGITS,
    deviceInfo: FREE_TEXT,
    transactionId: DIGITS,
    outTradeNo: ID,
    openid: ID,
    tradeType: fc.constantFrom('JSAPI', 'NATIVE', 'APP', 'MWEB', 'MICROPAY'),
    bankType: fc.constantFrom('OTHERS', 'CFT', 'CMB_CREDIT', 'PSBC_DEBIT'),
    feeType: fc.constant('CNY'),
    settlementTotalFeeFen: FEN,
    couponFeeFen: FEN,
    refundId: DIGITS,
    outRefundNo: ID,
    refundFeeFen: FEN,
    couponRefundFeeFen: FEN,
    refundType: fc.constantFrom('', 'ORIGINAL', 'BALANCE'),
    refundStatus: fc.constantFrom('', 'SUCCESS', 'PROCESSING'),
    productName: FREE_TEXT,
    attach: FREE_TEXT,
    feeFen: fc.integer({ min: -100_000_000, max: 100_000_000 }),
    rate: fc.constantFrom('0.60%', '0.38%', '1.00%', '39.00%'),
    totalFeeFen: FEN,
    appliedRefundFeeFen: FEN,
    rateRemark: FREE_TEXT,
  })
  .map((fields) => ({
    kind: fields.tradeState === 'SUCCESS' ? 'payment' : fields.tradeState === 'REFUND' ? 'refund' : 'other',
    ...fields,
  }));

/** Orders and refunds as the emulator and WeChat Pay write them. */
const ORDER_OR_REFUND: fc.Arbitrary<BillRow> = fc.oneof(
  fc
    .record({
      tradeTime: TIME,
      transactionId: DIGITS,
      outTradeNo: ID,
      openid: ID,
      totalFeeFen: fc.integer({ min: 1, max: 10_000_000_000 }),
      productName: FREE_TEXT,
      attach: FREE_TEXT,
    })
    .map((line) => paymentRow({ ...line, appId: 'wxd930ea5d5a258f4f', mchId: '10000100', tradeType: 'NATIVE' })),
  fc
    .record({
      tradeTime: TIME,
      transactionId: DIGITS,
      outTradeNo: ID,
      openid: ID,
      refundId: DIGITS,
      outRefundNo: ID,
      refundFeeFen: fc.integer({ min: 1, max: 10_000_000_000 }),
      productName: FREE_TEXT,
    })
    .map((line) => refundRow({ ...line, appId: 'wxd930ea5d5a258f4f', mchId: '10000100', tradeType: 'JSAPI' })),
);

const VARIANT = fc.record({ bom: fc.boolean(), lineEnding: fc.constantFrom<'\n' | '\r\n'>('\n', '\r\n') });

describe('properties', () => {
  it('any orders and refunds → bill text → reader → the same orders and refunds, and their summary', () => {
    fc.assert(
      fc.property(fc.array(ORDER_OR_REFUND, { maxLength: 20 }), VARIANT, (rows, variant) => {
        const bill = expectOk(readBillAnswer(writeBill(rows, variant)));
        expect(bill.rows).toEqual(rows);
        expect(bill.summary).toEqual(summarize(rows));
        expect(bill.rows.filter((row) => row.kind === 'payment').length + bill.rows.filter((row) => row.kind === 'refund').length).toBe(
          rows.length,
        );
      }),
    );
  });

  it('any rows at all round-trip, as text, as UTF-8 bytes and gzipped, with or without BOM and CRLF', () => {
    fc.assert(
      fc.property(fc.array(ROW, { maxLength: 10 }), VARIANT, (rows, variant) => {
        const text = writeBill(rows, variant);
        const expected = { ok: true, layout: 'ALL', rows, summary: summarize(rows) };
        expect(readBillAnswer(text)).toEqual(expected);
        expect(readBillAnswer(Buffer.from(text))).toEqual(expected);
        expect(readBillAnswer(gzipSync(text))).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('a BOM and CRLF line ends change nothing', () => {
    fc.assert(
      fc.property(fc.array(ROW, { maxLength: 8 }), (rows) => {
        const plain = readBillAnswer(writeBill(rows));
        expect(readBillAnswer(writeBill(rows, { bom: true }))).toEqual(plain);
        expect(readBillAnswer(writeBill(rows, { lineEnding: '\r\n' }))).toEqual(plain);
        expect(readBillAnswer(writeBill(rows, { bom: true, lineEnding: '\r\n' }))).toEqual(plain);
      }),
      { numRuns: 40 },
    );
  });

  it('a bill cut anywhere is refused, or (cut inside trailing zeros or line ends) reads the same', () => {
    fc.assert(
      fc.property(fc.array(ORDER_OR_REFUND, { minLength: 1, maxLength: 6 }), fc.nat(), (rows, at) => {
        const text = writeBill(rows, { lineEnding: '\r\n' });
        const cut = text.slice(0, at % text.length);
        const result = readBillAnswer(cut);
        if (result.ok) {
          expect(result.rows).toEqual(rows);
        } else {
          expect(result.reason).toBe('MALFORMED_BILL');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('never throws, whatever the bytes', () => {
    const header = BILL_LAYOUTS.ALL.columns.map((column) => column.names[0]).join(',');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.string({ unit: 'binary', maxLength: 200 }).map((tail) => `${header}\n\`${tail}`),
          fc
            .array(fc.constantFrom('`', ',', '\n', '\r', '总交易单数', '0.01', 'SUCCESS', '<xml>', '\uFEFF', header), { maxLength: 40 })
            .map((parts) => parts.join('')),
        ),
        (input) => {
          const result = readBillAnswer(input);
          expect(typeof result.ok).toBe('boolean');
        },
      ),
      { numRuns: 300 },
    );
  });
});

// --------------------------------------------------------------------------------------------
// Hostile bills

const TWO_ROWS = writeBill([
  paymentRow({
    tradeTime: '2026-11-30 12:00:00',
    appId: 'wxd930ea5d5a258f4f',
    mchId: '10000100',
    transactionId: '4200000540202611301234567890',
    outTradeNo: '20261130abcdefghijABCDEFGHIJ',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    tradeType: 'JSAPI',
    totalFeeFen: 1000,
    productName: '咖啡',
  }),
  refundRow({
    tradeTime: '2026-11-30 13:00:00',
    appId: 'wxd930ea5d5a258f4f',
    mchId: '10000100',
    transactionId: '4200000540202611301234567890',
    outTradeNo: '20261130abcdefghijABCDEFGHIJ',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    tradeType: 'JSAPI',
    refundId: '50000000000000000000000000001',
    outRefundNo: 'R1',
    refundFeeFen: 500,
    productName: '咖啡',
  }),
]);
const [HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY] = TWO_ROWS.trimEnd().split('\n') as [string, string, string, string, string];

function withField(line: string, index: number, value: string): string {
  const fields = line.slice(1).split(',`');
  fields[index] = value;
  return `\`${fields.join(',`')}`;
}

const column = (name: string) => BILL_LAYOUTS.ALL.columns.findIndex((c) => c.names[0] === name);

describe('hostile bills are refused with a reason, never a throw', () => {
  it('the two-line bill itself reads', () => {
    const bill = expectOk(readBillAnswer(TWO_ROWS));
    expect(bill.rows.map((row) => [row.kind, row.totalFeeFen, row.refundFeeFen, row.feeFen])).toEqual([
      ['payment', 1000, 0, 6],
      ['refund', 0, 500, -3],
    ]);
  });

  it.each(['1.234', '-1', '1e3', '`', '', ' 10.00', '10.00 ', '１０.00', '0x10', '10,00'])(
    'an amount %j is refused, naming the line and column',
    (amount) => {
      const bill = [HEADER, withField(PAYMENT, column('订单金额'), amount), REFUND, SUMMARY_HEADER, SUMMARY].join('\n');
      expectFailure(readBillAnswer(bill), 'MALFORMED_BILL', /line 2 订单金额/);
    },
  );

  it.each(['0.00600', 'abc', '--0.01'])('a fee %j is refused', (fee) => {
    const bill = [HEADER, withField(PAYMENT, column('手续费'), fee), REFUND, SUMMARY_HEADER, SUMMARY].join('\n');
    expectFailure(readBillAnswer(bill), 'MALFORMED_BILL', /line 2 手续费/);
  });

  it.each(['2026-11-31 12:00:00', '2026-11-30', '20261130120000', ''])('a trade time %j is refused', (time) => {
    const bill = [HEADER, withField(PAYMENT, 0, time), REFUND, SUMMARY_HEADER, SUMMARY].join('\n');
    expectFailure(readBillAnswer(bill), 'MALFORMED_BILL', /line 2 交易时间/);
  });

  it('a line with a field missing or one too many is refused', () => {
    const short = PAYMENT.slice(0, PAYMENT.lastIndexOf(',`'));
    expectFailure(
      readBillAnswer([HEADER, short, REFUND, SUMMARY_HEADER, SUMMARY].join('\n')),
      'MALFORMED_BILL',
      /line 2 has 26 fields, the header has 27/,
    );
    expectFailure(
      readBillAnswer([HEADER, `${PAYMENT},\`x`, REFUND, SUMMARY_HEADER, SUMMARY].join('\n')),
      'MALFORMED_BILL',
      /line 2 has 28 fields/,
    );
    // A value holding ",`" splits into two fields.
    const split = withField(PAYMENT, column('商品名称'), 'a,`b');
    expectFailure(readBillAnswer([HEADER, split, REFUND, SUMMARY_HEADER, SUMMARY].join('\n')), 'MALFORMED_BILL', /28 fields/);
  });

  it('a bill that lost a line is refused by its summary', () => {
    expectFailure(
      readBillAnswer([HEADER, PAYMENT, SUMMARY_HEADER, SUMMARY].join('\n')),
      'MALFORMED_BILL',
      /counts 2 trades but the bill has 1 lines/,
    );
  });

  it('a summary that does not add up is refused', () => {
    const wrong = SUMMARY.replace('`10.00,', '`10.01,');
    expect(wrong).not.toBe(SUMMARY);
    expectFailure(
      readBillAnswer([HEADER, PAYMENT, REFUND, SUMMARY_HEADER, wrong].join('\n')),
      'MALFORMED_BILL',
      /settlementTotalFeeFen is 10\.01 yuan but the lines add up to 1000 fen/,
    );
  });

  it.each([
    ['no summary', [HEADER, PAYMENT, REFUND], /without its summary/],
    ['no summary line', [HEADER, PAYMENT, REFUND, SUMMARY_HEADER], /without the summary/],
    ['a line after the summary', [HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY, PAYMENT], /line 6 follows the summary/],
    ['no header', [PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY], /no header line/],
    [
      'an unknown header',
      [HEADER.replace('商户号', 'merchant'), PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY],
      /unknown bill header of 27 columns/,
    ],
    ['a header with a column more', [`${HEADER},新列`, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY], /unknown bill header of 28 columns/],
    ['a stray line among the data', [HEADER, PAYMENT, 'hello', REFUND, SUMMARY_HEADER, SUMMARY], /line 3 is neither a data line/],
    [
      'the old summary under the new header',
      [HEADER, PAYMENT, REFUND, '总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额', '`2,`10.00,`5.00,`0.00,`0.03'],
      /not the summary header of a ALL bill/,
    ],
    [
      'a summary of six fields',
      [HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY.slice(0, SUMMARY.lastIndexOf(',`'))],
      /has 6 fields, its header 7/,
    ],
    [
      'a count that is not one',
      [HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY.replace('`2,', '`2.5,')],
      /总交易单数 "2.5" is not a count/,
    ],
    ['empty', [''], /empty/],
  ])('%s', (_name, lines, message) => {
    expectFailure(readBillAnswer(lines.join('\r\n')), 'MALFORMED_BILL', message);
  });

  it('bytes that are not UTF-8 are refused', () => {
    const bytes = Buffer.concat([Buffer.from(TWO_ROWS.slice(0, 100)), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(TWO_ROWS.slice(100))]);
    expectFailure(readBillAnswer(bytes), 'MALFORMED_BILL', /not valid UTF-8/);
  });

  it('gzip that is corrupt or cut short is refused', () => {
    const zipped = gzipSync(TWO_ROWS);
    expectFailure(readBillAnswer(zipped.subarray(0, zipped.length - 10)), 'MALFORMED_BILL', /gzip/);
    const corrupt = Buffer.from(zipped);
    corrupt[20] = (corrupt[20] as number) ^ 0xff;
    expectFailure(readBillAnswer(corrupt), 'MALFORMED_BILL');
  });

  it('a gzip bomb stops at the limit: 1 GiB of zeros in 1 MB of gzip', () => {
    // Gzip members may be concatenated; 1024 copies of one gzipped MiB inflate to 1 GiB.
    const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 1024 }, () => member));
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const started = performance.now();
    expectFailure(readBillAnswer(bomb), 'TOO_LARGE', /inflates to over 104857600 bytes/);
    const small = bomb.subarray(0, member.length * 64);
    expectFailure(readBillAnswer(small, { maxBytes: 1024 * 1024 }), 'TOO_LARGE', /inflates to over 1048576 bytes/);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('an answer over the limit is refused before it is read', () => {
    expectFailure(readBillAnswer(TWO_ROWS, { maxBytes: 100 }), 'TOO_LARGE', /over the 100-byte limit/);
    expectFailure(readBillAnswer(Buffer.from(TWO_ROWS), { maxBytes: 100 }), 'TOO_LARGE');
  });

  it('the writer refuses values no bill can carry', () => {
    const row = expectOk(readBillAnswer(TWO_ROWS)).rows[0] as BillRow;
    expect(() => writeBill([{ ...row, productName: 'a,`b' }])).toThrow(/商品名称/);
    expect(() => writeBill([{ ...row, attach: 'a\nb' }])).toThrow(/商户数据包/);
    expect(() => writeBill([{ ...row, totalFeeFen: -1 }])).toThrow(/订单金额/);
    expect(() => writeBill([{ ...row, totalFeeFen: 1.5 }])).toThrow(/订单金额/);
  });
});

// --------------------------------------------------------------------------------------------
// The emulator's bills

describe("the emulator's bills", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startTestEmulator();
  });
  afterAll(() => emulator.close());

  const yesterday = () => toBeijingTimestamp(new Date(Date.now() - 24 * 60 * 60 * 1000)).slice(0, 8);
  /** What unifiedorder and a bill both carry: no 4-byte characters, no controls, no ",`". */
  const BODY = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
    // eslint-disable-next-line no-control-regex
    .filter((text) => !/[\u{10000}-\u{10FFFF}\u0000-\u001F\u007F\uFFFE\uFFFF]/u.test(text) && !text.includes(',`') && text.trim() !== '');
  const ORDER = fc.record({
    totalFee: fc.integer({ min: 1, max: 9_999_999_999 }),
    body: BODY,
    attach: fc.option(fc.stringMatching(/^[0-9A-Za-z ._-]{1,20}$/), { nil: undefined }),
    seconds: fc.integer({ min: 0, max: 86_399 }),
    paid: fc.constantFrom('yesterday', 'today', 'never'),
  });

  it("any orders paid yesterday → the emulator's bill → reader → exactly those orders, amounts and fees", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(ORDER, { maxLength: 6 }), fc.boolean(), async (orders, gzip) => {
        await control(emulator, 'POST', '/__sim/reset');
        type Line = [
          outTradeNo: string,
          totalFeeFen: number,
          transactionId: string,
          productName: string,
          tradeTime: string,
          feeFen: number,
        ];
        const expected: Line[] = [];
        for (const order of orders) {
          const fields = orderFields({ total_fee: String(order.totalFee), body: order.body, attach: order.attach });
          expect((await call(emulator, 'unifiedorder', fields)).fields.result_code).toBe('SUCCESS');
          if (order.paid === 'never') continue;
          const clock = new Date(order.seconds * 1000).toISOString().slice(11, 19).replaceAll(':', '');
          const timeEnd = order.paid === 'yesterday' ? `${yesterday()}${clock}` : undefined;
          const paid = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no, time_end: timeEnd });
          if (order.paid !== 'yesterday') continue;
          const time = `${yesterday().replace(/^(\d{4})(\d{2})(\d{2})$/, '$1-$2-$3')} ${clock.replace(/^(\d{2})(\d{2})(\d{2})$/, '$1:$2:$3')}`;
          expected.push([
            fields.out_trade_no ?? '',
            order.totalFee,
            String(paid.json.transaction_id),
            order.body,
            time,
            wechatPayFeeFen(order.totalFee),
          ]);
        }
        const result = await downloadBill({ ...MERCHANT, baseUrl: emulator.url }, { billDate: yesterday(), gzip });
        if (expected.length === 0) {
          expect(result).toMatchObject({ ok: false, reason: 'NO_BILL' });
          return;
        }
        const bill = expectOk(result);
        const byNo = (a: Line, b: Line) => a[0].localeCompare(b[0]);
        expect(
          bill.rows
            .map((row): Line => [row.outTradeNo, row.totalFeeFen, row.transactionId, row.productName, row.tradeTime, row.feeFen])
            .sort(byNo),
        ).toEqual(expected.sort(byNo));
        expect(bill.rows.every((row) => row.kind === 'payment' && row.rate === '0.60%')).toBe(true);
        expect(bill.summary.totalFeeFen).toBe(expected.reduce((sum, row) => sum + row[1], 0));
      }),
      { numRuns: 12 },
    );
  });
});
