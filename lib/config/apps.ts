import { required, type Env } from './env';
import { ConfigError } from './errors';

/** What kind of app a merchant binds to its merchant id (docs/reference/configuration.md: `WECHAT_APPS`). */
export const APP_KINDS = ['miniprogram', 'officialaccount', 'app', 'web'] as const;
export type AppKind = (typeof APP_KINDS)[number];

/** One of the merchant's apps. */
export interface WechatApp {
  appId: string;
  kind: AppKind;
  /** The SSM SecureString holding the app's AppSecret (login and the JS-SDK need it). */
  secretParam?: string;
}

const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** An SSM parameter name as IAM and the functions name it: a path from the root. */
const PARAMETER_NAME = /^\/[A-Za-z0-9_.\-/]{1,1010}$/;
const APP_FIELDS = new Set(['appId', 'kind', 'secretParam']);

function readApp(value: unknown, position: number): WechatApp {
  const where = `WECHAT_APPS app ${position}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`${where} is not an object {"appId", "kind", "secretParam"?}`);
  for (const key of Object.keys(value)) {
    if (!APP_FIELDS.has(key)) {
      const hint = /secret/i.test(key) ? ' (an AppSecret never goes here: store it in SSM and name the parameter in secretParam)' : '';
      throw new ConfigError(`${where} has an unknown field "${key.slice(0, 40)}"${hint}`);
    }
  }
  const { appId, kind, secretParam } = value as Record<string, unknown>;
  if (appId === '') throw new ConfigError(`${where} has an empty appId (on a deployed stage: set the appId param, or WECHAT_APPS)`);
  if (typeof appId !== 'string' || !APP_ID.test(appId)) {
    throw new ConfigError(
      `${where}: appId must be the app's id, 1 to 32 of [A-Za-z0-9_-] (e.g. "wx..."), got ${JSON.stringify(appId ?? null).slice(0, 40)}`,
    );
  }
  if (typeof kind !== 'string' || !(APP_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigError(`${where} (${appId}): kind must be one of ${APP_KINDS.join(', ')}`);
  }
  if (secretParam !== undefined && (typeof secretParam !== 'string' || !PARAMETER_NAME.test(secretParam))) {
    throw new ConfigError(`${where} (${appId}): secretParam must be the name of an SSM parameter, starting with "/"`);
  }
  return { appId, kind: kind as AppKind, ...(secretParam === undefined ? {} : { secretParam }) };
}

/**
 * The merchant's apps, from `WECHAT_APPS` (a JSON list, the default app first), else the one app
 * `WECHATPAY_APPID`, an official account. When both are set, WECHATPAY_APPID must be one of the apps.
 */
export function readApps(env: Env): WechatApp[] {
  const text = env.WECHAT_APPS?.trim();
  const single = env.WECHATPAY_APPID?.trim();
  if (!text) {
    const appId = required(env, 'WECHATPAY_APPID');
    if (appId.length > 32) throw new ConfigError('WECHATPAY_APPID is longer than 32 characters');
    return [{ appId, kind: 'officialaccount' }];
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new ConfigError(
      'WECHAT_APPS is not valid JSON: it must be a list like [{"appId": "wx...", "kind": "officialaccount", "secretParam": "/..."}]',
    );
  }
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError('WECHAT_APPS must be a JSON list of at least one app');
  const apps = list.map((value, i) => readApp(value, i + 1));
  const seen = new Set<string>();
  for (const app of apps) {
    if (seen.has(app.appId)) throw new ConfigError(`WECHAT_APPS lists ${app.appId} twice`);
    seen.add(app.appId);
  }
  if (single && !seen.has(single)) {
    throw new ConfigError(
      `WECHATPAY_APPID ${single.slice(0, 40)} is not one of WECHAT_APPS (${[...seen].join(', ')}); the first of WECHAT_APPS is the default app`,
    );
  }
  return apps;
}
