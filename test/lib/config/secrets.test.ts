import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadClientCertificate, loadConfig, SECRET_MAX_AGE_SECONDS, secureParameter } from '../../../lib/config';
import { loadMerchantTokens } from '../../../lib/http/merchant-auth';
import { identitySecrets } from '../../../lib/identity/settings';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';

/** SSM as Powertools Parameters answers it: each parameter's value, or a failure. */
const { getParameter } = vi.hoisted(() => ({ getParameter: vi.fn<(name: string, options: unknown) => Promise<string | undefined>>() }));
vi.mock('@aws-lambda-powertools/parameters/ssm', () => ({ getParameter }));

const SECRET = 'sEcReT-value-that-must-never-show-0123456789';

const env = {
  WECHATPAY_APPID: TEST_MERCHANT.appId,
  WECHATPAY_MCHID: TEST_MERCHANT.mchId,
  WECHATPAY_NOTIFY_URL: 'https://pay.example.com/wechatpay/notify',
  ORDERS_TABLE: 'orders',
};

/** Every way a secret is read from SSM, each answering its value or throwing. */
const readers: Array<[string, string, () => Promise<unknown>]> = [
  ['the API key', '/wechatpay/prod/api-key', () => loadConfig({ ...env, WECHATPAY_API_KEY_PARAM: '/wechatpay/prod/api-key' })],
  [
    'the client certificate',
    '/wechatpay/prod/client-cert',
    () => loadClientCertificate({ clientCertParam: '/wechatpay/prod/client-cert' }),
  ],
  [
    'the merchant API tokens',
    '/wechatpay/prod/merchant-tokens',
    () => loadMerchantTokens({ MERCHANT_API_TOKENS_PARAM: '/wechatpay/prod/merchant-tokens' }),
  ],
  [
    `the AppSecret of ${TEST_MERCHANT.appId}`,
    '/wechatpay/prod/app-secret',
    () =>
      identitySecrets({}, [{ appId: TEST_MERCHANT.appId, kind: 'officialaccount', secretParam: '/wechatpay/prod/app-secret' }]).appSecret(
        TEST_MERCHANT.appId,
      ),
  ],
  [
    'the session key',
    '/wechatpay/prod/session-key',
    () => identitySecrets({ SESSION_KEY_PARAM: '/wechatpay/prod/session-key' }, []).sessionKey(),
  ],
];

beforeEach(() => {
  getParameter.mockReset();
});

describe('secrets from SSM', () => {
  it('are all read by secureParameter: decrypted, kept for five minutes', async () => {
    getParameter.mockResolvedValue(SECRET);
    await expect(secureParameter('/a/b', 'a secret')).resolves.toBe(SECRET);
    await expect(secureParameter('/a/c', 'a secret', { maxAge: 30 })).resolves.toBe(SECRET);
    expect(getParameter.mock.calls).toEqual([
      ['/a/b', { decrypt: true, maxAge: SECRET_MAX_AGE_SECONDS }],
      ['/a/c', { decrypt: true, maxAge: 30 }],
    ]);
    expect(SECRET_MAX_AGE_SECONDS).toBe(300);
  });

  it.each(readers)('%s: a failed read is a ConfigError naming the parameter, with the cause', async (what, name, read) => {
    const cause = new Error('AccessDeniedException');
    getParameter.mockRejectedValue(cause);
    const error = await read().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`could not read ${what} parameter ${name}`);
    expect((error as ConfigError).cause).toBe(cause);
    expect(getParameter).toHaveBeenCalledWith(name, { decrypt: true, maxAge: SECRET_MAX_AGE_SECONDS });
  });

  it.each(readers)('%s: an empty parameter is a ConfigError', async (what, name, read) => {
    getParameter.mockResolvedValue('');
    await expect(read()).rejects.toThrow(new ConfigError(`${what} parameter ${name} is empty`));
  });

  it.each(readers)('%s: a value that will not do is refused without being quoted', async (_what, name, read) => {
    // Too short for an API key, a session key or a merchant token; no certificate at all.
    getParameter.mockResolvedValue('Xq7zK2,Wv9pR4');
    const error = await read().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    if (error === undefined) return; // an AppSecret is whatever the parameter holds
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain(name);
    expect(String((error as Error).message)).not.toMatch(/Xq7zK2|Wv9pR4/);
  });
});
