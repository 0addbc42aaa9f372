/**
 * Test helpers: refund callbacks as WeChat Pay sends them, encrypted with a merchant's key. For the
 * emulator (which sends them) and for tests (which forge hostile ones); the product never builds them.
 */
import { createCipheriv } from 'node:crypto';
import { nonceStr } from '../../lib/wechatpay/ids';
import { reqInfoKey } from '../../lib/wechatpay/refund-notification';
import type { SignableFields } from '../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { buildXml } from '../../lib/wechatpay/xml';

/** Builds a flat `<root>` document, the plaintext of `req_info` (values in CDATA, like WeChat Pay's). */
export function buildRootXml(fields: SignableFields): string {
  // buildXml always writes `<xml>...</xml>`: only the root's name differs.
  return `<root>${buildXml(fields).slice('<xml>'.length, -'</xml>'.length)}</root>`;
}

/**
 * Encrypts a `req_info` with a merchant's API key: AES-256-ECB, key the lowercase hex MD5 of the API
 * key, PKCS#7, base64. Fields are written as a `<root>` document; a string or bytes are encrypted as
 * they are (to forge malformed plaintexts).
 */
export function encryptReqInfo(content: SignableFields | string | Uint8Array, apiKey: string): string {
  const plaintext =
    typeof content === 'string'
      ? Buffer.from(content, 'utf8')
      : content instanceof Uint8Array
        ? content
        : Buffer.from(buildRootXml(content), 'utf8');
  const cipher = createCipheriv('aes-256-ecb', reqInfoKey(apiKey), null);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]).toString('base64');
}

function randomDigits(count: number): string {
  let out = '';
  while (out.length < count) out += Math.floor(Math.random() * 10);
  return out;
}

/** `yyyy-MM-dd HH:mm:ss` in Beijing time, the format of `success_time`. */
export function toBeijingDateTime(date: Date): string {
  const compact = toBeijingTimestamp(date);
  return `${compact.slice(0, 4)}-${compact.slice(4, 6)}-${compact.slice(6, 8)} ${compact.slice(8, 10)}:${compact.slice(10, 12)}:${compact.slice(12, 14)}`;
}

export interface EncryptedRefundNotificationOptions {
  apiKey: string;
  appid: string;
  mch_id: string;
  /**
   * The decrypted fields: overrides and additions to realistic defaults; `out_trade_no`,
   * `out_refund_no`, `total_fee` and `refund_fee` are required. An `undefined` value removes a
   * default field. `success_time` is set only for a SUCCESS refund unless given.
   */
  fields: { out_trade_no: string; out_refund_no: string; total_fee: string; refund_fee: string } & Record<string, string | undefined>;
  /** Overrides and additions to the outer document (e.g. a forged `req_info`); `undefined` removes. */
  outer?: Record<string, string | undefined>;
  now?: Date;
}

/** The decrypted fields such a callback carries, defaults filled in. */
export function refundNotificationFields({
  fields,
  now = new Date(),
}: Pick<EncryptedRefundNotificationOptions, 'fields' | 'now'>): Record<string, string> {
  const status = fields.refund_status ?? 'SUCCESS';
  const merged: Record<string, string | undefined> = {
    // WeChat Pay's transaction ids are 28 digits starting with 4200, refund ids 29 starting with 503.
    transaction_id: `4200${randomDigits(24)}`,
    refund_id: `503${randomDigits(26)}`,
    settlement_total_fee: fields.total_fee,
    settlement_refund_fee: fields.refund_fee,
    refund_status: status,
    ...(status === 'SUCCESS' ? { success_time: toBeijingDateTime(now) } : {}),
    refund_recv_accout: '支付用户的零钱',
    refund_account: 'REFUND_SOURCE_RECHARGE_FUNDS',
    refund_request_source: 'API',
    ...fields,
  };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(merged)) if (value !== undefined) out[name] = value;
  return out;
}

/** A refund callback as WeChat Pay sends it: no sign, the refund's details encrypted in `req_info`. */
export function encryptedRefundNotification({
  apiKey,
  appid,
  mch_id,
  fields,
  outer = {},
  now,
}: EncryptedRefundNotificationOptions): string {
  const document: Record<string, string | undefined> = {
    return_code: 'SUCCESS',
    appid,
    mch_id,
    nonce_str: nonceStr(),
    req_info: encryptReqInfo(refundNotificationFields({ fields, ...(now ? { now } : {}) }), apiKey),
    ...outer,
  };
  return buildXml(document);
}
