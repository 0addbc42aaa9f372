/**
 * The doors of API v2's callbacks (`POST /wechatpay/notify`, `POST /wechatpay/refund-notify`): the
 * XML read and verified (lib/wechatpay), what it says handed to lib/orders in its own terms, and
 * lib/orders' outcome answered in v2's XML reply. Whatever fails unexpectedly is answered FAIL
 * (never a 5xx), so that WeChat Pay calls again.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../../handler';
import { rawBodyBytes, type ApiEvent } from '../../http/event';
import { logger } from '../../log';
import type { OrdersContext } from '../../orders/context';
import { recordNotifiedPayment, refusePaymentNotification, type NotificationOutcome } from '../../orders/notify';
import { recordNotifiedRefund, refuseRefundNotification } from '../../orders/refunds';
import { parseNotification, verifyNotification, notificationReply } from '../../wechatpay/notification';
import { readRefundNotification } from '../../wechatpay/refund-notification';
import { isSignType, type SignType } from '../../wechatpay/sign';
import { fromBeijingTimestamp } from '../../wechatpay/time';

/** A callback's answer: v2's XML reply, and what happened (for logs and tests). */
export interface NotificationReply {
  reply: string;
  outcome: string;
}

function replyTo(outcome: NotificationOutcome): NotificationReply {
  return {
    reply: outcome.accepted ? notificationReply('SUCCESS') : notificationReply('FAIL', outcome.reason ?? outcome.outcome),
    outcome: outcome.outcome,
  };
}

/** A callback's signature length tells its sign type when it carries no sign_type. */
const SIGN_TYPE_BY_LENGTH: Record<number, SignType> = { 32: 'MD5', 64: 'HMAC-SHA256' };

/**
 * WeChat Pay's payment callback. It is verified before the order is read: its sign type is its own
 * sign_type, else the one its signature length implies, and its appid any of the merchant's apps;
 * lib/orders then requires the order to have been made with that same sign type, under that app.
 */
export async function handlePaymentNotification(body: string | Uint8Array, ctx: OrdersContext): Promise<NotificationReply> {
  const parsed = parseNotification(body);
  if (!parsed.ok) return replyTo(refusePaymentNotification(parsed.reason, parsed.message));
  const { fields, outTradeNo } = parsed;
  const signType: SignType | undefined = isSignType(fields.sign_type) ? fields.sign_type : SIGN_TYPE_BY_LENGTH[fields.sign?.length ?? 0];
  const verified = verifyNotification(parsed, {
    apiKey: ctx.config.apiKey,
    // Any of the merchant's apps here; the payment write then requires the order's own.
    appId: ctx.config.apps.map((app) => app.appId),
    mchId: ctx.config.mchId,
    orderSignType: signType,
  });
  if (!verified.ok) return replyTo(refusePaymentNotification(verified.reason, verified.message, outTradeNo));
  const { payment } = verified;
  if (payment.resultCode === 'FAIL') {
    // Only successful payments are meant to be called back; a FAIL reply would only bring retries.
    logger.info('failed-payment callback acknowledged', { outTradeNo, errCode: payment.errCode });
    return { reply: notificationReply('SUCCESS'), outcome: 'PAYMENT_FAILED_ACKNOWLEDGED' };
  }
  const paidAt = fromBeijingTimestamp(payment.timeEnd ?? '')?.toISOString();
  return replyTo(
    await recordNotifiedPayment(
      {
        outTradeNo,
        transactionId: payment.transactionId,
        // Checked to be whole fen by verifyNotification.
        totalFee: Number(payment.totalFee),
        ...(paidAt ? { paidAt } : {}),
        signType: signType as SignType,
        appId: fields.appid as string,
      },
      ctx,
    ),
  );
}

/** `yyyy-MM-dd HH:mm:ss` Beijing (the refund's success time) as ISO 8601. */
function isoOfDashed(successTime: string | undefined): string | undefined {
  return successTime ? fromBeijingTimestamp(successTime.replace(/[- :]/g, ''))?.toISOString() : undefined;
}

/**
 * WeChat Pay's refund callback: `req_info` decrypted and checked (the API key is its only
 * authenticity), then recorded by lib/orders. A `return_code=FAIL` callback carries nothing to
 * record and is acknowledged (a FAIL reply would only bring the same document back).
 */
export async function handleRefundNotification(body: string | Uint8Array, ctx: OrdersContext): Promise<NotificationReply> {
  // Any of the merchant's apps here; the refund's order must then be of that app.
  const read = readRefundNotification(body, {
    apiKey: ctx.config.apiKey,
    appIds: ctx.config.apps.map((app) => app.appId),
    mchId: ctx.config.mchId,
  });
  if (!read.ok) {
    if (read.reason === 'RETURN_CODE_NOT_SUCCESS') {
      logger.info('refund callback with return_code FAIL acknowledged', { message: read.message });
      return { reply: notificationReply('SUCCESS'), outcome: 'RETURN_CODE_FAIL_ACKNOWLEDGED' };
    }
    return replyTo(refuseRefundNotification(read.reason, read.message));
  }
  const notice = read.refund;
  const succeededAt = notice.refundStatus === 'SUCCESS' ? isoOfDashed(notice.successTime) : undefined;
  return replyTo(
    await recordNotifiedRefund(
      {
        appId: notice.appId,
        outTradeNo: notice.outTradeNo,
        transactionId: notice.transactionId,
        totalFee: notice.totalFee,
        outRefundNo: notice.outRefundNo,
        refundId: notice.refundId,
        refundFee: notice.refundFee,
        status: notice.refundStatus,
        ...(succeededAt ? { succeededAt } : {}),
        ...(notice.refundRecvAccount ? { receivedBy: notice.refundRecvAccount } : {}),
        requestedVia: notice.refundRequestSource,
      },
      ctx,
    ),
  );
}

type Answer = APIGatewayProxyStructuredResultV2;

function xml(body: string): Answer {
  return { statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body };
}

function callbackFailed(error: unknown): Answer {
  // Whatever failed, nothing is recorded yet: FAIL makes WeChat Pay call again.
  logger.error('payment callback failed', { error });
  return xml(notificationReply('FAIL', 'temporarily unable to process the callback; please retry'));
}

/**
 * A v2 callback door: the raw body handed to `handle` with the orders context; its XML reply
 * answered; any failure it lets through answered FAIL in XML (never a 5xx).
 */
export function v2NotifyDoor(
  handle: (body: Uint8Array, ctx: OrdersContext) => Promise<NotificationReply>,
  context: () => Promise<OrdersContext>,
) {
  return lambdaHandler(async (event: ApiEvent) => xml((await handle(rawBodyBytes(event), await context())).reply), callbackFailed);
}
