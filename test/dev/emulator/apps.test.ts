import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { TEST_MINIPROGRAM } from '../../../dev/emulator/test-apps';
import { nonceStr } from '../../../lib/wechatpay/ids';
import { call, control, MERCHANT, orderFields, startReceiver, startTestEmulator, type Receiver } from '../../support/emulator';
import { waitFor } from '../../support/eventually';

/**
 * WeChat Pay's side of the emulator takes calls under every app bound to the merchant (its own app
 * and the apps the platform API knows, by default a local mini-program), and an order belongs to the
 * app it was placed under.
 */

const MINI = TEST_MINIPROGRAM.appId;
let emulator: RunningEmulator;
let receiver: Receiver;
beforeAll(async () => {
  emulator = await startTestEmulator();
  receiver = await startReceiver();
});
afterAll(async () => {
  await emulator.close();
  await receiver.close();
});

const byNo = (appId: string, outTradeNo: string) => ({
  appid: appId,
  mch_id: MERCHANT.mchId,
  nonce_str: nonceStr(),
  out_trade_no: outTradeNo,
});

describe("the merchant's other apps", () => {
  it('a JSAPI order under the mini-program is placed, queried and called back under the mini-program', async () => {
    const fields = orderFields({
      appid: MINI,
      trade_type: 'JSAPI',
      openid: 'oMiniProgramPayer',
      product_id: undefined,
      notify_url: receiver.url,
    });
    const placed = await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256');
    expect(placed.fields).toMatchObject({ result_code: 'SUCCESS', appid: MINI });
    const outTradeNo = fields.out_trade_no as string;
    expect((await call(emulator, 'orderquery', byNo(MINI, outTradeNo), 'HMAC-SHA256')).fields).toMatchObject({
      result_code: 'SUCCESS',
      trade_state: 'NOTPAY',
      appid: MINI,
    });
    expect((await control(emulator, 'POST', '/__sim/pay', { out_trade_no: outTradeNo })).status).toBe(200);
    await waitFor(() => receiver.received.some((callback) => callback.fields.out_trade_no === outTradeNo));
    expect(receiver.received.find((callback) => callback.fields.out_trade_no === outTradeNo)?.fields.appid).toBe(MINI);
  });

  it("asked under another of the merchant's apps, an order does not exist: orderquery and closeorder answer ORDERNOTEXIST", async () => {
    const fields = orderFields({ appid: MINI });
    expect((await call(emulator, 'unifiedorder', fields)).fields.result_code).toBe('SUCCESS');
    const outTradeNo = fields.out_trade_no as string;
    for (const endpoint of ['orderquery', 'closeorder'] as const) {
      expect((await call(emulator, endpoint, byNo(MERCHANT.appId, outTradeNo))).fields).toMatchObject({
        result_code: 'FAIL',
        err_code: 'ORDERNOTEXIST',
      });
    }
    // And the same order number again under the other app is a different request.
    expect((await call(emulator, 'unifiedorder', { ...fields, appid: MERCHANT.appId })).fields).toMatchObject({
      result_code: 'FAIL',
      err_code: 'INVALID_REQUEST',
    });
  });

  it('an app the merchant has not bound is still refused', async () => {
    expect((await call(emulator, 'unifiedorder', orderFields({ appid: 'wx0123456789abcdef' }))).fields.err_code).toBe(
      'APPID_MCHID_NOT_MATCH',
    );
  });
});
