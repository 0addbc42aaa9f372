import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import type { SignType } from '../../lib/wechatpay/sign';
import { signedNotification } from '../../dev/wechatpay-documents/payment-notification';

/** A payment callback as WeChat Pay sends it, signed with the test merchant's key. */
export function paidCallback(
  outTradeNo: string,
  totalFee: number,
  fields: Record<string, string | undefined> = {},
  signType: SignType = 'HMAC-SHA256',
  apiKey: string = TEST_MERCHANT.apiKey,
): string {
  return signedNotification({
    apiKey,
    signType,
    fields: { appid: TEST_MERCHANT.appId, mch_id: TEST_MERCHANT.mchId, out_trade_no: outTradeNo, total_fee: String(totalFee), ...fields },
  });
}

/** The order of `sampleCallback`. */
export const SAMPLE_OUT_TRADE_NO = '20240101AbCdEfGhIjKlMnOpQrSt';

/**
 * A callback of the test merchant for a 1-yuan payment of `SAMPLE_OUT_TRADE_NO`, paid at a fixed
 * time (time_end 20240101081502), for tests of the protocol itself; `extra` changes its fields.
 */
export function sampleCallback(signType: SignType, extra: Record<string, string | undefined> = {}, declareSignType = false): string {
  return signedNotification({
    apiKey: TEST_MERCHANT.apiKey,
    signType,
    declareSignType,
    fields: { appid: TEST_MERCHANT.appId, mch_id: TEST_MERCHANT.mchId, out_trade_no: SAMPLE_OUT_TRADE_NO, total_fee: '100', ...extra },
    now: new Date('2024-01-01T00:15:02Z'),
  });
}
