import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../../../lib/config';
import { createOrdersContext } from '../../../lib/orders/context';
import { WechatPayConfigError, WechatPayError } from '../../../lib/wechatpay/errors';
import { TEST_MERCHANT } from '../../../emulator/test-merchant';
import { listen } from '../../../emulator/http-server';

const config: AppConfig = {
  appId: TEST_MERCHANT.appId,
  mchId: TEST_MERCHANT.mchId,
  apiKey: TEST_MERCHANT.apiKey,
  signType: 'HMAC-SHA256',
  baseUrl: 'http://127.0.0.1:9',
  notifyUrl: 'http://127.0.0.1:3000/wechatpay/notify',
  ordersTable: 'orders',
  dynamoEndpoint: 'http://127.0.0.1:9',
  orderExpireMinutes: 30,
};

describe('the orders context', () => {
  it('refuses a merchant the WeChat Pay client would refuse, when it is built, not at the first call', () => {
    expect(() => createOrdersContext({ ...config, appId: 'wx has spaces' })).toThrow(WechatPayConfigError);
    expect(() => createOrdersContext({ ...config, apiKey: 'short' })).toThrow(WechatPayConfigError);
  });

  it('loads the WeChat Pay client on its first call and hands every call to it', async () => {
    const seen: string[] = [];
    const server = await listen(
      createServer((req, res) => {
        seen.push(String(req.url));
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end('<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>');
      }),
    );
    try {
      const { wechatPay } = createOrdersContext({ ...config, baseUrl: server.origin });
      const query = wechatPay.orderQuery({ outTradeNo: '20261130abcdef' }, { signType: 'HMAC-SHA256' });
      await expect(query).rejects.toBeInstanceOf(WechatPayError);
      await expect(wechatPay.closeOrder({ outTradeNo: '20261130abcdef' }, { signType: 'HMAC-SHA256' })).rejects.toBeInstanceOf(WechatPayError);
      expect(seen.filter((url) => url === '/pay/orderquery').length).toBeGreaterThanOrEqual(1);
      expect(seen.filter((url) => url === '/pay/closeorder').length).toBeGreaterThanOrEqual(1);
    } finally {
      await server.close();
    }
  });
});
