import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWechatPayClient } from '../../../lib/wechatpay/client';
import type { WechatPayClientOptions } from '../../../lib/wechatpay/client-options';
import type { UnifiedOrderParams } from '../../../lib/wechatpay/unified-order';
import {
  WechatPayBusinessError,
  WechatPayCommunicationError,
  WechatPayConfigError,
  WechatPayError,
  WechatPayNetworkError,
  WechatPayResponseError,
} from '../../../lib/wechatpay/errors';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { buildXml } from '../../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { answer, businessError, ScriptedWechatPay } from '../../support/scripted-wechatpay';

const { appId, mchId, apiKey } = TEST_MERCHANT;

const ORDER: UnifiedOrderParams = {
  body: '测试商城-会员充值',
  out_trade_no: '20240101AbCdEfGhIjKlMnOpQrSt',
  total_fee: '1',
  spbill_create_ip: '203.0.113.7',
  notify_url: 'https://example.com/wechatpay/notify',
  trade_type: 'JSAPI',
  openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
  time_start: '20240101080000',
  time_expire: '20240101083000',
};

let wechat: ScriptedWechatPay;

function client(overrides: Partial<WechatPayClientOptions> = {}) {
  return createWechatPayClient({ appId, mchId, apiKey, baseUrl: wechat.url, retryDelayMs: 1, ...overrides });
}

async function failure(promise: Promise<unknown>): Promise<WechatPayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WechatPayError);
  const typed = error as WechatPayError;
  // Whatever went wrong, the key is in no message.
  expect(`${typed.message} ${String(typed.cause)}`).not.toContain(apiKey);
  return typed;
}

beforeEach(async () => {
  wechat = new ScriptedWechatPay();
  await wechat.start();
});

afterEach(async () => {
  await wechat.close();
});

describe('endpoints', () => {
  it('places a JSAPI unified order signed with HMAC-SHA256 and reads the HMAC-signed answer', async () => {
    wechat.then((request) => {
      // The server side checks the request like WeChat Pay does.
      expect(verifySignature(request.fields, apiKey).ok).toBe(true);
      return answer({ trade_type: 'JSAPI', prepay_id: 'wx201410272009395522657a690389285100' }, 'HMAC-SHA256');
    });
    const result = await client().unifiedOrder(ORDER, { signType: 'HMAC-SHA256' });
    expect(result).toMatchObject({ prepayId: 'wx201410272009395522657a690389285100', tradeType: 'JSAPI' });
    expect(result.codeUrl).toBeUndefined();
    const [request] = wechat.received;
    expect(request?.path).toBe('/pay/unifiedorder');
    expect(request?.fields).toMatchObject({ ...ORDER, appid: appId, mch_id: mchId, sign_type: 'HMAC-SHA256' });
    expect(request?.fields.nonce_str).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(request?.fields.sign).toMatch(/^[0-9A-F]{64}$/);
  });

  it('returns code_url for NATIVE and mweb_url for MWEB', async () => {
    wechat.then(
      answer({ trade_type: 'NATIVE', prepay_id: 'wx1', code_url: 'weixin://wxpay/bizpayurl?pr=abc' }),
      answer({ trade_type: 'MWEB', prepay_id: 'wx2', mweb_url: 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2' }),
    );
    const native = await client().unifiedOrder(
      { ...ORDER, trade_type: 'NATIVE', openid: undefined, product_id: 'P1' },
      { signType: 'MD5' },
    );
    expect(native).toMatchObject({ prepayId: 'wx1', tradeType: 'NATIVE', codeUrl: 'weixin://wxpay/bizpayurl?pr=abc' });
    const mweb = await client().unifiedOrder(
      { ...ORDER, trade_type: 'MWEB', openid: undefined, scene_info: '{"h5_info":{"type":"Wap"}}' },
      { signType: 'MD5' },
    );
    expect(mweb.mwebUrl).toContain('checkmweb');
    // MD5 is WeChat Pay's default: no sign_type is sent.
    expect(wechat.received[0]?.fields.sign_type).toBeUndefined();
  });

  it('queries an order and keeps every verified field, coupons included, amounts as strings', async () => {
    wechat.then(
      answer({
        trade_state: 'SUCCESS',
        trade_state_desc: '支付成功',
        transaction_id: '4200000540202005511234567890',
        out_trade_no: ORDER.out_trade_no,
        total_fee: '100',
        fee_type: 'CNY',
        cash_fee: '90',
        coupon_fee: '10',
        coupon_count: '1',
        coupon_id_0: '10000',
        coupon_fee_0: '10',
        time_end: '20240101081502',
      }),
    );
    const result = await client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' });
    expect(result).toMatchObject({
      tradeState: 'SUCCESS',
      tradeStateDesc: '支付成功',
      transactionId: '4200000540202005511234567890',
      totalFee: '100',
      timeEnd: '20240101081502',
      outTradeNo: ORDER.out_trade_no,
    });
    expect(result.fields.coupon_fee_0).toBe('10');
    expect(wechat.received[0]?.path).toBe('/pay/orderquery');
    expect(wechat.received[0]?.fields.out_trade_no).toBe(ORDER.out_trade_no);
  });

  it('closes an order', async () => {
    wechat.then(answer({}, 'HMAC-SHA256'));
    await expect(client().closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'HMAC-SHA256' })).resolves.toBeUndefined();
    expect(wechat.received[0]?.path).toBe('/pay/closeorder');
  });

  it('refuses a query answer about another order', async () => {
    wechat.then(answer({ trade_state: 'SUCCESS', out_trade_no: 'someone-elses-order', total_fee: '1' }));
    const error = await failure(client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' }));
    expect(error).toBeInstanceOf(WechatPayResponseError);
  });
});

describe('retries', () => {
  it('retries SYSTEMERROR with byte-identical bodies, then succeeds', async () => {
    wechat.then(
      businessError('SYSTEMERROR', '系统超时'),
      businessError('SYSTEMERROR', '系统超时'),
      answer({ trade_type: 'JSAPI', prepay_id: 'wx-after-retries' }),
    );
    const result = await client().unifiedOrder(ORDER, { signType: 'MD5' });
    expect(result.prepayId).toBe('wx-after-retries');
    expect(wechat.received).toHaveLength(3);
    const [first, ...rest] = wechat.received.map((r) => r.raw);
    for (const body of rest) expect(body.equals(first as Buffer)).toBe(true);
  });

  it('gives up after maxAttempts with the last typed, retryable error', async () => {
    wechat.then(
      businessError('SYSTEMERROR', '系统超时'),
      businessError('SYSTEMERROR', '系统超时'),
      businessError('SYSTEMERROR', '系统繁忙'),
    );
    const error = await failure(client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' }));
    expect(error).toBeInstanceOf(WechatPayBusinessError);
    expect(error).toMatchObject({ code: 'SYSTEMERROR', retryable: true, errCodeDes: '系统繁忙' });
    expect(wechat.received).toHaveLength(3);
  });

  it('retries a dropped connection and HTTP 5xx', async () => {
    wechat.then({ hangUp: true }, { status: 502, body: 'Bad Gateway' }, answer({}));
    await client().closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' });
    expect(wechat.received).toHaveLength(3);
    expect(wechat.received[2]?.raw.equals(wechat.received[0]?.raw as Buffer)).toBe(true);
  });

  it('times out a slow answer and retries it', async () => {
    wechat.then({ ...answer({}), delayMs: 2000 }, answer({}));
    const started = performance.now();
    await client({ timeoutMs: 150 }).closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' });
    expect(performance.now() - started).toBeLessThan(1500);
    expect(wechat.received).toHaveLength(2);
  });

  it('reports a timeout on every attempt as a retryable TIMEOUT', async () => {
    wechat.then({ ...answer({}), delayMs: 2000 }, { ...answer({}), delayMs: 2000 });
    const error = await failure(
      client({ timeoutMs: 100, maxAttempts: 2 }).closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' }),
    );
    expect(error).toBeInstanceOf(WechatPayNetworkError);
    expect(error).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(error.message).toContain('within 100 ms');
    expect(error.cause).toBeDefined();
  });

  it('gives up on an unreachable host with a retryable network error and its cause', async () => {
    const url = wechat.url;
    await wechat.close();
    const error = await failure(
      createWechatPayClient({ appId, mchId, apiKey, baseUrl: url, retryDelayMs: 1 }).closeOrder(
        { outTradeNo: ORDER.out_trade_no },
        { signType: 'MD5' },
      ),
    );
    expect(error).toBeInstanceOf(WechatPayNetworkError);
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', retryable: true });
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.cause).toBeInstanceOf(Error);
    wechat = new ScriptedWechatPay();
    await wechat.start();
  });

  it('does not retry business errors that retrying cannot fix', async () => {
    wechat.then(businessError('ORDERPAID', '订单已支付'));
    const paid = await failure(client().closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' }));
    expect(paid).toBeInstanceOf(WechatPayBusinessError);
    expect(paid).toMatchObject({ code: 'ORDERPAID', retryable: false });
    expect(paid.message).toContain('closeorder');

    wechat.then(businessError('ORDERNOTEXIST', '此交易订单号不存在', 'HMAC-SHA256'));
    const missing = await failure(client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'HMAC-SHA256' }));
    expect(missing).toMatchObject({ code: 'ORDERNOTEXIST', retryable: false });

    wechat.then(businessError('INVALID_REQUEST', '201 商户订单号重复'));
    const changed = await failure(client().unifiedOrder(ORDER, { signType: 'MD5' }));
    expect(changed).toMatchObject({ code: 'INVALID_REQUEST', retryable: false, errCodeDes: '201 商户订单号重复' });
    expect(wechat.received).toHaveLength(3);
  });

  it('does not retry HTTP 404 (a wrong baseUrl)', async () => {
    wechat.then({ status: 404, body: 'Not Found' });
    const error = await failure(client().closeOrder({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' }));
    expect(error).toMatchObject({ code: 'HTTP_404', retryable: false });
    expect(wechat.received).toHaveLength(1);
  });
});

describe('untrustworthy answers', () => {
  const query = () => client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'MD5' });

  it('refuses an answer signed with another key', async () => {
    wechat.then(answer({ trade_state: 'SUCCESS' }, 'MD5', 'x'.repeat(32)));
    const error = await failure(query());
    expect(error).toBeInstanceOf(WechatPayResponseError);
    expect(error).toMatchObject({ code: 'INVALID_SIGNATURE', retryable: false });
    expect(wechat.received).toHaveLength(1);
  });

  it('refuses an unsigned SUCCESS answer', async () => {
    wechat.then({
      body: buildXml({ return_code: 'SUCCESS', result_code: 'SUCCESS', appid: appId, mch_id: mchId, trade_state: 'SUCCESS' }),
    });
    const error = await failure(query());
    expect(error).toMatchObject({ code: 'INVALID_SIGNATURE' });
    expect(error.message).toContain('no sign field');
  });

  it('refuses an MD5-signed answer to an HMAC-SHA256 request, saying so', async () => {
    wechat.then(answer({ trade_state: 'SUCCESS' }, 'MD5'));
    const error = await failure(client().orderQuery({ outTradeNo: ORDER.out_trade_no }, { signType: 'HMAC-SHA256' }));
    expect(error.message).toContain('was it signed with MD5?');
  });

  it('refuses a correctly signed answer for a foreign mch_id or appid', async () => {
    wechat.then(answer({ mch_id: '1900000109', trade_state: 'SUCCESS' }), answer({ appid: 'wx0000000000000000', trade_state: 'SUCCESS' }));
    expect(await failure(query())).toMatchObject({ code: 'FOREIGN_MCH_ID' });
    expect(await failure(query())).toMatchObject({ code: 'FOREIGN_APPID' });
  });

  it('refuses an answer that is not XML', async () => {
    wechat.then({ body: '<html><body>502 Bad Gateway</body></html>' });
    const error = await failure(query());
    expect(error).toMatchObject({ code: 'XML_FORMAT_ERROR' });
    expect(error.message).toContain('not a WeChat Pay document');
  });

  it('reports return_code=FAIL with return_msg, or with retcode/retmsg, without retrying', async () => {
    wechat.then(
      { body: buildXml({ return_code: 'FAIL', return_msg: '签名错误' }) },
      { body: buildXml({ retcode: '-1', retmsg: '请确认请求参数是否正确param mch_id invalid' }) },
    );
    const signError = await failure(query());
    expect(signError).toBeInstanceOf(WechatPayCommunicationError);
    expect(signError).toMatchObject({ code: 'FAIL', retryable: false });
    expect(signError.message).toContain('签名错误');
    const retmsg = await failure(query());
    expect(retmsg).toBeInstanceOf(WechatPayCommunicationError);
    expect(retmsg.message).toContain('param mch_id invalid');
    expect(retmsg.message).toContain('retcode -1');
    expect(wechat.received).toHaveLength(2);
  });
});

describe('configuration', () => {
  const base = { appId, mchId, apiKey };

  it('names the bad option and never echoes the key', () => {
    const badKey = `${apiKey} `;
    expect(() => createWechatPayClient({ ...base, apiKey: badKey })).toThrow(WechatPayConfigError);
    try {
      createWechatPayClient({ ...base, apiKey: badKey });
    } catch (error) {
      expect((error as Error).message).toMatch(/^apiKey must be the 32-character API v2 key.*33 characters with whitespace/);
      expect((error as Error).message).not.toContain(apiKey);
    }
    expect(() => createWechatPayClient({ ...base, mchId: '' })).toThrow(/^mchId must be/);
    expect(() => createWechatPayClient({ ...base, appId: 'wx d930' })).toThrow(/^appId must be/);
    expect(() => createWechatPayClient({ ...base, baseUrl: 'api.mch.weixin.qq.com' })).toThrow(/^baseUrl/);
    expect(() => createWechatPayClient({ ...base, timeoutMs: 0 })).toThrow(/^timeoutMs/);
    expect(() => createWechatPayClient({ ...base, maxAttempts: 0 })).toThrow(/^maxAttempts/);
    expect(() => createWechatPayClient({ ...base, retryDelayMs: -1 })).toThrow(/^retryDelayMs/);
  });

  it('refuses order parameters WeChat Pay would refuse, before calling it', async () => {
    const c = client();
    await expect(c.unifiedOrder({ ...ORDER, total_fee: '1.00' }, { signType: 'MD5' })).rejects.toThrow(
      /total_fee must be a whole number of fen/,
    );
    await expect(c.unifiedOrder({ ...ORDER, openid: undefined }, { signType: 'MD5' })).rejects.toThrow(
      /JSAPI order needs the payer's openid/,
    );
    await expect(c.unifiedOrder({ ...ORDER, body: ' padded' }, { signType: 'MD5' })).rejects.toThrow(/body has whitespace around it/);
    await expect(c.unifiedOrder({ ...ORDER, body: '会员🎉' }, { signType: 'MD5' })).rejects.toThrow(/4-byte character/);
    expect(wechat.received).toHaveLength(0);
  });
});
