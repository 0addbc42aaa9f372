import { describe, expect, it, vi } from 'vitest';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { randomDigits, signedNotification } from '../../../dev/wechatpay-documents/payment-notification';
import { parseXml } from '../../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { SAMPLE_OUT_TRADE_NO, sampleCallback } from '../../support/callbacks';

const { appId, mchId, apiKey } = TEST_MERCHANT;
const OUT_TRADE_NO = SAMPLE_OUT_TRADE_NO;
const callback = sampleCallback;

describe('signedNotification', () => {
  it('builds a realistic callback WeChat Pay would send for a payment', () => {
    const fields = parseXml(callback('HMAC-SHA256'));
    expect(fields).toMatchObject({
      return_code: 'SUCCESS',
      appid: appId,
      mch_id: mchId,
      result_code: 'SUCCESS',
      is_subscribe: 'N',
      trade_type: 'JSAPI',
      fee_type: 'CNY',
      total_fee: '100',
      cash_fee: '100',
      out_trade_no: OUT_TRADE_NO,
      time_end: '20240101081502',
    });
    expect(fields.transaction_id).toMatch(/^4200\d{24}$/);
    expect(fields.nonce_str).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(fields.sign).toMatch(/^[0-9A-F]{64}$/);
    // Like WeChat Pay, it does not declare the sign type unless asked to.
    expect(fields.sign_type).toBeUndefined();
  });

  it('adds coupon fields and lowers cash_fee', () => {
    const body = signedNotification({
      apiKey,
      signType: 'MD5',
      fields: { appid: appId, mch_id: mchId, out_trade_no: OUT_TRADE_NO, total_fee: '100' },
      coupons: [
        { id: '10000', fee: 10 },
        { id: '10001', fee: 5, type: 'CASH' },
      ],
    });
    expect(parseXml(body)).toMatchObject({
      cash_fee: '85',
      coupon_fee: '15',
      coupon_count: '2',
      coupon_id_0: '10000',
      coupon_fee_0: '10',
      coupon_type_0: 'NO_CASH',
      coupon_type_1: 'CASH',
    });
  });
});

describe('randomness of test documents', () => {
  it('draws transaction ids and nonces from node:crypto, not Math.random', () => {
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const [a, b] = [parseXml(callback('MD5')), parseXml(callback('MD5'))];
      expect(a.transaction_id).not.toBe(b.transaction_id);
      expect(a.nonce_str).not.toBe(b.nonce_str);
      expect(randomDigits(40)).toMatch(/^\d{40}$/);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it("signs through the product's signing path, leaving out empty fields", () => {
    const fields = parseXml(callback('HMAC-SHA256', { attach: '', device_info: 'WEB' }, true));
    expect(fields).not.toHaveProperty('attach');
    expect(fields.sign_type).toBe('HMAC-SHA256');
    expect(verifySignature(fields, apiKey).ok).toBe(true);
  });
});
