import { rawBodyBytes } from '../lib/http/event';
import { notifyRoute } from '../lib/http/routes';
import { handlePaymentNotification } from '../lib/orders/notify';
import { ordersContext } from '../lib/runtime';

/** POST /wechatpay/notify: WeChat Pay's payment callback, XML in and out. */
export const handler = notifyRoute(async (event) => (await handlePaymentNotification(rawBodyBytes(event), await ordersContext())).reply);
