import { randomBytes } from 'node:crypto';
import { randomAlphanumeric } from '../../lib/wechatpay/ids';
import { randomDigits } from '../wechatpay-documents/payment-notification';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';

/** WeChat Pay's fixed-looking identifiers, shaped like the real ones so clients meet realistic values. */

/** `wx` + Beijing yyyyMMddHHmmss + 20 hex characters, 36 in all, like WeChat Pay's. */
export function newPrepayId(now: Date): string {
  return `wx${toBeijingTimestamp(now)}${randomBytes(10).toString('hex')}`;
}

/** 28 digits: `42000`, 3 digits, the Beijing date, 12 digits; far beyond Number's exact range. */
export function newTransactionId(now: Date): string {
  return `42000${randomDigits(3)}${toBeijingTimestamp(now).slice(0, 8)}${randomDigits(12)}`;
}

export function newCodeUrl(): string {
  return `weixin://wxpay/bizpayurl?pr=${randomAlphanumeric(7)}`;
}

export function newMwebUrl(prepayId: string): string {
  return `https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=${prepayId}&package=${randomDigits(10)}`;
}

/**
 * The payer of orders that carry no openid (NATIVE, APP, MWEB): WeChat Pay reports the openid of
 * whoever paid, under the merchant's app id; one fixed simulated user stands in for them.
 */
export const SIM_PAYER_OPENID = 'oSimPayer0000000000000000001';
