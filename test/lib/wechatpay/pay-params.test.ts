import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appPayParams, jsapiPayParams } from '../../../lib/wechatpay/pay-params';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';

const { appId, mchId, apiKey } = TEST_MERCHANT;
const now = new Date('2024-01-01T00:00:00.999Z');
const prepayId = 'wx201410272009395522657a690389285100';

/** The signature recomputed here from the documented rule, independently of lib/wechatpay/sign. */
function independentSign(pairs: Record<string, string>, signType: 'MD5' | 'HMAC-SHA256'): string {
  const text = `${Object.keys(pairs)
    .sort()
    .map((k) => `${k}=${pairs[k]}`)
    .join('&')}&key=${apiKey}`;
  const hash = signType === 'MD5' ? createHash('md5') : createHmac('sha256', apiKey);
  return hash.update(text, 'utf8').digest('hex').toUpperCase();
}

describe('JSAPI / mini-program pay params', () => {
  it.each(['MD5', 'HMAC-SHA256'] as const)('signs appId, nonceStr, package, signType, timeStamp with %s', (signType) => {
    const params = jsapiPayParams({ appId, prepayId, signType, apiKey, now });
    expect(Object.keys(params).sort()).toEqual(['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
    expect(params).toMatchObject({ appId, package: `prepay_id=${prepayId}`, signType, timeStamp: '1704067200' });
    expect(typeof params.timeStamp).toBe('string');
    expect(params.nonceStr).toMatch(/^[A-Za-z0-9]{32}$/);
    const { paySign, ...signed } = params;
    expect(paySign).toBe(independentSign(signed, signType));
  });

  it('gives a new nonce every time and refuses a missing prepay id', () => {
    const a = jsapiPayParams({ appId, prepayId, signType: 'MD5', apiKey, now });
    const b = jsapiPayParams({ appId, prepayId, signType: 'MD5', apiKey, now });
    expect(a.nonceStr).not.toBe(b.nonceStr);
    expect(() => jsapiPayParams({ appId, prepayId: '', signType: 'MD5', apiKey })).toThrow(/prepayId is required/);
  });
});

describe('APP pay params', () => {
  it.each(['MD5', 'HMAC-SHA256'] as const)('signs exactly the six lower-case fields with the order sign type %s', (signType) => {
    const params = appPayParams({ appId, mchId, prepayId, signType, apiKey, now });
    const { sign, ...signed } = params;
    expect(Object.keys(signed).sort()).toEqual(['appid', 'noncestr', 'package', 'partnerid', 'prepayid', 'timestamp']);
    expect(signed).toMatchObject({ appid: appId, partnerid: mchId, prepayid: prepayId, package: 'Sign=WXPay', timestamp: '1704067200' });
    expect(sign).toBe(independentSign(signed, signType));
  });
});
