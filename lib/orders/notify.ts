import { logger } from '../log';
import { countMetric } from '../metrics';
import type { OrdersContext } from './context';
import { recordPayment } from './settle';
import { OrderStoreError } from './errors';

/**
 * What recording a callback came to, for the protocol's door to answer: `accepted` (recorded, or
 * recorded before) is acknowledged; anything else is refused with `reason`, so that WeChat Pay calls
 * again (a transient failure) or a person looks (a forgery, a mismatch).
 */
export interface NotificationOutcome {
  accepted: boolean;
  /** What happened, for logs and tests. */
  outcome: string;
  reason?: string;
}

/** Refusals that are about the signature: counted apart, for the signature-failure alarm. */
const SIGNATURE_FAILURES = new Set(['BAD_SIGNATURE', 'SIGN_TYPE_MISMATCH']);

/** A payment callback refused: logged and counted (the alarms watch the counts). */
export function refusePaymentNotification(outcome: string, reason: string, outTradeNo?: string): NotificationOutcome {
  logger.warn('payment callback refused', { outcome, reason, outTradeNo });
  // Amount mismatches are counted where they are flagged (settle.ts), whatever path found them.
  if (outcome !== 'AMOUNT_MISMATCH') countMetric(SIGNATURE_FAILURES.has(outcome) ? 'SignatureFailures' : 'CallbacksRefused');
  return { accepted: false, outcome, reason };
}

/** A successful payment a verified callback told of, in lib/orders' terms. */
export interface NotifiedPayment {
  outTradeNo: string;
  transactionId: string;
  totalFee: number;
  /** When WeChat Pay says it was paid (ISO 8601); now when it does not say. */
  paidAt?: string;
  /** How the callback was signed: the order must have been made so. */
  signType: string;
  /** The app it was paid under: the order must have been made under it. */
  appId: string;
}

/**
 * Records the payment of a verified callback: accepted only once it is durably recorded (or already
 * was); refused for anything mismatched and for a transient failure, so that WeChat Pay tries
 * again. The payment write requires the order to have been made with the callback's signing, under
 * its app, for its amount: a first callback costs one conditional write.
 */
export async function recordNotifiedPayment(payment: NotifiedPayment, ctx: OrdersContext): Promise<NotificationOutcome> {
  const { outTradeNo } = payment;
  let result;
  try {
    result = await recordPayment(
      {
        outTradeNo,
        transactionId: payment.transactionId,
        totalFee: payment.totalFee,
        paidAt: payment.paidAt ?? ctx.now().toISOString(),
        source: 'notify',
        signType: payment.signType,
        appId: payment.appId,
        defaultApp: payment.appId === ctx.config.appId,
      },
      ctx,
    );
  } catch (error) {
    if (!(error instanceof OrderStoreError)) throw error;
    logger.error('payment callback could not be recorded; WeChat Pay will retry', { outTradeNo, error });
    countMetric('StorageErrors');
    return { accepted: false, outcome: 'STORE_ERROR', reason: 'temporarily unable to record the payment; please retry' };
  }
  switch (result.outcome) {
    case 'ALREADY_PAID':
      countMetric('DuplicateCallbacks');
      return { accepted: true, outcome: result.outcome };
    case 'PAID':
    case 'FLAGGED':
      return { accepted: true, outcome: result.outcome };
    case 'AMOUNT_MISMATCH':
      return refusePaymentNotification('AMOUNT_MISMATCH', `total_fee ${payment.totalFee} does not match the order's amount`, outTradeNo);
    case 'SIGN_TYPE_MISMATCH':
      return refusePaymentNotification(
        'SIGN_TYPE_MISMATCH',
        `signed with ${payment.signType}, but the order was made with ${result.order.signType}`,
        outTradeNo,
      );
    case 'APP_MISMATCH':
      return refusePaymentNotification(
        'APP_MISMATCH',
        `sent under appid ${payment.appId}, but the order was made under ${result.order.appId ?? ctx.config.appId}`,
        outTradeNo,
      );
    case 'UNKNOWN_ORDER':
      return refusePaymentNotification('UNKNOWN_ORDER', `no order ${outTradeNo}`, outTradeNo);
  }
}
