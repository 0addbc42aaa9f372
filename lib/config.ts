import { readClientCertificatePem, type ClientCertificate } from './wechatpay/client-certificate';
import { WechatPayConfigError } from './wechatpay/errors';
import { isSignType, type SignType } from './wechatpay/sign';

/** A required setting is missing or malformed: the request is answered 503, nothing is stored. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** What kind of app a merchant binds to its merchant id (README: Configuration, `WECHAT_APPS`). */
export const APP_KINDS = ['miniprogram', 'officialaccount', 'app', 'web'] as const;
export type AppKind = (typeof APP_KINDS)[number];

/** One of the merchant's apps. */
export interface WechatApp {
  appId: string;
  kind: AppKind;
  /** The SSM SecureString holding the app's AppSecret (login and the JS-SDK need it). */
  secretParam?: string;
}

export interface AppConfig {
  /** The default app: the first of `apps`. */
  appId: string;
  /** Every app of the merchant, the default first. */
  apps: WechatApp[];
  mchId: string;
  /** Never logged, never placed in an error message. */
  apiKey: string;
  signType: SignType;
  baseUrl: string;
  notifyUrl: string;
  ordersTable: string;
  /** The catalog table; only the functions that price orders or edit the catalog have it. */
  catalogTable?: string;
  dynamoEndpoint?: string;
  orderExpireMinutes: number;
  /** The stage's EventBridge bus, where every order transition is published (README: Events). */
  eventBusName?: string;
  /** EventBridge endpoint override, local only (the local stand-in). */
  eventBridgeEndpoint?: string;
  /** Base of the endpoints that need the client certificate (`/secapi/...`): WECHATPAY_SECAPI_BASE_URL, else baseUrl. */
  secapiBaseUrl: string;
  /**
   * Where WeChat Pay sends refund results: WECHATPAY_REFUND_NOTIFY_URL, else the notify URL's own
   * `/wechatpay/refund-notify` (when it ends in `/wechatpay/notify`). Only refunds need it.
   */
  refundNotifyUrl?: string;
  /** The SSM SecureString with the client certificate and its key, PEM (WECHATPAY_CERT_PARAM). */
  clientCertParam?: string;
  /** Local use only: the client certificate PEM itself (WECHATPAY_CLIENT_CERT_PEM), like WECHATPAY_API_KEY. Never logged. */
  clientCertPem?: string;
  /** Local use only: a CA trusted for the /secapi/ server (WECHATPAY_SECAPI_CA_PEM): the local stack's emulator. */
  secapiCaPem?: string;
}

type Env = Record<string, string | undefined>;

const API_KEY_CACHE_SECONDS = 300;
/** Hosts that only this machine can reach: the local stack's, where plain http is harmless. */
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

export function checkUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not an absolute URL: "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http(s) URL, got ${url.protocol}`);
  }
  return value.replace(/\/+$/, '');
}

const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** An SSM parameter name as IAM and the functions name it: a path from the root. */
const PARAMETER_NAME = /^\/[A-Za-z0-9_.\-/]{1,1010}$/;
const APP_FIELDS = new Set(['appId', 'kind', 'secretParam']);

function readApp(value: unknown, position: number): WechatApp {
  const where = `WECHAT_APPS app ${position}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where} is not an object {"appId", "kind", "secretParam"?}`);
  for (const key of Object.keys(value)) {
    if (!APP_FIELDS.has(key)) {
      const hint = /secret/i.test(key) ? ' (an AppSecret never goes here: store it in SSM and name the parameter in secretParam)' : '';
      throw new ConfigError(`${where} has an unknown field "${key.slice(0, 40)}"${hint}`);
    }
  }
  const { appId, kind, secretParam } = value as Record<string, unknown>;
  if (appId === '') throw new ConfigError(`${where} has an empty appId (on a deployed stage: set the appId param, or WECHAT_APPS)`);
  if (typeof appId !== 'string' || !APP_ID.test(appId)) {
    throw new ConfigError(`${where}: appId must be the app's id, 1 to 32 of [A-Za-z0-9_-] (e.g. "wx..."), got ${JSON.stringify(appId ?? null).slice(0, 40)}`);
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
    throw new ConfigError('WECHAT_APPS is not valid JSON: it must be a list like [{"appId": "wx...", "kind": "officialaccount", "secretParam": "/..."}]');
  }
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError('WECHAT_APPS must be a JSON list of at least one app');
  const apps = list.map((value, i) => readApp(value, i + 1));
  const seen = new Set<string>();
  for (const app of apps) {
    if (seen.has(app.appId)) throw new ConfigError(`WECHAT_APPS lists ${app.appId} twice`);
    seen.add(app.appId);
  }
  if (single && !seen.has(single)) {
    throw new ConfigError(`WECHATPAY_APPID ${single.slice(0, 40)} is not one of WECHAT_APPS (${[...seen].join(', ')}); the first of WECHAT_APPS is the default app`);
  }
  return apps;
}

/** Everything but the API key, checked synchronously so a misconfiguration names itself. */
export function readSettings(env: Env): Omit<AppConfig, 'apiKey'> & { apiKeyParam?: string } {
  const apps = readApps(env);
  const appId = (apps[0] as WechatApp).appId;
  const mchId = required(env, 'WECHATPAY_MCHID');
  if (!/^\d{1,32}$/.test(mchId)) throw new ConfigError('WECHATPAY_MCHID must be the digits of a merchant id');
  const signType = env.WECHATPAY_SIGN_TYPE?.trim() || 'HMAC-SHA256';
  if (!isSignType(signType)) {
    throw new ConfigError(`WECHATPAY_SIGN_TYPE must be MD5 or HMAC-SHA256, got "${signType}"`);
  }
  const baseUrl = checkUrl('WECHATPAY_BASE_URL', env.WECHATPAY_BASE_URL?.trim() || 'https://api.mch.weixin.qq.com');
  const notifyUrl = checkUrl('WECHATPAY_NOTIFY_URL', required(env, 'WECHATPAY_NOTIFY_URL'));
  if (notifyUrl.includes('?')) {
    throw new ConfigError('WECHATPAY_NOTIFY_URL must not have a query string (WeChat Pay drops it)');
  }
  if (!notifyUrl.startsWith('https:') && !LOOPBACK_HOST.test(new URL(notifyUrl).hostname)) {
    throw new ConfigError(
      'WECHATPAY_NOTIFY_URL must be an https URL: over http anyone on the way could read, and replay, a genuine signed payment callback (only a local stack on this machine may use http)',
    );
  }
  const eventBusName = env.EVENT_BUS_NAME?.trim() || undefined;
  // A bus name, or a bus ARN (another account's bus).
  if (eventBusName !== undefined && !/^[A-Za-z0-9._\-/:]{1,1600}$/.test(eventBusName)) {
    throw new ConfigError(`EVENT_BUS_NAME is not an EventBridge bus name or ARN: "${eventBusName}"`);
  }
  const eventBridgeEndpoint = env.EVENTBRIDGE_ENDPOINT?.trim() ? checkUrl('EVENTBRIDGE_ENDPOINT', env.EVENTBRIDGE_ENDPOINT.trim()) : undefined;
  const refundNotifyUrl = readRefundNotifyUrl(env, notifyUrl);
  const expire = env.ORDER_EXPIRE_MINUTES?.trim() || '30';
  // WeChat Pay cannot close an order younger than 5 minutes, and time_expire must lie in the future.
  if (!/^\d+$/.test(expire) || Number(expire) < 5 || Number(expire) > 7 * 24 * 60) {
    throw new ConfigError(`ORDER_EXPIRE_MINUTES must be a whole number from 5 to 10080, got "${expire}"`);
  }
  return {
    appId,
    apps,
    mchId,
    signType,
    baseUrl,
    notifyUrl,
    ordersTable: required(env, 'ORDERS_TABLE'),
    catalogTable: env.CATALOG_TABLE?.trim() || undefined,
    dynamoEndpoint: env.DYNAMODB_ENDPOINT?.trim() || undefined,
    orderExpireMinutes: Number(expire),
    eventBusName,
    eventBridgeEndpoint,
    apiKeyParam: env.WECHATPAY_API_KEY_PARAM?.trim() || undefined,
    secapiBaseUrl: checkUrl('WECHATPAY_SECAPI_BASE_URL', env.WECHATPAY_SECAPI_BASE_URL?.trim() || baseUrl),
    ...(refundNotifyUrl ? { refundNotifyUrl } : {}),
    ...(env.WECHATPAY_CERT_PARAM?.trim() ? { clientCertParam: env.WECHATPAY_CERT_PARAM.trim() } : {}),
    ...(env.WECHATPAY_CLIENT_CERT_PEM?.trim() ? { clientCertPem: env.WECHATPAY_CLIENT_CERT_PEM.trim() } : {}),
    ...(env.WECHATPAY_SECAPI_CA_PEM?.trim() ? { secapiCaPem: env.WECHATPAY_SECAPI_CA_PEM.trim() } : {}),
  };
}

/** The payment notify URL's path; the refund notify URL sits beside it unless set. */
const NOTIFY_PATH = '/wechatpay/notify';

/** WECHATPAY_REFUND_NOTIFY_URL, checked as the notify URL is (https, no query), else derived from it. */
function readRefundNotifyUrl(env: Env, notifyUrl: string): string | undefined {
  const set = env.WECHATPAY_REFUND_NOTIFY_URL?.trim();
  if (!set) return notifyUrl.endsWith(NOTIFY_PATH) ? `${notifyUrl.slice(0, -NOTIFY_PATH.length)}/wechatpay/refund-notify` : undefined;
  const url = checkUrl('WECHATPAY_REFUND_NOTIFY_URL', set);
  if (url.includes('?')) throw new ConfigError('WECHATPAY_REFUND_NOTIFY_URL must not have a query string (WeChat Pay drops it)');
  if (!url.startsWith('https:') && !LOOPBACK_HOST.test(new URL(url).hostname)) {
    throw new ConfigError('WECHATPAY_REFUND_NOTIFY_URL must be an https URL (only a local stack on this machine may use http)');
  }
  return url;
}

function checkApiKey(apiKey: string, source: string): string {
  if (apiKey.length !== 32) {
    throw new ConfigError(
      `the API key from ${source} has ${apiKey.length} characters; a WeChat Pay API v2 key has 32 (is it the APIv3 key?)`,
    );
  }
  return apiKey;
}

async function fetchApiKey(parameterName: string): Promise<string> {
  // Imported on first use: only deployed stages read SSM, and the SDK client is costly to load.
  const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
  let value: string | undefined;
  try {
    value = await getParameter(parameterName, { decrypt: true, maxAge: API_KEY_CACHE_SECONDS });
  } catch (cause) {
    throw new ConfigError(`could not read the API key parameter ${parameterName}`, { cause });
  }
  if (!value) throw new ConfigError(`the API key parameter ${parameterName} is empty`);
  return checkApiKey(value, `parameter ${parameterName}`);
}

/**
 * Reads the configuration (README: Configuration). The API key comes from the SSM parameter named by
 * WECHATPAY_API_KEY_PARAM when set (cached per container by Powertools), else from WECHATPAY_API_KEY
 * (local use only).
 */
export async function loadConfig(env: Env = process.env): Promise<AppConfig> {
  const { apiKeyParam, ...settings } = readSettings(env);
  const apiKey = apiKeyParam
    ? await fetchApiKey(apiKeyParam)
    : checkApiKey(required(env, 'WECHATPAY_API_KEY'), 'WECHATPAY_API_KEY');
  return { ...settings, apiKey };
}

/**
 * The merchant's API client certificate and key (README: refunds), read on the first refund only:
 * from the SSM SecureString named by WECHATPAY_CERT_PARAM (decrypted, cached per container by
 * Powertools), else from WECHATPAY_CLIENT_CERT_PEM (the local stack). Checked before use: a key that
 * is not the certificate's, or an expired certificate, is a ConfigError naming the setting.
 */
export async function loadClientCertificate(config: Pick<AppConfig, 'clientCertParam' | 'clientCertPem' | 'secapiCaPem'>): Promise<ClientCertificate> {
  let pem: string | undefined;
  let source: string;
  if (config.clientCertParam) {
    source = `parameter ${config.clientCertParam}`;
    const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
    try {
      pem = await getParameter(config.clientCertParam, { decrypt: true, maxAge: API_KEY_CACHE_SECONDS });
    } catch (cause) {
      throw new ConfigError(`could not read the client certificate parameter ${config.clientCertParam}`, { cause });
    }
  } else {
    source = 'WECHATPAY_CLIENT_CERT_PEM';
    pem = config.clientCertPem;
    if (!pem) throw new ConfigError('refunds need the merchant API client certificate: set WECHATPAY_CERT_PARAM (README: refunds)');
  }
  if (!pem) throw new ConfigError(`the client certificate ${source} is empty`);
  try {
    const certificate = readClientCertificatePem(pem, source);
    return config.secapiCaPem ? { ...certificate, ca: config.secapiCaPem } : certificate;
  } catch (error) {
    if (error instanceof WechatPayConfigError) throw new ConfigError(error.message);
    throw error;
  }
}

const MERCHANT_TOKEN = /^[\x21-\x2B\x2D-\x7E]{16,256}$/;

function checkMerchantTokens(text: string, source: string): string[] {
  const tokens = text.split(',').map((token) => token.trim()).filter((token) => token !== '');
  if (tokens.length === 0) throw new ConfigError(`${source} holds no merchant API token`);
  // Never quote a token: name its position only.
  tokens.forEach((token, i) => {
    if (!MERCHANT_TOKEN.test(token)) {
      throw new ConfigError(`merchant API token ${i + 1} in ${source} must be 16 to 256 visible ASCII characters without commas`);
    }
  });
  return tokens;
}

/**
 * The bearer tokens of the merchant's server, from the SSM SecureString named by
 * MERCHANT_API_TOKENS_PARAM (comma-separated: two while rotating; cached per container for five
 * minutes, so a rotation reaches every container within that time), else MERCHANT_API_TOKEN (local).
 */
export async function loadMerchantTokens(env: Env = process.env): Promise<string[]> {
  const parameterName = env.MERCHANT_API_TOKENS_PARAM?.trim();
  if (!parameterName) return checkMerchantTokens(required(env, 'MERCHANT_API_TOKEN'), 'MERCHANT_API_TOKEN');
  const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
  let value: string | undefined;
  try {
    value = await getParameter(parameterName, { decrypt: true, maxAge: API_KEY_CACHE_SECONDS });
  } catch (cause) {
    throw new ConfigError(`could not read the merchant API tokens parameter ${parameterName}`, { cause });
  }
  return checkMerchantTokens(value ?? '', `parameter ${parameterName}`);
}

/**
 * A SecureString from SSM, decrypted, cached per container by Powertools for five minutes (so a
 * changed value reaches every container within that time). `what` names it in errors; the value
 * never appears in one.
 */
export async function readSecureParameter(parameterName: string, what: string): Promise<string> {
  const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
  let value: string | undefined;
  try {
    value = await getParameter(parameterName, { decrypt: true, maxAge: API_KEY_CACHE_SECONDS });
  } catch (cause) {
    throw new ConfigError(`could not read ${what} parameter ${parameterName}`, { cause });
  }
  if (!value) throw new ConfigError(`${what} parameter ${parameterName} is empty`);
  return value;
}
