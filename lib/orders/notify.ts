import { parseNotification, verifyNotification, notificationReply } from '../wechatpay/notification';
import { isSignType, type SignType } from '../wechatpay/sign';
import { logger } from '../log';
import { countMetric } from '../metrics';
import type { OrdersContext } from './context';
import { paidAtFrom, recordPayment } from './settle';
import { OrderStoreError } from './errors';

export interface NotificationResult {
  /** The XML to answer WeChat Pay with. */
  reply: string;
  /** What happened, for logs and tests. */
  outcome: string;
}

/** A callback's signature length tells its sign type when it carries no sign_type. */
const SIGN_TYPE_BY_LENGTH: Record<number, SignType> = { 32: 'MD5', 64: 'HMAC-SHA256' };

const SIGNATURE_FAILURES = new Set(['BAD_SIGNATURE', 'SIGN_TYPE_MISMATCH']);

function refuse(outcome: string, reason: string, outTradeNo?: string): NotificationResult {
  logger.warn('payment callback refused', { outcome, reason, outTradeNo });
  // Amount mismatches are counted where they are flagged (settle.ts), whatever path found them.
  if (outcome !== 'AMOUNT_MISMATCH') countMetric(SIGNATURE_FAILURES.has(outcome) ? 'SignatureFailures' : 'CallbacksRefused');
  return { reply: notificationReply('FAIL', reason), outcome };
}

/**
 * Handles WeChat Pay's payment callback. Answers SUCCESS only once the payment is durably recorded
 * (or already was); FAIL for anything forged, mismatched or malformed, and for a transient failure,
 * so that WeChat Pay tries again.
 *
 * The callback is verified before the order is read: its sign type is its own sign_type, else the
 * one its signature length implies, and its appid any of the merchant's apps; the payment write then
 * requires the order to have been made with that same sign type, under that same app. So a first
 * callback costs one conditional write.
 */
export async function handlePaymentNotification(body: string | Uint8Array, ctx: OrdersContext): Promise<NotificationResult> {
  const parsed = parseNotification(body);
  if (!parsed.ok) return refuse(parsed.reason, parsed.message);
  const { fields, outTradeNo } = parsed;
  const signType: SignType | undefined = isSignType(fields.sign_type)
    ? fields.sign_type
    : SIGN_TYPE_BY_LENGTH[fields.sign?.length ?? 0];
  const verified = verifyNotification(parsed, {
    apiKey: ctx.config.apiKey,
    // Any of the merchant's apps here; the payment write then requires the order's own.
    appId: ctx.config.apps.map((app) => app.appId),
    mchId: ctx.config.mchId,
    orderSignType: signType,
  });
  if (!verified.ok) return refuse(verified.reason, verified.message, outTradeNo);
  const { payment } = verified;
  if (payment.resultCode === 'FAIL') {
    // Only successful payments are meant to be called back; a FAIL reply would only bring retries.
    logger.info('failed-payment callback acknowledged', { outTradeNo, errCode: payment.errCode });
    return { reply: notificationReply('SUCCESS'), outcome: 'PAYMENT_FAILED_ACKNOWLEDGED' };
  }
  let result;
  try {
    result = await recordPayment(
      {
        outTradeNo,
        transactionId: payment.transactionId,
        totalFee: Number(payment.totalFee),
        paidAt: paidAtFrom(payment.timeEnd, ctx.now()),
        source: 'notify',
        signType: signType as SignType,
        appId: fields.appid as string,
        defaultApp: fields.appid === ctx.config.appId,
      },
      ctx,
    );
  } catch (error) {
    if (!(error instanceof OrderStoreError)) throw error;
    logger.error('payment callback could not be recorded; WeChat Pay will retry', { outTradeNo, error });
    countMetric('StorageErrors');
    return { reply: notificationReply('FAIL', 'temporarily unable to record the payment; please retry'), outcome: 'STORE_ERROR' };
  }
  switch (result.outcome) {
    case 'ALREADY_PAID':
      countMetric('DuplicateCallbacks');
      return { reply: notificationReply('SUCCESS'), outcome: result.outcome };
    case 'PAID':
    case 'FLAGGED':
      return { reply: notificationReply('SUCCESS'), outcome: result.outcome };
    case 'AMOUNT_MISMATCH':
      return refuse('AMOUNT_MISMATCH', `total_fee ${payment.totalFee} does not match the order's amount`, outTradeNo);
    case 'SIGN_TYPE_MISMATCH':
      return refuse('SIGN_TYPE_MISMATCH', `signed with ${signType}, but the order was made with ${result.order.signType}`, outTradeNo);
    case 'APP_MISMATCH':
      return refuse('APP_MISMATCH', `sent under appid ${fields.appid}, but the order was made under ${result.order.appId ?? ctx.config.appId}`, outTradeNo);
    case 'UNKNOWN_ORDER':
      return refuse('UNKNOWN_ORDER', `no order ${outTradeNo}`, outTradeNo);
  }
}
