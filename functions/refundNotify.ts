import { rawBodyBytes } from '../lib/http/event';
import { notifyRoute } from '../lib/http/routes';
import { handleRefundNotification } from '../lib/orders/refunds';
import { ordersContext } from '../lib/runtime';

/** POST /wechatpay/refund-notify: WeChat Pay's refund callback (req_info encrypted with the API key), XML in and out. */
export const handler = notifyRoute(async (event) => (await handleRefundNotification(rawBodyBytes(event), await ordersContext())).reply);
