import { isIP } from 'node:net';
import type { Fields } from '../../lib/wechatpay/sign';
import { fromBeijingTimestamp } from '../../lib/wechatpay/time';

/** A business refusal: result_code=FAIL with this err_code and err_code_des. */
export interface Refusal {
  errCode: string;
  errCodeDes: string;
}

export const TRADE_TYPES = ['JSAPI', 'NATIVE', 'APP', 'MWEB'] as const;

/**
 * WeChat Pay's own rule for out_trade_no: 6 to 32 of [0-9A-Za-z_-|*]. The product's rule is
 * narrower (no `|` or `*`); the emulator accepts what WeChat Pay accepts.
 */
export const WECHAT_OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;

// Characters outside the Basic Multilingual Plane take 4 bytes in UTF-8, which WeChat Pay refuses.
const FOUR_BYTE_UTF8 = /[\u{10000}-\u{10FFFF}]/u;

const UNIFIEDORDER_REQUIRED = ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type'] as const;

export function lackParams(name: string): Refusal {
  return { errCode: 'LACK_PARAMS', errCodeDes: `缺少参数${name}` };
}

function paramError(errCodeDes: string): Refusal {
  return { errCode: 'PARAM_ERROR', errCodeDes };
}

export function missing(fields: Fields, name: string): boolean {
  return fields[name] === undefined || fields[name] === '';
}

/** Checks a unified order's parameters; the first problem found, or undefined when they are valid. */
export function checkUnifiedOrder(fields: Fields): Refusal | undefined {
  for (const name of UNIFIEDORDER_REQUIRED) if (missing(fields, name)) return lackParams(name);
  const f = fields as Fields & Record<(typeof UNIFIEDORDER_REQUIRED)[number], string>;

  for (const [name, value] of Object.entries(fields)) {
    if (FOUR_BYTE_UTF8.test(value)) return paramError(`${name}含有不支持的字符(4字节UTF-8字符)`);
  }
  if (!(TRADE_TYPES as readonly string[]).includes(f.trade_type)) {
    return paramError(`trade_type参数错误: ${f.trade_type.slice(0, 16)}`);
  }
  if (f.trade_type === 'JSAPI' && missing(fields, 'openid')) {
    return paramError('trade_type=JSAPI时（即JSAPI支付），openid为必传参数');
  }
  if (f.trade_type === 'NATIVE' && missing(fields, 'product_id')) {
    return paramError('trade_type=NATIVE时（即扫码支付），product_id为必传参数');
  }
  if (!/^[1-9][0-9]{0,9}$/.test(f.total_fee)) return paramError('total_fee参数错误: 须为正整数(分)');
  if (!WECHAT_OUT_TRADE_NO.test(f.out_trade_no)) {
    return paramError('out_trade_no参数错误: 6-32位数字、大小写字母或_-|*');
  }
  if (f.body.length > 128) return paramError('body参数长度有误: 不能超过128个字符');
  if (fields.attach !== undefined && fields.attach.length > 127) {
    return paramError('attach参数长度有误: 不能超过127个字符');
  }
  if (fields.nonce_str !== undefined && fields.nonce_str.length > 32) {
    return paramError('nonce_str参数长度有误: 不能超过32个字符');
  }
  if (isIP(f.spbill_create_ip) === 0) return paramError('spbill_create_ip参数格式错误');
  const notifyProblem = checkNotifyUrl(f.notify_url);
  if (notifyProblem) return paramError(notifyProblem);
  if (fields.fee_type !== undefined && fields.fee_type !== 'CNY') return paramError('fee_type参数错误: 仅支持CNY');
  if (fields.limit_pay !== undefined && fields.limit_pay !== 'no_credit') return paramError('limit_pay参数错误');
  return checkTimes(fields);
}

function checkNotifyUrl(value: string): string | undefined {
  if (value.length > 256) return 'notify_url参数长度有误: 不能超过256个字符';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'notify_url参数格式错误: 不是有效的URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'notify_url参数格式错误: 须为http或https地址';
  if (value.includes('?')) return 'notify_url参数格式错误: 不能携带参数';
  return undefined;
}

function checkTimes(fields: Fields): Refusal | undefined {
  if (fields.time_start !== undefined && !fromBeijingTimestamp(fields.time_start)) {
    return paramError('time_start参数格式错误: 须为北京时间yyyyMMddHHmmss');
  }
  if (fields.time_expire !== undefined && !fromBeijingTimestamp(fields.time_expire)) {
    return paramError('time_expire参数格式错误: 须为北京时间yyyyMMddHHmmss');
  }
  return undefined;
}

/**
 * A new order must leave at least a minute between its start (or now) and its expiry. Both are
 * absolute wall-clock times, so this rule is not scaled; and it is only checked on the first call,
 * as an identical repeat of an existing order is answered from what was stored.
 */
export function checkExpiryOfNewOrder(fields: Fields, now: Date): Refusal | undefined {
  if (fields.time_expire === undefined) return undefined;
  const expire = fromBeijingTimestamp(fields.time_expire);
  const start = fields.time_start === undefined ? undefined : fromBeijingTimestamp(fields.time_start);
  if (expire && expire.getTime() - (start ?? now).getTime() < 60_000) {
    return paramError('time_expire时间过短，至少1分钟');
  }
  return undefined;
}
