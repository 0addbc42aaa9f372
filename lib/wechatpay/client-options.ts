import type { ClientCertificate } from './client-certificate';
import { WechatPayConfigError } from './errors';

export interface WechatPayClientOptions {
  appId: string;
  mchId: string;
  /** The 32-character API v2 key (not the APIv3 key). */
  apiKey: string;
  /** Default `https://api.mch.weixin.qq.com`; the emulator's URL locally. */
  baseUrl?: string;
  /** Per attempt, including reading the answer. Default 5000. */
  timeoutMs?: number;
  /** Attempts in all for a retryable failure. Default 3. */
  maxAttempts?: number;
  /** Wait before the second attempt; doubles for each further one. Default 200. */
  retryDelayMs?: number;
  fetch?: typeof fetch;
  /**
   * The merchant's API client certificate, for the endpoints under `/secapi/` (refunds): called on
   * the first such call only (so nothing is loaded at cold start), its result kept for the client's
   * life. Without it those endpoints are refused before anything is sent.
   */
  clientCertificate?: () => Promise<ClientCertificate>;
  /** Base of the endpoints that need the client certificate. Default: `baseUrl`. */
  secapiBaseUrl?: string;
}

export type MerchantCredentials = Pick<WechatPayClientOptions, 'appId' | 'mchId' | 'apiKey'>;

/** The options, checked, with every default filled in. */
export interface ClientSettings {
  appId: string;
  mchId: string;
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  fetch: typeof fetch;
  clientCertificate?: () => Promise<ClientCertificate>;
  secapiBaseUrl: string;
}

export const DEFAULT_BASE_URL = 'https://api.mch.weixin.qq.com';

/** Checks the options; a WechatPayConfigError names the first wrong one, never echoing the key. */
export function resolveOptions(options: WechatPayClientOptions): ClientSettings {
  const { appId, mchId, apiKey } = checkMerchant(options);
  const baseUrl = checkBaseUrl('baseUrl', options.baseUrl ?? DEFAULT_BASE_URL);
  const secapiBaseUrl = checkBaseUrl('secapiBaseUrl', options.secapiBaseUrl ?? baseUrl);
  if (options.clientCertificate !== undefined && typeof options.clientCertificate !== 'function') {
    throw new WechatPayConfigError('clientCertificate must be a function that loads the certificate');
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new WechatPayConfigError(`timeoutMs must be a positive whole number of milliseconds, got ${timeoutMs}`);
  }
  const maxAttempts = options.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
    throw new WechatPayConfigError(`maxAttempts must be a whole number from 1 to 10, got ${maxAttempts}`);
  }
  const retryDelayMs = options.retryDelayMs ?? 200;
  if (!Number.isInteger(retryDelayMs) || retryDelayMs < 0) {
    throw new WechatPayConfigError(`retryDelayMs must be a whole number of milliseconds >= 0, got ${retryDelayMs}`);
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') {
    throw new WechatPayConfigError('fetch must be a function (Node.js 20 has a global fetch)');
  }
  return {
    appId,
    mchId,
    apiKey,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    timeoutMs,
    maxAttempts,
    retryDelayMs,
    fetch: fetchImpl,
    ...(options.clientCertificate ? { clientCertificate: options.clientCertificate } : {}),
    secapiBaseUrl: secapiBaseUrl.replace(/\/+$/, ''),
  };
}

/**
 * The merchant's credentials, checked: the same for every call that signs a request (the client's
 * and the bill download's). A WechatPayConfigError names the first wrong one, never echoing the key.
 */
export function checkMerchant({ appId, mchId, apiKey }: MerchantCredentials): MerchantCredentials {
  if (typeof appId !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(appId)) {
    throw new WechatPayConfigError(
      'appId must be the app id bound to the merchant (up to 32 letters or digits, e.g. "wx..."); check WECHATPAY_APPID',
    );
  }
  if (typeof mchId !== 'string' || !/^[0-9]{1,32}$/.test(mchId)) {
    throw new WechatPayConfigError('mchId must be the merchant id, digits only; check WECHATPAY_MCHID');
  }
  if (typeof apiKey !== 'string' || apiKey.length !== 32 || /\s/.test(apiKey)) {
    const length = typeof apiKey === 'string' ? apiKey.length : 0;
    throw new WechatPayConfigError(
      `apiKey must be the 32-character API v2 key from the merchant platform, without spaces (got ${length} characters${
        typeof apiKey === 'string' && apiKey.trim().length !== length ? ' with whitespace around it' : ''
      })`,
    );
  }
  return { appId, mchId, apiKey };
}

/** An http(s) base URL without query or fragment, as given; a WechatPayConfigError otherwise. */
export function checkBaseUrl(name: string, baseUrl: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(baseUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.search || parsed.hash) {
    throw new WechatPayConfigError(
      `${name} "${String(baseUrl).slice(0, 100)}" is not an http(s) URL without query (e.g. ${DEFAULT_BASE_URL})`,
    );
  }
  return baseUrl;
}
