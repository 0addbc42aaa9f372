/**
 * The refund result callback (the refund's notify_url), protocol only: reading it, decrypting it,
 * checking it. Which refund it settles, and whether it matches one we asked for, is the caller's
 * business.
 *
 * The outer document (`return_code, return_msg, appid, mch_id, nonce_str, req_info`) carries no
 * `sign`: what authenticates a refund callback is that `req_info` decrypts with the merchant's key
 * (AES-256-ECB, key: the lowercase hex MD5 of the API key, PKCS#7 padding) into a `<root>` document.
 *
 * ECB has no integrity check: someone who has seen other genuine callbacks of the same merchant
 * could splice their 16-byte blocks together. A callback that passes here must therefore still be
 * matched against a stored refund (`out_refund_no`, `out_trade_no`, `refund_fee`) before anything
 * is recorded, and its amounts are checked for consistency below.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { XmlFormatError } from './errors';
import type { Fields } from './sign';
import { fromBeijingTimestamp } from './time';
import { parseXml } from './xml';

export type RefundNotificationFailureReason =
  | 'MALFORMED_XML'
  | 'RETURN_CODE_NOT_SUCCESS'
  | 'MISSING_FIELD'
  | 'FOREIGN_APPID'
  | 'FOREIGN_MCH_ID'
  | 'BAD_CIPHERTEXT'
  | 'BAD_PLAINTEXT'
  | 'BAD_FIELD'
  | 'BAD_REFUND_STATUS'
  | 'BAD_TOTAL_FEE'
  | 'BAD_REFUND_FEE';

export interface RefundNotificationFailure {
  ok: false;
  reason: RefundNotificationFailureReason;
  /** Says what is wrong, without secrets; fit for the log and for the FAIL reply. */
  message: string;
}

export const REFUND_STATUSES = ['SUCCESS', 'CHANGE', 'REFUNDCLOSE'] as const;
/** SUCCESS: the money reached the payer. CHANGE: it could not (a person must act). REFUNDCLOSE: closed. */
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/** A decrypted, checked refund callback. Amounts are integer fen. */
export interface RefundNotification {
  /** The outer document's app id (one of the allowed ones) and merchant id. */
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  /** WeChat Pay's refund id. */
  refundId: string;
  outRefundNo: string;
  /** The order's amount. */
  totalFee: number;
  /** The order's amount less non-cash coupons, when WeChat Pay sends it. */
  settlementTotalFee?: number;
  /** The amount refunded. */
  refundFee: number;
  /** The amount refunded less non-cash coupons. */
  settlementRefundFee: number;
  refundStatus: RefundStatus;
  /** `yyyy-MM-dd HH:mm:ss`, Beijing time, as sent (when the money reached the payer). */
  successTime?: string;
  /** `successTime` as an instant. */
  successAt?: Date;
  /** Where the money went, e.g. "支付用户的零钱" or a bank card (WeChat Pay's field is `refund_recv_accout`, sic). */
  refundRecvAccount?: string;
  /** REFUND_SOURCE_RECHARGE_FUNDS or REFUND_SOURCE_UNSETTLED_FUNDS. */
  refundAccount?: string;
  /** API or VENDOR_PLATFORM (a refund made by hand in the merchant platform). */
  refundRequestSource?: string;
  /** Every decrypted field, as received. */
  fields: Fields;
}

export interface ReadRefundNotificationOptions {
  apiKey: string;
  /** The app ids this backend serves; a callback for any other is refused. */
  appIds: ReadonlySet<string> | readonly string[];
  mchId: string;
}

/** A real decrypted `req_info` is under 1 KB. */
export const MAX_REQ_INFO_PLAINTEXT_BYTES = 16 * 1024;

const FEN = /^(0|[1-9][0-9]{0,11})$/;
const WHOLE_FEN = 'a whole number of fen (at most 12 digits)';
// WeChat Pay's own ids are digits; letters are allowed in case, never separators or markup.
const WECHAT_ID = /^[0-9A-Za-z]{1,32}$/;
// The merchant's numbers: "数字、大小写字母_-|*@", at most 32 (order) and 64 (refund) characters.
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*@]{1,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const SUCCESS_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
// Free text (a bank's name and a card's last digits): any characters but controls, within reason.
// eslint-disable-next-line no-control-regex
const TEXT = /^[^\u0000-\u001F\u007F]{1,128}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})+$|^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function failure(reason: RefundNotificationFailureReason, message: string): RefundNotificationFailure {
  return { ok: false, reason, message };
}

/** Quotes a received value for a message: short, and without anything that could break a log line. */
function shown(value: string): string {
  // eslint-disable-next-line no-control-regex
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value).replace(/[\u0000-\u001F]/g, '?');
}

/** The AES-256 key: the 32 ASCII characters of the lowercase hex MD5 of the API key. */
export function reqInfoKey(apiKey: string): Buffer {
  return Buffer.from(createHash('md5').update(apiKey, 'utf8').digest('hex'), 'ascii');
}

/**
 * Decrypts and parses a `req_info`. BAD_CIPHERTEXT: it is not strict base64 of whole AES blocks, or
 * does not decrypt with this key into UTF-8 text (another merchant's key, or changed in transit).
 * BAD_PLAINTEXT: it decrypts, but not into a flat `<root>` document within the size limit.
 */
export function decryptReqInfo(reqInfo: string, apiKey: string): { ok: true; fields: Fields } | RefundNotificationFailure {
  if (reqInfo === '') return failure('BAD_CIPHERTEXT', 'req_info is empty');
  if (!BASE64.test(reqInfo)) return failure('BAD_CIPHERTEXT', 'req_info is not base64');
  const ciphertext = Buffer.from(reqInfo, 'base64');
  // The pattern leaves unused bits of the last character free; only the canonical spelling is WeChat Pay's.
  if (ciphertext.toString('base64') !== reqInfo) return failure('BAD_CIPHERTEXT', 'req_info is not canonical base64');
  if (ciphertext.length % 16 !== 0) {
    return failure('BAD_CIPHERTEXT', `req_info is ${ciphertext.length} bytes, not whole 16-byte AES blocks (truncated?)`);
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-ecb', reqInfoKey(apiKey), null);
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return failure('BAD_CIPHERTEXT', 'req_info does not decrypt with our API key (bad padding: another key, or changed)');
  }
  let text: string;
  try {
    text = utf8.decode(plain);
  } catch {
    return failure('BAD_CIPHERTEXT', 'req_info decrypts to bytes that are not UTF-8 (another key, or changed)');
  }
  if (plain.length > MAX_REQ_INFO_PLAINTEXT_BYTES) {
    return failure('BAD_PLAINTEXT', `req_info decrypts to ${plain.length} bytes, over the ${MAX_REQ_INFO_PLAINTEXT_BYTES}-byte limit`);
  }
  try {
    return { ok: true, fields: parseXml(text, { rootName: 'root', maxBytes: MAX_REQ_INFO_PLAINTEXT_BYTES }) };
  } catch (error) {
    if (!(error instanceof XmlFormatError)) throw error;
    return failure('BAD_PLAINTEXT', `req_info decrypts to a document that is refused: ${error.message}`);
  }
}

type Check = RefundNotificationFailure | undefined;

function required(fields: Fields, name: string): Check {
  return fields[name] === undefined || fields[name] === ''
    ? failure('MISSING_FIELD', `refund callback's req_info has no ${name}`)
    : undefined;
}

function matches(
  fields: Fields,
  name: string,
  pattern: RegExp,
  reason: RefundNotificationFailureReason = 'BAD_FIELD',
  expected = 'of the form WeChat Pay sends',
): Check {
  const value = fields[name];
  if (value === undefined || value === '' || pattern.test(value)) return undefined;
  return failure(reason, `refund callback's ${name} ${shown(value)} is not ${expected}`);
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Reads a refund callback's raw body: the outer document (return_code, our app id and merchant id),
 * then `req_info` decrypted and checked field by field. Never throws on anything received.
 */
export function readRefundNotification(
  body: string | Uint8Array,
  { apiKey, appIds, mchId }: ReadRefundNotificationOptions,
): { ok: true; refund: RefundNotification } | RefundNotificationFailure {
  let outer: Fields;
  try {
    outer = parseXml(body);
  } catch (error) {
    if (!(error instanceof XmlFormatError)) throw error;
    return failure('MALFORMED_XML', `refund callback is not a WeChat Pay XML document: ${error.message}`);
  }
  if (outer.return_code !== 'SUCCESS') {
    const returnMsg = outer.return_msg ? `: ${shown(outer.return_msg)}` : '';
    return failure('RETURN_CODE_NOT_SUCCESS', `refund callback return_code is ${shown(outer.return_code ?? '')}, not SUCCESS${returnMsg}`);
  }
  for (const name of ['appid', 'mch_id', 'req_info']) {
    if (!outer[name]) return failure('MISSING_FIELD', `refund callback has no ${name}`);
  }
  const appId = outer.appid as string;
  const allowed = 'has' in appIds ? appIds.has(appId) : appIds.includes(appId);
  if (!allowed) return failure('FOREIGN_APPID', `refund callback is for appid ${shown(appId)}, not one of ours`);
  if (outer.mch_id !== mchId) {
    return failure('FOREIGN_MCH_ID', `refund callback is for mch_id ${shown(outer.mch_id as string)}, not ours`);
  }

  const decrypted = decryptReqInfo(outer.req_info as string, apiKey);
  if (!decrypted.ok) return decrypted;
  const { fields } = decrypted;

  const problem =
    ['transaction_id', 'out_trade_no', 'refund_id', 'out_refund_no', 'total_fee', 'refund_fee', 'settlement_refund_fee', 'refund_status']
      .map((name) => required(fields, name))
      .find(Boolean) ??
    matches(fields, 'transaction_id', WECHAT_ID) ??
    matches(fields, 'out_trade_no', OUT_TRADE_NO) ??
    matches(fields, 'refund_id', WECHAT_ID) ??
    matches(fields, 'out_refund_no', OUT_REFUND_NO) ??
    matches(fields, 'total_fee', FEN, 'BAD_TOTAL_FEE', WHOLE_FEN) ??
    matches(fields, 'settlement_total_fee', FEN, 'BAD_TOTAL_FEE', WHOLE_FEN) ??
    matches(fields, 'refund_fee', FEN, 'BAD_REFUND_FEE', WHOLE_FEN) ??
    matches(fields, 'settlement_refund_fee', FEN, 'BAD_REFUND_FEE', WHOLE_FEN) ??
    matches(fields, 'refund_status', /^(SUCCESS|CHANGE|REFUNDCLOSE)$/, 'BAD_REFUND_STATUS', 'SUCCESS, CHANGE or REFUNDCLOSE') ??
    matches(fields, 'success_time', SUCCESS_TIME) ??
    matches(fields, 'refund_recv_accout', TEXT) ??
    matches(fields, 'refund_account', CODE) ??
    matches(fields, 'refund_request_source', CODE);
  if (problem) return problem;

  const totalFee = Number(fields.total_fee);
  const refundFee = Number(fields.refund_fee);
  const settlementRefundFee = Number(fields.settlement_refund_fee);
  const settlementTotal = optional(fields.settlement_total_fee);
  const settlementTotalFee = settlementTotal === undefined ? undefined : Number(settlementTotal);
  if (totalFee < 1) return failure('BAD_TOTAL_FEE', "refund callback's total_fee is 0");
  if (settlementTotalFee !== undefined && settlementTotalFee > totalFee) {
    return failure('BAD_TOTAL_FEE', `refund callback's settlement_total_fee ${settlementTotalFee} is over total_fee ${totalFee}`);
  }
  if (refundFee < 1) return failure('BAD_REFUND_FEE', "refund callback's refund_fee is 0");
  if (refundFee > totalFee) {
    return failure('BAD_REFUND_FEE', `refund callback's refund_fee ${refundFee} is over total_fee ${totalFee}`);
  }
  if (settlementRefundFee > refundFee) {
    return failure('BAD_REFUND_FEE', `refund callback's settlement_refund_fee ${settlementRefundFee} is over refund_fee ${refundFee}`);
  }

  const successTime = optional(fields.success_time);
  let successAt: Date | undefined;
  if (successTime !== undefined) {
    successAt = fromBeijingTimestamp(successTime.replace(/[- :]/g, ''));
    if (!successAt) return failure('BAD_FIELD', `refund callback's success_time ${shown(successTime)} is not a real time`);
  }
  const refundRecvAccount = optional(fields.refund_recv_accout);
  const refundAccount = optional(fields.refund_account);
  const refundRequestSource = optional(fields.refund_request_source);
  return {
    ok: true,
    refund: {
      appId,
      mchId,
      transactionId: fields.transaction_id as string,
      outTradeNo: fields.out_trade_no as string,
      refundId: fields.refund_id as string,
      outRefundNo: fields.out_refund_no as string,
      totalFee,
      ...(settlementTotalFee !== undefined ? { settlementTotalFee } : {}),
      refundFee,
      settlementRefundFee,
      refundStatus: fields.refund_status as RefundStatus,
      ...(successTime !== undefined ? { successTime, successAt } : {}),
      ...(refundRecvAccount !== undefined ? { refundRecvAccount } : {}),
      ...(refundAccount !== undefined ? { refundAccount } : {}),
      ...(refundRequestSource !== undefined ? { refundRequestSource } : {}),
      fields,
    },
  };
}
