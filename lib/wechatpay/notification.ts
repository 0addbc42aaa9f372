/**
 * The payment result callback (notify_url), protocol only: reading it, checking it, answering it.
 * What a payment means for an order is the caller's business.
 *
 * Flow: `parseNotification(body)` → look up the order by `outTradeNo` to learn its sign type (callbacks
 * usually carry no sign_type and are signed with the order's) → `verifyNotification(parsed, ...)`.
 */
import { failure, type Failure } from '../result';
import { XmlFormatError } from './errors';
import { nonceStr } from './ids';
import { sign, verifySignature, type Fields, type SignType } from './sign';
import { toBeijingTimestamp } from './time';
import { buildXml, parseXml } from './xml';

/** A callback whose XML was read but not yet authenticated: nothing in it can be trusted yet. */
export interface UnverifiedNotification {
  ok: true;
  /** Only for finding the order (and its sign type) before verifying. */
  outTradeNo: string;
  fields: Fields;
}

export type NotificationFailureReason =
  | 'MALFORMED_XML'
  | 'RETURN_CODE_NOT_SUCCESS'
  | 'MISSING_FIELD'
  | 'BAD_SIGNATURE'
  | 'FOREIGN_APPID'
  | 'FOREIGN_MCH_ID'
  | 'BAD_TOTAL_FEE';

/** Its message says what is wrong, without secrets; fit for the log and for the FAIL reply. */
export type NotificationFailure = Failure<NotificationFailureReason>;

interface PaymentCommon {
  outTradeNo: string;
  /** `yyyyMMddHHmmss`, Beijing time. */
  timeEnd?: string;
  /** Every field received, all covered by the verified signature (coupon_*_$n included). */
  fields: Fields;
}

/** The user paid. */
export interface VerifiedSuccessfulPayment extends PaymentCommon {
  resultCode: 'SUCCESS';
  transactionId: string;
  /** Integer fen as signed, e.g. "100"; compare it with the order's amount before recording. */
  totalFee: string;
}

/** WeChat Pay reports a failed payment (rare; acknowledge it, as a FAIL reply only brings retries). */
export interface VerifiedFailedPayment extends PaymentCommon {
  resultCode: 'FAIL';
  errCode?: string;
  errCodeDes?: string;
  transactionId?: string;
  totalFee?: string;
}

export type VerifiedPayment = VerifiedSuccessfulPayment | VerifiedFailedPayment;

export interface VerifyNotificationOptions {
  apiKey: string;
  appId: string;
  mchId: string;
  /** The sign type the order was made with; used when the callback carries no sign_type. */
  orderSignType?: SignType;
}

const FEN = /^(0|[1-9][0-9]{0,11})$/;

/** Reads the raw callback body (read it raw: a framework's body parser would lose fields). */
export function parseNotification(body: string | Uint8Array): UnverifiedNotification | NotificationFailure {
  let fields: Fields;
  try {
    fields = parseXml(body);
  } catch (error) {
    if (!(error instanceof XmlFormatError)) throw error;
    return failure('MALFORMED_XML', `callback is not a WeChat Pay XML document: ${error.message}`);
  }
  if (fields.return_code !== 'SUCCESS') {
    const returnMsg = fields.return_msg ? `: ${fields.return_msg.slice(0, 200)}` : '';
    return failure(
      'RETURN_CODE_NOT_SUCCESS',
      `callback return_code is "${(fields.return_code ?? '').slice(0, 20)}", not SUCCESS${returnMsg}`,
    );
  }
  if (!fields.out_trade_no) return failure('MISSING_FIELD', 'callback has no out_trade_no');
  return { ok: true, outTradeNo: fields.out_trade_no, fields };
}

/**
 * Authenticates a parsed callback: the signature over every field received (with the callback's own
 * sign_type, else the order's sign type, else MD5), then our appid and mch_id.
 */
export function verifyNotification(
  notification: UnverifiedNotification,
  { apiKey, appId, mchId, orderSignType }: VerifyNotificationOptions,
): { ok: true; payment: VerifiedPayment } | NotificationFailure {
  const { fields } = notification;
  const check = verifySignature(fields, apiKey, orderSignType);
  if (!check.ok) return failure('BAD_SIGNATURE', `callback signature is not valid: ${check.message}`);
  if (fields.appid !== appId) {
    return failure('FOREIGN_APPID', `callback is for appid "${(fields.appid ?? '').slice(0, 40)}", not ours`);
  }
  if (fields.mch_id !== mchId) {
    return failure('FOREIGN_MCH_ID', `callback is for mch_id "${(fields.mch_id ?? '').slice(0, 40)}", not ours`);
  }
  const outTradeNo = fields.out_trade_no;
  if (!outTradeNo) return failure('MISSING_FIELD', 'callback has no out_trade_no');
  const totalFee = fields.total_fee;
  if (totalFee !== undefined && !FEN.test(totalFee)) {
    return failure('BAD_TOTAL_FEE', `callback total_fee "${totalFee.slice(0, 20)}" is not a whole number of fen`);
  }
  const timeEnd = fields.time_end ? { timeEnd: fields.time_end } : {};
  if (fields.result_code === 'SUCCESS') {
    if (!fields.transaction_id) return failure('MISSING_FIELD', 'successful callback has no transaction_id');
    if (totalFee === undefined) return failure('MISSING_FIELD', 'successful callback has no total_fee');
    return {
      ok: true,
      payment: { resultCode: 'SUCCESS', outTradeNo, transactionId: fields.transaction_id, totalFee, ...timeEnd, fields },
    };
  }
  if (fields.result_code === 'FAIL') {
    return {
      ok: true,
      payment: {
        resultCode: 'FAIL',
        outTradeNo,
        ...(fields.err_code ? { errCode: fields.err_code } : {}),
        ...(fields.err_code_des ? { errCodeDes: fields.err_code_des } : {}),
        ...(fields.transaction_id ? { transactionId: fields.transaction_id } : {}),
        ...(totalFee !== undefined ? { totalFee } : {}),
        ...timeEnd,
        fields,
      },
    };
  }
  return failure('MISSING_FIELD', 'callback has no result_code SUCCESS or FAIL');
}

// XML cannot carry most control characters; a reply must never fail to build.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F]/g;

/** The answer WeChat Pay expects: SUCCESS stops its retries; FAIL (with a reason) asks for another try. */
export function notificationReply(returnCode: 'SUCCESS'): string;
export function notificationReply(returnCode: 'FAIL', reason: string): string;
export function notificationReply(returnCode: 'SUCCESS' | 'FAIL', reason?: string): string {
  const returnMsg = returnCode === 'SUCCESS' ? 'OK' : (reason ?? '').replace(CONTROL, ' ').slice(0, 256) || 'FAIL';
  return buildXml({ return_code: returnCode, return_msg: returnMsg });
}

export interface SignedNotificationOptions {
  apiKey: string;
  signType: SignType;
  /**
   * Overrides and additions to the callback's fields; `appid`, `mch_id`, `out_trade_no` and
   * `total_fee` are required. An `undefined` value removes a default field.
   */
  fields: { appid: string; mch_id: string; out_trade_no: string; total_fee: string } & Record<
    string,
    string | undefined
  >;
  /** Coupons used for the payment; adds coupon_fee, coupon_count and coupon_*_$n, and lowers cash_fee. */
  coupons?: ReadonlyArray<{ id: string; fee: number; type?: 'CASH' | 'NO_CASH' }>;
  /** WeChat Pay usually sends no sign_type (it signs with the order's); set true to send one. */
  declareSignType?: boolean;
  now?: Date;
}

function randomDigits(count: number): string {
  let out = '';
  while (out.length < count) out += Math.floor(Math.random() * 10);
  return out;
}

/**
 * Test helper: a payment callback as WeChat Pay sends it, signed with `apiKey`. For the emulator and
 * tests of notify handling; the product never builds callbacks.
 */
export function signedNotification({
  apiKey,
  signType,
  fields,
  coupons = [],
  declareSignType = false,
  now = new Date(),
}: SignedNotificationOptions): string {
  const totalFee = Number(fields.total_fee);
  const couponTotal = coupons.reduce((sum, coupon) => sum + coupon.fee, 0);
  if (!Number.isSafeInteger(totalFee) || couponTotal > totalFee) {
    throw new RangeError('signedNotification: total_fee must be whole fen, at least the coupons\' total');
  }
  const couponFields: Record<string, string> = {};
  if (coupons.length > 0) {
    couponFields.coupon_fee = String(couponTotal);
    couponFields.coupon_count = String(coupons.length);
    coupons.forEach((coupon, n) => {
      couponFields[`coupon_type_${n}`] = coupon.type ?? 'NO_CASH';
      couponFields[`coupon_id_${n}`] = coupon.id;
      couponFields[`coupon_fee_${n}`] = String(coupon.fee);
    });
  }
  const merged: Record<string, string | undefined> = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    nonce_str: nonceStr(),
    result_code: 'SUCCESS',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    is_subscribe: 'N',
    trade_type: 'JSAPI',
    bank_type: 'OTHERS',
    fee_type: 'CNY',
    cash_fee: String(totalFee - couponTotal),
    // WeChat Pay's transaction ids are 28 digits starting with 4200 (a JS number would lose digits).
    transaction_id: `4200${randomDigits(24)}`,
    time_end: toBeijingTimestamp(now),
    ...(declareSignType ? { sign_type: signType } : {}),
    ...couponFields,
    ...fields,
  };
  const signed: Fields = {};
  for (const [name, value] of Object.entries(merged)) if (value !== undefined && name !== 'sign') signed[name] = value;
  signed.sign = sign(signed, apiKey, signType);
  return buildXml(signed);
}
