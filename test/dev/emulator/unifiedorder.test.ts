import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign, verifySignature } from '../../../lib/wechatpay/sign';
import type { SignType } from '../../../lib/wechatpay/sign';
import { buildXml } from '../../../lib/wechatpay/xml';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, MERCHANT, orderFields, postRaw, startTestEmulator } from '../../support/emulator';

let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startTestEmulator();
});
afterAll(() => emulator.close());

describe('communication faults answer return_code=FAIL, unsigned', () => {
  it.each([
    ['GET', undefined, '请使用post方法'],
    ['POST', '', 'post数据为空'],
    ['POST', '<xml><appid>wx', 'XML格式错误'],
    ['POST', '{"appid":"wx"}', 'XML格式错误'],
    ['POST', '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>', 'XML格式错误'],
  ])('%s %j → %s', async (method, body, message) => {
    const reply = await postRaw(emulator, '/pay/unifiedorder', body, method);
    expect(reply.status).toBe(200);
    expect(reply.fields).toEqual({ return_code: 'FAIL', return_msg: message });
  });

  it('refuses a wrong key, a tampered field and a signature of the other type (SIGNERROR)', async () => {
    const wrongKey = await call(emulator, 'unifiedorder', orderFields(), 'MD5', 'x'.repeat(32));
    expect(wrongKey.fields).toEqual({ return_code: 'FAIL', return_msg: '签名错误' });

    const fields = orderFields();
    const signed = { ...fields, sign: sign(fields, MERCHANT.apiKey, 'MD5'), total_fee: '1' };
    const tampered = await postRaw(emulator, '/pay/unifiedorder', buildXml(signed));
    expect(tampered.fields.return_msg).toBe('签名错误');

    // Declares HMAC-SHA256 but carries an MD5 signature.
    const declared = { ...orderFields(), sign_type: 'HMAC-SHA256' };
    const mismatched = { ...declared, sign: sign(declared, MERCHANT.apiKey, 'MD5') };
    expect((await postRaw(emulator, '/pay/unifiedorder', buildXml(mismatched))).fields.return_code).toBe('FAIL');
  });

  it('refuses a sign_type that is neither MD5 nor HMAC-SHA256', async () => {
    const fields = { ...orderFields(), sign_type: 'SHA1' };
    const reply = await postRaw(emulator, '/pay/unifiedorder', buildXml({ ...fields, sign: sign(fields, MERCHANT.apiKey, 'MD5') }));
    expect(reply.fields.return_code).toBe('FAIL');
  });
});

describe('signatures in both sign types', () => {
  it.each<SignType>(['MD5', 'HMAC-SHA256'])('accepts %s and signs the answer the same way, without sign_type', async (signType) => {
    const reply = await call(emulator, 'unifiedorder', orderFields(), signType);
    expect(reply.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS' });
    expect(reply.fields.sign_type).toBeUndefined();
    expect(reply.fields.sign).toHaveLength(signType === 'MD5' ? 32 : 64);
    expect(verifySignature(reply.fields, MERCHANT.apiKey, signType)).toEqual({ ok: true, signType });
    expect(reply.fields).toMatchObject({ appid: MERCHANT.appId, mch_id: MERCHANT.mchId });
    expect(reply.fields.nonce_str).toMatch(/^[0-9A-Za-z]{1,32}$/);
  });
});

describe('merchant and app ids', () => {
  it.each([
    [{ mch_id: '19999999' }, 'MCHID_NOT_EXIST'],
    [{ appid: 'not-an-app' }, 'APPID_NOT_EXIST'],
    [{ appid: 'wx0123456789abcdef' }, 'APPID_MCHID_NOT_MATCH'],
    [{ appid: undefined }, 'LACK_PARAMS'],
    [{ mch_id: undefined }, 'LACK_PARAMS'],
  ])('%j → %s', async (overrides, errCode) => {
    const reply = await call(emulator, 'unifiedorder', orderFields(overrides));
    expect(reply.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: errCode });
    expect(reply.fields.err_code_des).toBeTruthy();
  });
});

describe('parameters', () => {
  it.each([
    ['body', 'LACK_PARAMS'],
    ['out_trade_no', 'LACK_PARAMS'],
    ['total_fee', 'LACK_PARAMS'],
    ['spbill_create_ip', 'LACK_PARAMS'],
    ['notify_url', 'LACK_PARAMS'],
    ['trade_type', 'LACK_PARAMS'],
    ['nonce_str', 'LACK_PARAMS'],
  ])('without %s → %s', async (name, errCode) => {
    const reply = await call(emulator, 'unifiedorder', orderFields({ [name]: undefined }));
    expect(reply.fields).toMatchObject({ result_code: 'FAIL', err_code: errCode });
    expect(verifySignature(reply.fields, MERCHANT.apiKey, 'MD5').ok).toBe(true);
  });

  it.each<[string, Record<string, string | undefined>]>([
    ['total_fee 0', { total_fee: '0' }],
    ['total_fee in yuan', { total_fee: '1.00' }],
    ['total_fee negative', { total_fee: '-1' }],
    ['out_trade_no too short', { out_trade_no: 'abc12' }],
    ['out_trade_no too long', { out_trade_no: 'a'.repeat(33) }],
    ['out_trade_no with a dot', { out_trade_no: 'order.12345' }],
    ['JSAPI without openid', { trade_type: 'JSAPI' }],
    ['NATIVE without product_id', { product_id: undefined }],
    ['unknown trade_type', { trade_type: 'MICROPAY' }],
    ['time_start not a Beijing timestamp', { time_start: '2024-01-01 10:00:00' }],
    ['time_expire on 31 February', { time_expire: '20250231120000' }],
    ['time_expire already past', { time_expire: '20200101000000' }],
    ['notify_url with a query', { notify_url: 'https://merchant.example.com/notify?order=1' }],
    ['notify_url not http', { notify_url: 'ftp://merchant.example.com/notify' }],
    ['notify_url not a URL', { notify_url: 'merchant.example.com/notify' }],
    ['body of 129 characters', { body: '商'.repeat(129) }],
    ['an emoji in body', { body: 'coffee ☕ 🍰' }],
    ['an emoji in attach', { attach: '🎁' }],
    ['spbill_create_ip not an IP', { spbill_create_ip: 'localhost' }],
  ])('%s → PARAM_ERROR', async (_case, overrides) => {
    const reply = await call(emulator, 'unifiedorder', orderFields(overrides));
    expect(reply.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'PARAM_ERROR' });
  });

  it('accepts what WeChat Pay accepts at the edges', async () => {
    const reply = await call(
      emulator,
      'unifiedorder',
      orderFields({
        body: '商'.repeat(128),
        out_trade_no: `ab|*_-${Date.now()}`.slice(0, 32),
        total_fee: '1',
        spbill_create_ip: '2001:db8::1',
        notify_url: 'http://127.0.0.1:3000/wechatpay/notify',
        time_start: '20300101000000',
        time_expire: '20300101000100',
      }),
    );
    expect(reply.fields).toMatchObject({ result_code: 'SUCCESS' });
  });
});

describe('orders by trade type', () => {
  it('JSAPI: a prepay_id of WeChat Pay shape', async () => {
    const reply = await call(
      emulator,
      'unifiedorder',
      orderFields({ trade_type: 'JSAPI', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', product_id: undefined }),
      'HMAC-SHA256',
    );
    expect(reply.fields).toMatchObject({ result_code: 'SUCCESS', trade_type: 'JSAPI' });
    expect(reply.fields.prepay_id).toMatch(/^wx\d{14}[0-9a-f]{20}$/);
    expect(reply.fields.code_url).toBeUndefined();
  });

  it('NATIVE: a code_url', async () => {
    const reply = await call(emulator, 'unifiedorder', orderFields());
    expect(reply.fields.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=[0-9A-Za-z]{7}$/);
  });

  it('MWEB: an https mweb_url naming the prepay_id', async () => {
    const reply = await call(emulator, 'unifiedorder', orderFields({ trade_type: 'MWEB', product_id: undefined }));
    const url = new URL(reply.fields.mweb_url ?? '');
    expect(url.protocol).toBe('https:');
    expect(url.searchParams.get('prepay_id')).toBe(reply.fields.prepay_id);
    expect(url.searchParams.get('package')).toMatch(/^\d+$/);
  });

  it('APP: a prepay_id only', async () => {
    const reply = await call(emulator, 'unifiedorder', orderFields({ trade_type: 'APP', product_id: undefined }));
    expect(reply.fields).toMatchObject({ result_code: 'SUCCESS', trade_type: 'APP' });
    expect(reply.fields.mweb_url ?? reply.fields.code_url).toBeUndefined();
  });
});

describe('calling again with the same out_trade_no', () => {
  it('an identical repeat (new nonce_str and sign) gets the same prepay_id and code_url', async () => {
    const fields = orderFields({ attach: '{"cart":7}' });
    const first = await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256');
    const again = await call(emulator, 'unifiedorder', { ...fields, nonce_str: 'another0nonce' }, 'HMAC-SHA256');
    expect(again.fields).toMatchObject({ result_code: 'SUCCESS', prepay_id: first.fields.prepay_id, code_url: first.fields.code_url });
  });

  it('an absent sign_type and an explicit MD5 are the same parameters', async () => {
    const fields = orderFields();
    const first = await call(emulator, 'unifiedorder', fields);
    const again = await call(emulator, 'unifiedorder', { ...fields, sign_type: 'MD5' });
    expect(again.fields.prepay_id).toBe(first.fields.prepay_id);
  });

  it.each<[string, Record<string, string | undefined>]>([
    ['total_fee', { total_fee: '102' }],
    ['body', { body: 'other' }],
    ['spbill_create_ip', { spbill_create_ip: '203.0.113.8' }],
    ['an added time_expire', { time_expire: '20300101000000' }],
    ['a removed product_id (now a different trade)', { trade_type: 'APP', product_id: undefined }],
  ])('a repeat with a changed %s → INVALID_REQUEST 201 商户订单号重复', async (_case, overrides) => {
    const fields = orderFields();
    await call(emulator, 'unifiedorder', fields);
    const again = await call(emulator, 'unifiedorder', { ...fields, ...overrides });
    expect(again.fields).toMatchObject({ result_code: 'FAIL', err_code: 'INVALID_REQUEST', err_code_des: '201 商户订单号重复' });
  });

  it('a repeat with another sign type is a change too', async () => {
    const fields = orderFields();
    await call(emulator, 'unifiedorder', fields, 'MD5');
    const again = await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256');
    expect(again.fields.err_code).toBe('INVALID_REQUEST');
  });
});
