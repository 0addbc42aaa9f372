import { handleRefundNotification, v2NotifyDoor } from '../lib/gateways/wechatpay-v2/notify';
import { ordersContext } from '../lib/runtime';

/** POST /wechatpay/refund-notify: WeChat Pay's refund callback (API v2, req_info encrypted with the API key), XML in and out. */
export const handler = v2NotifyDoor(handleRefundNotification, ordersContext);
