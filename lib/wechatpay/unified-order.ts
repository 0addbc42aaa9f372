import { WechatPayResponseError } from './errors';
import type { Fields } from './sign';
import { signedXml, type Endpoint } from './transport';

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

// WeChat Pay's own rule for out_trade_no (this project's ids use a narrower alphabet).
export const WECHAT_OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const POSITIVE_FEN = /^[1-9][0-9]{0,11}$/;
// WeChat Pay v2 only carries the 1-to-3-byte part of UTF-8.
const FOUR_BYTE_UTF8 = /[\u{10000}-\u{10FFFF}]/u;

function checkUnifiedOrderParams(params: UnifiedOrderParams): void {
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
    throw new TypeError("unifiedOrder: a JSAPI order needs the payer's openid (under this appid)");
  }
  if (params.trade_type === 'NATIVE' && !params.product_id) {
    throw new TypeError('unifiedOrder: a NATIVE order needs a product_id');
  }
}

/** `/pay/unifiedorder`: places an order and answers its prepay_id (and code_url or mweb_url). */
export const UNIFIED_ORDER: Endpoint<UnifiedOrderParams, UnifiedOrderResult> = {
  name: 'unifiedorder',
  method: 'unifiedOrder',
  path: '/pay/unifiedorder',
  needsClientCert: false,
  required: ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type'],
  fields: (params) => params,
  check: checkUnifiedOrderParams,
  answer: signedXml((fields, params) => {
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
  }),
};
