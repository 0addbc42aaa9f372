import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { rawBodyBytes, type ApiEvent } from '../lib/http/api';
import { logger } from '../lib/log';
import { handlePaymentNotification } from '../lib/orders/notify';
import { flushMetrics } from '../lib/metrics';
import { ordersContext } from '../lib/runtime';
import { notificationReply } from '../lib/wechatpay/notification';

function xml(body: string): APIGatewayProxyStructuredResultV2 {
  return { statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body };
}

/** POST /wechatpay/notify: WeChat Pay's payment callback, XML in and out. */
export async function handler(event: ApiEvent) {
  try {
    const result = await handlePaymentNotification(rawBodyBytes(event), await ordersContext());
    return xml(result.reply);
  } catch (error) {
    // Whatever failed, the payment is not recorded yet: FAIL makes WeChat Pay call again.
    logger.error('payment callback failed', { error });
    return xml(notificationReply('FAIL', 'temporarily unable to process the callback; please retry'));
  } finally {
    flushMetrics();
  }
}
