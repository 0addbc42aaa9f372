import { handlePaymentNotification, v2NotifyDoor } from '../lib/gateways/wechatpay-v2/notify';
import { ordersContext } from '../lib/runtime';

/** POST /wechatpay/notify: WeChat Pay's payment callback (API v2), XML in and out. */
export const handler = v2NotifyDoor(handlePaymentNotification, ordersContext);
