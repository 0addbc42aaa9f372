/**
 * Test helpers, and nothing the product runs: documents as WeChat Pay itself would send them, for
 * the emulator, the tests and the bench. No function's bundle imports this file.
 */
import { randomInt } from 'node:crypto';
import { nonceStr } from '../../lib/wechatpay/ids';
import { signFields, type SignType } from '../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { buildXml } from '../../lib/wechatpay/xml';

export interface SignedNotificationOptions {
  apiKey: string;
  signType: SignType;
  /**
   * Overrides and additions to the callback's fields; `appid`, `mch_id`, `out_trade_no` and
   * `total_fee` are required. An `undefined` value removes a default field.
   */
  fields: { appid: string; mch_id: string; out_trade_no: string; total_fee: string } & Record<string, string | undefined>;
  /** Coupons used for the payment; adds coupon_fee, coupon_count and coupon_*_$n, and lowers cash_fee. */
  coupons?: ReadonlyArray<{ id: string; fee: number; type?: 'CASH' | 'NO_CASH' }>;
  /** WeChat Pay usually sends no sign_type (it signs with the order's); set true to send one. */
  declareSignType?: boolean;
  now?: Date;
}

/** Decimal digits from a cryptographic source, as long as asked: a JS number would lose some. */
export function randomDigits(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += String(randomInt(10));
  return out;
}

/**
 * A payment callback as WeChat Pay sends it, signed with `apiKey` through `signFields`: the
 * emulator's callbacks and the tests' own. Empty fields are left out, as WeChat Pay leaves them out.
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
    throw new RangeError("signedNotification: total_fee must be whole fen, at least the coupons' total");
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
  // sign_type, when declared, is one of the fields: it is signed, whatever the sign type.
  return buildXml(signFields(merged, apiKey, signType, { declareSignType: false }));
}
