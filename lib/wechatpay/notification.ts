/**
 * The payment result callback (notify_url), protocol only: reading it, checking it, answering it.
 * What a payment means for an order is the caller's business.
 *
 * Flow: `parseNotification(body)` → `verifyNotification(parsed, ...)` with the sign type the order was
 * made with (callbacks usually carry no sign_type and are signed with the order's; lib/orders/notify.ts
 * takes it from the signature's length, so that a first callback reads no order).
 */
import { failure, type Failure } from '../result';
import { XmlFormatError } from './errors';
import { checkPaymentDocument, holdsNoFieldBoundary, type PaymentDocumentFailureReason } from './payment-document';
import { verifySignature, type Fields, type SignType } from './sign';
import { buildXml, parseXml } from './xml';

/** A callback whose XML was read but not yet authenticated: nothing in it can be trusted yet. */
export interface UnverifiedNotification {
  ok: true;
  /** Only for finding the order (and its sign type) before verifying. */
  outTradeNo: string;
  fields: Fields;
  /** The raw callback held neither `&` nor `=` (payment-document.ts: `holdsNoFieldBoundary`), so no field can. */
  readFromSourceWithoutBoundary?: boolean;
}

export type NotificationFailureReason =
  | 'MALFORMED_XML'
  | 'RETURN_CODE_NOT_SUCCESS'
  | 'MISSING_FIELD'
  | 'BAD_SIGNATURE'
  | 'FOREIGN_APPID'
  | 'FOREIGN_MCH_ID'
  | 'BAD_TOTAL_FEE'
  | PaymentDocumentFailureReason;

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
  /** Our app id, or every one of the merchant's apps (the caller then checks the order's own). */
  appId: string | readonly string[];
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
  return { ok: true, outTradeNo: fields.out_trade_no, fields, readFromSourceWithoutBoundary: holdsNoFieldBoundary(body) };
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
  const callbackAppId = fields.appid ?? '';
  if (typeof appId === 'string' ? callbackAppId !== appId : !appId.includes(callbackAppId)) {
    return failure('FOREIGN_APPID', `callback is for appid "${callbackAppId.slice(0, 40)}", not ours`);
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
  if (fields.result_code === 'SUCCESS') {
    const document = checkPaymentDocument(fields, 'successful callback', {
      readFromSourceWithoutBoundary: notification.readFromSourceWithoutBoundary === true,
    });
    if (!document.ok) return document;
    // The document check requires transaction_id, total_fee and time_end.
    return {
      ok: true,
      payment: {
        resultCode: 'SUCCESS',
        outTradeNo,
        transactionId: fields.transaction_id as string,
        totalFee: totalFee as string,
        timeEnd: fields.time_end as string,
        fields,
      },
    };
  }
  const timeEnd = fields.time_end ? { timeEnd: fields.time_end } : {};
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

/** The SUCCESS reply never changes: built once. */
let successReply: string | undefined;

/** The answer WeChat Pay expects: SUCCESS stops its retries; FAIL (with a reason) asks for another try. */
export function notificationReply(returnCode: 'SUCCESS'): string;
export function notificationReply(returnCode: 'FAIL', reason: string): string;
export function notificationReply(returnCode: 'SUCCESS' | 'FAIL', reason?: string): string {
  if (returnCode === 'SUCCESS') return (successReply ??= buildXml({ return_code: 'SUCCESS', return_msg: 'OK' }));
  const returnMsg = (reason ?? '').replace(CONTROL, ' ').slice(0, 256) || 'FAIL';
  return buildXml({ return_code: 'FAIL', return_msg: returnMsg });
}
