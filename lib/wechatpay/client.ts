import {
  WechatPayBusinessError,
  WechatPayCommunicationError,
  WechatPayConfigError,
  WechatPayError,
  WechatPayNetworkError,
  WechatPayResponseError,
  XmlFormatError,
} from './errors';
import { nonceStr } from './ids';
import { signFields, verifySignature, type Fields, type SignType } from './sign';
import { buildXml, parseXml } from './xml';

export const TRADE_TYPES = ['JSAPI', 'NATIVE', 'MWEB', 'APP'] as const;
export type TradeType = (typeof TRADE_TYPES)[number];

/**
 * The merchant's part of a unified order, in WeChat Pay's own field names. It is a plain record of
 * strings on purpose: the orders store persists exactly this object, because WeChat Pay only accepts
 * a repeated unified order whose parameters are identical to the first call's.
 */
export type UnifiedOrderParams = {
  body: string;
  out_trade_no: string;
  /** Integer fen, as a string. */
  total_fee: string;
  spbill_create_ip: string;
  notify_url: string;
  trade_type: TradeType;
  /** `yyyyMMddHHmmss`, Beijing time. */
  time_start?: string;
  /** `yyyyMMddHHmmss`, Beijing time; cannot change once WeChat Pay has seen the order. */
  time_expire?: string;
  openid?: string;
  product_id?: string;
  attach?: string;
  scene_info?: string;
  device_info?: string;
  detail?: string;
  goods_tag?: string;
  limit_pay?: string;
};

export interface CallOptions {
  /** The sign type of the order: requests are signed with it and answers are verified with it. */
  signType: SignType;
}

export interface UnifiedOrderResult {
  prepayId: string;
  tradeType: string;
  /** NATIVE: the text to show as a QR code. */
  codeUrl?: string;
  /** MWEB: where to send the browser; valid for 5 minutes. */
  mwebUrl?: string;
  /** The whole verified answer. */
  fields: Fields;
}

export interface OrderQueryResult {
  /** SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR or ACCEPT. */
  tradeState: string;
  tradeStateDesc?: string;
  transactionId?: string;
  /** Integer fen exactly as WeChat Pay signed it; compare it with the order before trusting it. */
  totalFee?: string;
  /** `yyyyMMddHHmmss`, Beijing time. */
  timeEnd?: string;
  outTradeNo: string;
  /** The whole verified answer (coupon fields, bank_type, ...), for the caller to record. */
  fields: Fields;
}

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
}

export interface WechatPayClient {
  unifiedOrder(params: UnifiedOrderParams, options: CallOptions): Promise<UnifiedOrderResult>;
  orderQuery(query: { outTradeNo: string }, options: CallOptions): Promise<OrderQueryResult>;
  closeOrder(query: { outTradeNo: string }, options: CallOptions): Promise<void>;
}

type Endpoint = 'unifiedorder' | 'orderquery' | 'closeorder';

interface ResolvedOptions {
  appId: string;
  mchId: string;
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  fetch: typeof fetch;
}

const DEFAULT_BASE_URL = 'https://api.mch.weixin.qq.com';
// WeChat Pay's own rule for out_trade_no (this project's ids use a narrower alphabet).
const WECHAT_OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const POSITIVE_FEN = /^[1-9][0-9]{0,11}$/;
// WeChat Pay v2 only carries the 1-to-3-byte part of UTF-8.
const FOUR_BYTE_UTF8 = /[\u{10000}-\u{10FFFF}]/u;

function resolveOptions(options: WechatPayClientOptions): ResolvedOptions {
  const { appId, mchId, apiKey } = options;
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
  const baseUrl = options.baseUrl ?? DEFAULT_BASE_URL;
  let parsed: URL | undefined;
  try {
    parsed = new URL(baseUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.search || parsed.hash) {
    throw new WechatPayConfigError(
      `baseUrl "${String(baseUrl).slice(0, 100)}" is not an http(s) URL without query (e.g. ${DEFAULT_BASE_URL})`,
    );
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
  };
}

function checkUnifiedOrderParams(params: UnifiedOrderParams): void {
  const required = ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type'] as const;
  for (const name of required) {
    if (typeof params[name] !== 'string' || params[name] === '') {
      throw new TypeError(`unifiedOrder: ${name} is required`);
    }
  }
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw new TypeError(`unifiedOrder: ${name} must be a string (WeChat Pay signs text), got ${typeof value}`);
    }
    // WeChat's Java SDK trims values before signing; a padded value is a silent signature mismatch.
    if (value !== value.trim()) throw new TypeError(`unifiedOrder: ${name} has whitespace around it`);
    if (FOUR_BYTE_UTF8.test(value)) {
      throw new TypeError(`unifiedOrder: ${name} holds an emoji or other 4-byte character, which WeChat Pay refuses`);
    }
  }
  if (!POSITIVE_FEN.test(params.total_fee)) {
    throw new TypeError(
      `unifiedOrder: total_fee must be a whole number of fen >= 1 written as digits, got "${params.total_fee.slice(0, 40)}"`,
    );
  }
  if (!WECHAT_OUT_TRADE_NO.test(params.out_trade_no)) {
    throw new TypeError('unifiedOrder: out_trade_no must be 6 to 32 characters of [0-9A-Za-z_-|*]');
  }
  if (!(TRADE_TYPES as readonly string[]).includes(params.trade_type)) {
    throw new TypeError(`unifiedOrder: trade_type must be one of ${TRADE_TYPES.join(', ')}`);
  }
  if (params.trade_type === 'JSAPI' && !params.openid) {
    throw new TypeError('unifiedOrder: a JSAPI order needs the payer\'s openid (under this appid)');
  }
  if (params.trade_type === 'NATIVE' && !params.product_id) {
    throw new TypeError('unifiedOrder: a NATIVE order needs a product_id');
  }
}

function checkOutTradeNo(method: string, outTradeNo: string): void {
  if (typeof outTradeNo !== 'string' || !WECHAT_OUT_TRADE_NO.test(outTradeNo)) {
    throw new TypeError(`${method}: outTradeNo must be 6 to 32 characters of [0-9A-Za-z_-|*]`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function describeNetworkCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, other side closed) in cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

export function createWechatPayClient(options: WechatPayClientOptions): WechatPayClient {
  const config = resolveOptions(options);

  async function attempt(endpoint: Endpoint, body: string, signType: SignType): Promise<Fields> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), config.timeoutMs);
    let bytes: Uint8Array;
    let status: number;
    try {
      const response = await config.fetch(`${config.baseUrl}/pay/${endpoint}`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body,
        signal: controller.signal,
      });
      status = response.status;
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      if (controller.signal.aborted) {
        throw new WechatPayNetworkError(`WeChat Pay ${endpoint} did not answer within ${config.timeoutMs} ms`, {
          code: 'TIMEOUT',
          cause: error,
        });
      }
      throw new WechatPayNetworkError(
        `WeChat Pay ${endpoint} could not be reached at ${config.baseUrl} (${describeNetworkCause(error)})`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    if (status >= 500) {
      throw new WechatPayNetworkError(`WeChat Pay ${endpoint} answered HTTP ${status}`, { code: `HTTP_${status}` });
    }
    if (status < 200 || status >= 300) {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answered HTTP ${status} (is baseUrl ${config.baseUrl} right?)`,
        `HTTP_${status}`,
      );
    }
    return readAnswer(endpoint, bytes, signType);
  }

  function readAnswer(endpoint: Endpoint, bytes: Uint8Array, signType: SignType): Fields {
    let fields: Fields;
    try {
      fields = parseXml(bytes);
    } catch (error) {
      if (!(error instanceof XmlFormatError)) throw error;
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answered something that is not a WeChat Pay document: ${error.message}`,
        'XML_FORMAT_ERROR',
      );
    }
    // Some gateways answer a refused call with retcode/retmsg instead of return_code/return_msg.
    const refusedWithRetcode = fields.return_code === undefined && fields.retcode !== undefined && fields.retcode !== '0';
    if (fields.return_code === 'FAIL' || refusedWithRetcode) {
      const message = fields.return_msg || fields.retmsg || '';
      const retcode = fields.retcode ? ` (retcode ${fields.retcode})` : '';
      throw new WechatPayCommunicationError(`${endpoint}: ${message.slice(0, 500)}${retcode}`);
    }
    if (fields.return_code !== 'SUCCESS') {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answered without return_code SUCCESS or FAIL (got "${(fields.return_code ?? '').slice(0, 40)}")`,
      );
    }
    const check = verifySignature(fields, config.apiKey, signType);
    if (!check.ok) {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answer failed signature verification: ${check.message}`,
        'INVALID_SIGNATURE',
      );
    }
    if (fields.appid !== undefined && fields.appid !== config.appId) {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answer is for appid "${fields.appid.slice(0, 40)}", not ours (${config.appId})`,
        'FOREIGN_APPID',
      );
    }
    if (fields.mch_id !== undefined && fields.mch_id !== config.mchId) {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answer is for mch_id "${fields.mch_id.slice(0, 40)}", not ours (${config.mchId})`,
        'FOREIGN_MCH_ID',
      );
    }
    if (fields.result_code === 'FAIL') {
      throw new WechatPayBusinessError(fields.err_code || 'UNKNOWN', fields.err_code_des ?? '', endpoint);
    }
    if (fields.result_code !== 'SUCCESS') {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint} answer has no result_code SUCCESS or FAIL (got "${(fields.result_code ?? '').slice(0, 40)}")`,
      );
    }
    return fields;
  }

  async function call(endpoint: Endpoint, params: Readonly<Record<string, string | undefined>>, signType: SignType) {
    // Signed once: every retry sends the same bytes (same nonce_str), which WeChat Pay treats as
    // the same request, never as a second order.
    const body = buildXml(
      signFields({ ...params, appid: config.appId, mch_id: config.mchId, nonce_str: nonceStr() }, config.apiKey, signType),
    );
    let lastError: WechatPayError | undefined;
    for (let attemptNo = 1; attemptNo <= config.maxAttempts; attemptNo++) {
      if (attemptNo > 1) await sleep(config.retryDelayMs * 2 ** (attemptNo - 2));
      try {
        return await attempt(endpoint, body, signType);
      } catch (error) {
        if (!(error instanceof WechatPayError) || !error.retryable) throw error;
        lastError = error;
      }
    }
    // maxAttempts >= 1, so the loop ran and failed at least once.
    throw lastError as WechatPayError;
  }

  return {
    async unifiedOrder(params, { signType }) {
      checkUnifiedOrderParams(params);
      const fields = await call('unifiedorder', params, signType);
      const prepayId = fields.prepay_id;
      if (!prepayId) throw new WechatPayResponseError('WeChat Pay unifiedorder succeeded without a prepay_id');
      const tradeType = fields.trade_type || params.trade_type;
      if (params.trade_type === 'NATIVE' && !fields.code_url) {
        throw new WechatPayResponseError('WeChat Pay unifiedorder answered a NATIVE order without code_url');
      }
      if (params.trade_type === 'MWEB' && !fields.mweb_url) {
        throw new WechatPayResponseError('WeChat Pay unifiedorder answered an MWEB order without mweb_url');
      }
      return {
        prepayId,
        tradeType,
        ...(fields.code_url ? { codeUrl: fields.code_url } : {}),
        ...(fields.mweb_url ? { mwebUrl: fields.mweb_url } : {}),
        fields,
      };
    },

    async orderQuery({ outTradeNo }, { signType }) {
      checkOutTradeNo('orderQuery', outTradeNo);
      const fields = await call('orderquery', { out_trade_no: outTradeNo }, signType);
      if (!fields.trade_state) throw new WechatPayResponseError('WeChat Pay orderquery answered without trade_state');
      if (fields.out_trade_no !== undefined && fields.out_trade_no !== outTradeNo) {
        throw new WechatPayResponseError(
          `WeChat Pay orderquery answered about out_trade_no "${fields.out_trade_no.slice(0, 40)}", not ${outTradeNo}`,
        );
      }
      return {
        tradeState: fields.trade_state,
        ...(fields.trade_state_desc ? { tradeStateDesc: fields.trade_state_desc } : {}),
        ...(fields.transaction_id ? { transactionId: fields.transaction_id } : {}),
        ...(fields.total_fee ? { totalFee: fields.total_fee } : {}),
        ...(fields.time_end ? { timeEnd: fields.time_end } : {}),
        outTradeNo,
        fields,
      };
    },

    async closeOrder({ outTradeNo }, { signType }) {
      checkOutTradeNo('closeOrder', outTradeNo);
      await call('closeorder', { out_trade_no: outTradeNo }, signType);
    },
  };
}
