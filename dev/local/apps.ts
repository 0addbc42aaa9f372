import { readApps } from '../../lib/config';
import { localApps, type LocalApp } from '../emulator/test-apps';

/**
 * The apps of the local stack, as the API is configured with them (WECHAT_APPS, WECHAT_APP_SECRETS)
 * and as the emulator's WeChat platform API knows them (with their AppSecrets): by default the
 * merchant's app (an official account) and the local mini-program; else the apps WECHAT_APPS names,
 * each with its AppSecret from WECHAT_APP_SECRETS (the local apps' own secrets are known).
 */
export function localStackApps(
  merchantAppId: string,
  env: Record<string, string | undefined> = process.env,
): { apps: LocalApp[]; settings: { WECHAT_APPS: string; WECHAT_APP_SECRETS: string } } {
  const known = new Map(localApps(merchantAppId).map((app) => [app.appId, app]));
  let apps: LocalApp[];
  if (env.WECHAT_APPS?.trim()) {
    const given = env.WECHAT_APP_SECRETS?.trim() ? (JSON.parse(env.WECHAT_APP_SECRETS) as Record<string, string>) : {};
    apps = readApps({ WECHAT_APPS: env.WECHAT_APPS, WECHATPAY_APPID: merchantAppId }).map(({ appId, kind }) => {
      const secret = given[appId] ?? known.get(appId)?.secret;
      if (!secret) throw new Error(`WECHAT_APP_SECRETS must give the AppSecret of ${appId} on the local stack (the emulator checks it)`);
      return { appId, kind, secret };
    });
  } else {
    apps = [...known.values()];
  }
  return {
    apps,
    settings: {
      WECHAT_APPS: JSON.stringify(apps.map(({ appId, kind }) => ({ appId, kind }))),
      WECHAT_APP_SECRETS: JSON.stringify(Object.fromEntries(apps.map(({ appId, secret }) => [appId, secret]))),
    },
  };
}
