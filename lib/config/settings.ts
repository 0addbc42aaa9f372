import { isSignType, type SignType } from '../wechatpay/sign';
import { readApps, type WechatApp } from './apps';
import { checkUrl, LOOPBACK_HOST, required, type Env } from './env';
import { ConfigError } from './errors';
import { checkApiKey, readApiKey } from './secrets';

/**
 * The settings of the payment functions (docs/reference/configuration.md): the merchant, WeChat Pay's
 * endpoints, the tables and the bus, checked at once so that a misconfiguration names itself; the
 * API key is read last.
 */

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
  /** The stage's EventBridge bus, where every order transition is published (docs/reference/events.md). */
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
  const eventBridgeEndpoint = env.EVENTBRIDGE_ENDPOINT?.trim()
    ? checkUrl('EVENTBRIDGE_ENDPOINT', env.EVENTBRIDGE_ENDPOINT.trim())
    : undefined;
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

/**
 * Reads the configuration (docs/reference/configuration.md). The API key comes from the SSM parameter named by
 * WECHATPAY_API_KEY_PARAM when set (cached per container by Powertools), else from WECHATPAY_API_KEY
 * (local use only).
 */
export async function loadConfig(env: Env = process.env): Promise<AppConfig> {
  const { apiKeyParam, ...settings } = readSettings(env);
  const apiKey = apiKeyParam ? await readApiKey(apiKeyParam) : checkApiKey(required(env, 'WECHATPAY_API_KEY'), 'WECHATPAY_API_KEY');
  return { ...settings, apiKey };
}
