import { TEST_MERCHANT } from './test-merchant';

/** The kinds of app a merchant binds to its merchant id (design §2, `WECHAT_APPS`). */
export type AppKind = 'miniprogram' | 'officialaccount' | 'app' | 'web';

export interface LocalApp {
  appId: string;
  /** The app's AppSecret: login (jscode2session, web authorization) and access_token need it. */
  secret: string;
  kind: AppKind;
}

/**
 * The AppSecret the local stack, the emulator and the tests give the merchant's own app when the
 * environment names none. A local placeholder (32 hex characters, like a real one), nobody's secret.
 */
export const TEST_APP_SECRET = '10ca15ec7e7000000000000000000001';

/** A second local app, a mini-program, so that both login routes can be tried on one machine. */
export const TEST_MINIPROGRAM: LocalApp = {
  appId: 'wx00000000000000a2',
  secret: '10ca15ec7e7000000000000000000002',
  kind: 'miniprogram',
};

/**
 * The apps WeChat's platform API knows locally: the merchant's app (the default app, an official
 * account, as `WECHAT_APPS` defaults to) with the local secret, and the local mini-program.
 */
export function localApps(merchantAppId: string = TEST_MERCHANT.appId): LocalApp[] {
  const apps: LocalApp[] = [{ appId: merchantAppId, secret: TEST_APP_SECRET, kind: 'officialaccount' }];
  if (merchantAppId !== TEST_MINIPROGRAM.appId) apps.push({ ...TEST_MINIPROGRAM });
  return apps;
}
