import { checkUrl, ConfigError, readApps, secureParameter, type WechatApp } from '../config';

/**
 * The settings of payers' identity (docs/reference/configuration.md): the merchant's apps, WeChat's platform
 * API, where the AppSecrets and the session key come from, and which pages may have a JS-SDK config.
 * Each part is read when first needed, so a function that never logs anyone in never fails on a
 * login setting.
 */

type Env = Record<string, string | undefined>;

export const DEFAULT_WECHAT_API_BASE_URL = 'https://api.weixin.qq.com';

/** The page origins that may have a JS-SDK config: a list, or any origin (`*`, the local stack only). */
export type PageOrigins = { any: true } | { any: false; origins: readonly string[] };

export function readWechatApiBaseUrl(env: Env): string {
  return checkUrl('WECHAT_API_BASE_URL', env.WECHAT_API_BASE_URL?.trim() || DEFAULT_WECHAT_API_BASE_URL);
}

/**
 * `CORS_ORIGINS`: the stage's `corsOrigins`, comma-separated, each an origin as a browser sends it
 * (`https://shop.example.com`, no path); `*` for any (the local stack); unset or empty for none.
 */
export function readPageOrigins(env: Env): PageOrigins {
  const entries = (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.includes('*')) return { any: true };
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      const url = new URL(entry);
      origin = url.protocol === 'https:' || url.protocol === 'http:' ? url.origin : undefined;
    } catch {
      origin = undefined;
    }
    if (origin !== entry)
      throw new ConfigError(
        `CORS_ORIGINS: "${entry.slice(0, 100)}" is not an origin like https://shop.example.com (scheme and host, no path or trailing slash)`,
      );
  }
  return { any: false, origins: entries };
}

/** `WECHAT_APP_SECRETS` (local use only): a JSON object of AppSecrets by app id. */
function readLocalAppSecrets(env: Env): Record<string, string> {
  const text = env.WECHAT_APP_SECRETS?.trim();
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Never quote the text: it holds secrets.
    throw new ConfigError('WECHAT_APP_SECRETS is not valid JSON: it must be an object {"<appId>": "<AppSecret>"}');
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    !Object.values(value).every((secret) => typeof secret === 'string')
  ) {
    throw new ConfigError('WECHAT_APP_SECRETS must be a JSON object {"<appId>": "<AppSecret>"}');
  }
  return value as Record<string, string>;
}

const MIN_SESSION_KEY_BYTES = 32;

/** Where each secret of payers' identity comes from; values are read on use and never logged. */
export interface IdentitySecrets {
  /** The app's AppSecret: from its `secretParam` in SSM, else (local stack) `WECHAT_APP_SECRETS`. */
  appSecret(appId: string): Promise<string>;
  /** The key of session tokens: from `SESSION_KEY_PARAM` in SSM, else (local stack) `SESSION_KEY`. */
  sessionKey(): Promise<string>;
}

export function identitySecrets(env: Env, apps: readonly WechatApp[]): IdentitySecrets {
  let local: Record<string, string> | undefined;
  return {
    async appSecret(appId) {
      const app = apps.find((candidate) => candidate.appId === appId);
      if (!app) throw new ConfigError(`no AppSecret for ${appId}: it is not one of WECHAT_APPS`);
      if (app.secretParam) return secureParameter(app.secretParam, `the AppSecret of ${appId}`);
      local ??= readLocalAppSecrets(env);
      const secret = local[appId];
      if (!secret)
        throw new ConfigError(`no AppSecret for ${appId}: give it a secretParam in WECHAT_APPS (the SSM parameter holding its AppSecret)`);
      return secret;
    },
    async sessionKey() {
      const parameterName = env.SESSION_KEY_PARAM?.trim();
      const key = parameterName ? await secureParameter(parameterName, 'the session key') : env.SESSION_KEY;
      if (!key) throw new ConfigError("SESSION_KEY_PARAM is not set (the SSM parameter holding the key of payers' session tokens)");
      if (Buffer.byteLength(key, 'utf8') < MIN_SESSION_KEY_BYTES) {
        throw new ConfigError(
          `the session key from ${parameterName ? `parameter ${parameterName}` : 'SESSION_KEY'} is shorter than ${MIN_SESSION_KEY_BYTES} bytes`,
        );
      }
      return key;
    },
  };
}

/** Everything identity needs to know at once: the apps and WeChat's platform API. */
export interface IdentitySettings {
  apps: WechatApp[];
  wechatApiBaseUrl: string;
}

export function readIdentitySettings(env: Env): IdentitySettings {
  return { apps: readApps(env), wechatApiBaseUrl: readWechatApiBaseUrl(env) };
}
