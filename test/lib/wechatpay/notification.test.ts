import { describe, expect, it } from 'vitest';
import {
  notificationReply,
  parseNotification,
  verifyNotification,
  type UnverifiedNotification,
  type VerifyNotificationOptions,
} from '../../../lib/wechatpay/notification';
import { sign, type Fields } from '../../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { SAMPLE_OUT_TRADE_NO, sampleCallback } from '../../support/callbacks';

const { appId, mchId, apiKey } = TEST_MERCHANT;
const merchant: VerifyNotificationOptions = { apiKey, appId, mchId };
const OUT_TRADE_NO = SAMPLE_OUT_TRADE_NO;
const callback = sampleCallback;

function parsed(body: string): UnverifiedNotification {
  const result = parseNotification(body);
  if (!result.ok) throw new Error(`unexpected parse failure: ${result.message}`);
  return result;
}

/** Re-sign a callback's fields after changing them, as a forger with the wrong key would. */
function tampered(body: string, change: Fields): string {
  return buildXml({ ...parseXml(body), ...change });
}

describe('verifying a callback', () => {
  it('verifies a callback without sign_type with the order sign type', () => {
    const body = callback('HMAC-SHA256');
    const result = verifyNotification(parsed(body), { ...merchant, orderSignType: 'HMAC-SHA256' });
    expect(result.ok).toBe(true);
    if (!result.ok || result.payment.resultCode !== 'SUCCESS') throw new Error('expected a verified payment');
    expect(result.payment).toMatchObject({ outTradeNo: OUT_TRADE_NO, totalFee: '100', timeEnd: '20240101081502' });
    expect(result.payment.transactionId).toMatch(/^4200\d{24}$/);
    // Defaulting to MD5 (the classic HMAC-merchant bug) must fail, with a hint.
    const asMd5 = verifyNotification(parsed(body), merchant);
    expect(asMd5).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(!asMd5.ok && asMd5.message).toContain('was it signed with HMAC-SHA256?');
  });

  it("lets the callback's own sign_type win over the order's", () => {
    const body = callback('MD5', {}, true);
    expect(parseXml(body).sign_type).toBe('MD5');
    expect(verifyNotification(parsed(body), { ...merchant, orderSignType: 'HMAC-SHA256' }).ok).toBe(true);
  });

  it('keeps coupon and unknown fields in the signature', () => {
    const body = callback('MD5', { coupon_fee_0: '10', coupon_id_0: '10000', coupon_count: '1', rate_value: '6.5' });
    const result = verifyNotification(parsed(body), { ...merchant, orderSignType: 'MD5' });
    expect(result.ok && result.payment.fields.coupon_fee_0).toBe('10');
    const withoutCoupon = parseXml(body);
    delete withoutCoupon.coupon_fee_0;
    expect(verifyNotification(parsed(buildXml(withoutCoupon)), merchant)).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a tampered amount', () => {
    const body = tampered(callback('MD5'), { total_fee: '1' });
    expect(verifyNotification(parsed(body), merchant)).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a genuine callback for another appid or merchant', () => {
    // Signed with our key (e.g. a key shared across apps), but not for us.
    const foreignApp = callback('MD5', { appid: 'wx0000000000000000' });
    expect(verifyNotification(parsed(foreignApp), merchant)).toMatchObject({ ok: false, reason: 'FOREIGN_APPID' });
    const foreignMerchant = callback('MD5', { mch_id: '1900000109' });
    expect(verifyNotification(parsed(foreignMerchant), merchant)).toMatchObject({ ok: false, reason: 'FOREIGN_MCH_ID' });
  });

  it('refuses a tampered appid or mch_id through the signature', () => {
    for (const change of [{ appid: 'wx0000000000000000' }, { mch_id: '1900000109' }] as Fields[]) {
      const body = tampered(callback('MD5'), change);
      expect(verifyNotification(parsed(body), merchant)).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
    }
  });

  it('refuses an unsigned callback and a total_fee that is not fen', () => {
    const unsigned = parseXml(callback('MD5'));
    delete unsigned.sign;
    expect(verifyNotification(parsed(buildXml(unsigned)), merchant)).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
    // Correctly signed, but in yuan: the amount check must never see it as a number of fen.
    const yuan = callback('MD5', { total_fee: '1.00' });
    expect(verifyNotification(parsed(yuan), merchant)).toMatchObject({ ok: false, reason: 'BAD_TOTAL_FEE' });
  });

  it('reports a FAIL result as a verified failed payment, to be acknowledged', () => {
    const body = callback('MD5', { result_code: 'FAIL', err_code: 'NOTENOUGH', err_code_des: '余额不足', transaction_id: undefined });
    const result = verifyNotification(parsed(body), merchant);
    expect(result).toMatchObject({ ok: true, payment: { resultCode: 'FAIL', errCode: 'NOTENOUGH', outTradeNo: OUT_TRADE_NO } });
  });
});

describe('parsing a callback', () => {
  it('refuses malformed XML and XXE with a clear reason', () => {
    expect(parseNotification('<xml><return_code>SUCCESS</return_code>')).toMatchObject({ ok: false, reason: 'MALFORMED_XML' });
    const xxe = parseNotification('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>');
    expect(xxe).toMatchObject({ ok: false, reason: 'MALFORMED_XML', message: expect.stringMatching(/XXE/) });
  });

  it('reports a return_code other than SUCCESS', () => {
    const result = parseNotification(buildXml({ return_code: 'FAIL', return_msg: '签名失败' }));
    expect(result).toMatchObject({ ok: false, reason: 'RETURN_CODE_NOT_SUCCESS' });
    expect(!result.ok && result.message).toContain('签名失败');
  });

  it('needs out_trade_no to find the order', () => {
    const fields = { return_code: 'SUCCESS', appid: appId, mch_id: mchId, result_code: 'SUCCESS' };
    const body = buildXml({ ...fields, sign: sign(fields, apiKey, 'MD5') });
    expect(parseNotification(body)).toMatchObject({ ok: false, reason: 'MISSING_FIELD' });
  });

  it('reads raw bytes', () => {
    const result = parseNotification(new TextEncoder().encode(callback('MD5')));
    expect(result).toMatchObject({ ok: true, outTradeNo: OUT_TRADE_NO });
  });
});

describe('replies', () => {
  it('answers SUCCESS exactly as WeChat Pay expects', () => {
    expect(notificationReply('SUCCESS')).toBe(
      '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>',
    );
  });

  it('answers FAIL with a reason, even one with control characters or ]]>', () => {
    const reply = notificationReply('FAIL', 'bad\r\nsignature ]]> here');
    expect(parseXml(reply)).toEqual({ return_code: 'FAIL', return_msg: 'bad  signature ]]> here' });
  });
});
