import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../lib/config';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { apiEvent } from '../support/api';

const valid = {
  WECHATPAY_APPID: TEST_MERCHANT.appId,
  WECHATPAY_MCHID: TEST_MERCHANT.mchId,
  WECHATPAY_API_KEY: TEST_MERCHANT.apiKey,
  WECHATPAY_NOTIFY_URL: 'https://pay.example.com/wechatpay/notify',
  ORDERS_TABLE: 'orders',
};

describe('configuration', () => {
  it('reads the defaults of the configuration table (docs/reference/configuration.md)', async () => {
    const config = await loadConfig(valid);
    expect(config).toMatchObject({
      signType: 'HMAC-SHA256',
      baseUrl: 'https://api.mch.weixin.qq.com',
      orderExpireMinutes: 30,
      dynamoEndpoint: undefined,
    });
  });

  it.each([
    ['WECHATPAY_APPID', { WECHATPAY_APPID: '' }, 'WECHATPAY_APPID is not set'],
    ['WECHATPAY_MCHID', { WECHATPAY_MCHID: 'mch-1' }, 'digits'],
    ['WECHATPAY_SIGN_TYPE', { WECHATPAY_SIGN_TYPE: 'SHA1' }, 'MD5 or HMAC-SHA256'],
    ['WECHATPAY_NOTIFY_URL', { WECHATPAY_NOTIFY_URL: 'https://pay.example.com/notify?x=1' }, 'query string'],
    ['WECHATPAY_NOTIFY_URL', { WECHATPAY_NOTIFY_URL: 'pay.example.com/notify' }, 'absolute URL'],
    ['WECHATPAY_NOTIFY_URL', { WECHATPAY_NOTIFY_URL: 'http://pay.example.com/wechatpay/notify' }, 'must be an https URL'],
    ['WECHATPAY_NOTIFY_URL', { WECHATPAY_NOTIFY_URL: 'http://10.0.0.8/wechatpay/notify' }, 'must be an https URL'],
    ['WECHATPAY_BASE_URL', { WECHATPAY_BASE_URL: 'ftp://api.mch.weixin.qq.com' }, 'http(s)'],
    ['ORDER_EXPIRE_MINUTES', { ORDER_EXPIRE_MINUTES: '2' }, '5 to 10080'],
    ['ORDERS_TABLE', { ORDERS_TABLE: undefined }, 'ORDERS_TABLE is not set'],
    ['WECHATPAY_API_KEY', { WECHATPAY_API_KEY: 'x'.repeat(40) }, 'is it the APIv3 key?'],
  ])('a malformed %s is named in the error', async (_name, change, message) => {
    await expect(loadConfig({ ...valid, ...change })).rejects.toThrow(message);
  });

  it.each(['http://127.0.0.1:3000/wechatpay/notify', 'http://localhost:3000/wechatpay/notify', 'http://[::1]:3000/wechatpay/notify'])(
    'a plain-http notify URL is allowed only on this machine (the local stack): %s',
    async (url) => {
      await expect(loadConfig({ ...valid, WECHATPAY_NOTIFY_URL: url })).resolves.toMatchObject({ notifyUrl: url });
    },
  );

  it('the API key never appears in a configuration error', async () => {
    const key = 'k'.repeat(31);
    await expect(loadConfig({ ...valid, WECHATPAY_API_KEY: key })).rejects.not.toThrow(key);
  });
});

describe("the merchant's apps (WECHAT_APPS)", () => {
  const MINI = 'wx00000000000000a2';
  const apps = (list: unknown) => ({ ...valid, WECHAT_APPS: typeof list === 'string' ? list : JSON.stringify(list) });

  it('default to one app, WECHATPAY_APPID, an official account without a secret parameter', async () => {
    const config = await loadConfig(valid);
    expect(config.apps).toEqual([{ appId: TEST_MERCHANT.appId, kind: 'officialaccount' }]);
    expect(config.appId).toBe(TEST_MERCHANT.appId);
  });

  it('are read in order, the first the default app; WECHATPAY_APPID is then optional', async () => {
    const list = [
      { appId: TEST_MERCHANT.appId, kind: 'officialaccount', secretParam: '/wechatpay/prod/app-secret' },
      { appId: MINI, kind: 'miniprogram', secretParam: '/wechatpay/prod/mini-secret' },
      { appId: 'wx00000000000000a3', kind: 'app' },
      { appId: 'wx00000000000000a4', kind: 'web' },
    ];
    expect((await loadConfig(apps(list))).apps).toEqual(list);
    const withoutSingle = await loadConfig({ ...apps([...list].reverse()), WECHATPAY_APPID: undefined });
    expect(withoutSingle.appId).toBe('wx00000000000000a4');
  });

  it.each([
    ['not JSON', '[{appId:', 'is not valid JSON'],
    ['an empty list', [], 'at least one app'],
    ['an object, not a list', { appId: MINI, kind: 'miniprogram' }, 'at least one app'],
    ['an app that is not an object', ['wx00000000000000a2'], 'WECHAT_APPS app 1 is not an object'],
    ['a missing appId', [{ kind: 'miniprogram' }], 'WECHAT_APPS app 1: appId must be'],
    ['a malformed appId', [{ appId: 'wx 1', kind: 'miniprogram' }], 'appId must be'],
    ['an unknown kind', [{ appId: MINI, kind: 'miniapp' }], 'kind must be one of miniprogram, officialaccount, app, web'],
    ['a secretParam that is no parameter path', [{ appId: MINI, kind: 'miniprogram', secretParam: 'app-secret' }], 'starting with "/"'],
    ['an AppSecret in the list', [{ appId: MINI, kind: 'miniprogram', secret: 'abc' }], 'store it in SSM'],
    [
      'an app listed twice',
      [
        { appId: MINI, kind: 'miniprogram' },
        { appId: MINI, kind: 'officialaccount' },
      ],
      `lists ${MINI} twice`,
    ],
    [
      'WECHATPAY_APPID not among them',
      [{ appId: MINI, kind: 'miniprogram' }],
      `WECHATPAY_APPID ${TEST_MERCHANT.appId} is not one of WECHAT_APPS`,
    ],
  ])('%s is a ConfigError naming it', async (_name, list, message) => {
    await expect(loadConfig(apps(list))).rejects.toThrow(message);
  });

  it('never quotes an AppSecret put in the list by mistake', async () => {
    const secret = '10ca15ec7e70000000000000deadbeef';
    await expect(loadConfig(apps([{ appId: MINI, kind: 'miniprogram', appSecret: secret }]))).rejects.not.toThrow(secret);
  });
});

describe('a misconfigured deployment', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('answers 503 and stores nothing', async () => {
    vi.stubEnv('WECHATPAY_MCHID', '');
    vi.stubEnv('ORDERS_TABLE', 'orders');
    vi.resetModules();
    const { handler } = await import('../../functions/createOrder');
    const result = await handler(
      apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify({ tradeType: 'NATIVE', items: [{ sku: 'x', quantity: 1 }] }) }),
    );
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body as string).error.code).toBe('NOT_CONFIGURED');
  });

  it("answers WeChat Pay's callback FAIL in XML, so that it calls again once the deployment is fixed", async () => {
    vi.stubEnv('WECHATPAY_MCHID', '');
    vi.stubEnv('ORDERS_TABLE', 'orders');
    vi.resetModules();
    const { handler } = await import('../../functions/notify');
    const result = await handler(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: '<xml></xml>', contentType: 'text/xml' }));
    expect(result.statusCode).toBe(200);
    expect(result.headers?.['content-type']).toContain('text/xml');
    expect(result.body).toContain('<return_code><![CDATA[FAIL]]></return_code>');
  });
});
