import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { fromBeijingTimestamp } from '../../../lib/wechatpay/time';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, close, control, MERCHANT, orderFields, paidJsapiFields, query, startTestEmulator } from '../../support/emulator';
import { sleep } from '../../support/eventually';

// At this scale the 5-minute minimum age before closeorder is 300 ms.
const TIME_SCALE = 0.001;
let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startTestEmulator({ timeScale: TIME_SCALE });
});
afterAll(() => emulator.close());

async function newOrder(overrides: Record<string, string | undefined> = {}, signType: 'MD5' | 'HMAC-SHA256' = 'MD5') {
  const fields = orderFields(overrides);
  const reply = await call(emulator, 'unifiedorder', fields, signType);
  expect(reply.fields.result_code).toBe('SUCCESS');
  return fields.out_trade_no ?? '';
}

describe('orderquery', () => {
  it('ORDERNOTEXIST for an unknown order, and LACK_PARAMS without any order id', async () => {
    expect((await query(emulator, 'never-ordered-1')).fields).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
    const noId = await call(emulator, 'orderquery', { appid: MERCHANT.appId, mch_id: MERCHANT.mchId, nonce_str: 'n1' });
    expect(noId.fields.err_code).toBe('LACK_PARAMS');
  });

  it('NOTPAY for an unpaid order, signed in the request sign type', async () => {
    const outTradeNo = await newOrder({ attach: 'a=1' });
    const reply = await query(emulator, outTradeNo, 'HMAC-SHA256');
    expect(reply.fields).toMatchObject({
      return_code: 'SUCCESS',
      result_code: 'SUCCESS',
      trade_state: 'NOTPAY',
      out_trade_no: outTradeNo,
      attach: 'a=1',
      total_fee: '101',
    });
    expect(reply.fields.trade_state_desc).toBeTruthy();
    expect(reply.fields.transaction_id).toBeUndefined();
    expect(verifySignature(reply.fields, MERCHANT.apiKey, 'HMAC-SHA256').ok).toBe(true);
  });

  it('SUCCESS after payment with every field WeChat Pay returns; by transaction_id too', async () => {
    const openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
    const outTradeNo = await newOrder({ trade_type: 'JSAPI', openid, product_id: undefined, attach: '附加' }, 'HMAC-SHA256');
    const paid = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: outTradeNo });
    expect(paid.status).toBe(200);

    const reply = await query(emulator, outTradeNo);
    expect(verifySignature(reply.fields, MERCHANT.apiKey, 'MD5').ok).toBe(true);
    expect(reply.fields).toMatchObject({
      return_code: 'SUCCESS',
      result_code: 'SUCCESS',
      trade_state: 'SUCCESS',
      ...paidJsapiFields(outTradeNo, openid, '附加'),
      transaction_id: paid.json.transaction_id,
    });
    expect(reply.fields.bank_type).toBeTruthy();
    expect(reply.fields.trade_state_desc).toBeTruthy();
    expect(reply.fields.transaction_id).toMatch(/^42000\d{23}$/);
    const timeEnd = fromBeijingTimestamp(reply.fields.time_end ?? '');
    expect(timeEnd).toBeDefined();
    expect(Math.abs(Date.now() - (timeEnd?.getTime() ?? 0))).toBeLessThan(60_000);

    const byTransaction = await call(emulator, 'orderquery', {
      appid: MERCHANT.appId,
      mch_id: MERCHANT.mchId,
      nonce_str: 'n2',
      transaction_id: reply.fields.transaction_id,
    });
    expect(byTransaction.fields).toMatchObject({ trade_state: 'SUCCESS', out_trade_no: outTradeNo });
  });
});

describe('closeorder', () => {
  it('ORDERNOTEXIST for an unknown order, LACK_PARAMS without out_trade_no', async () => {
    expect((await close(emulator, 'never-ordered-2')).fields.err_code).toBe('ORDERNOTEXIST');
    const noId = await call(emulator, 'closeorder', { appid: MERCHANT.appId, mch_id: MERCHANT.mchId, nonce_str: 'n3' });
    expect(noId.fields.err_code).toBe('LACK_PARAMS');
  });

  it('refuses with SYSTEMERROR (call again later) until the order is 5 scaled minutes old, then closes it', async () => {
    const outTradeNo = await newOrder();
    const early = await close(emulator, outTradeNo);
    expect(early.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'SYSTEMERROR' });
    expect((await query(emulator, outTradeNo)).fields.trade_state).toBe('NOTPAY');

    await sleep(5 * 60_000 * TIME_SCALE + 50);
    const closed = await close(emulator, outTradeNo, 'HMAC-SHA256');
    expect(closed.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS' });
    expect(verifySignature(closed.fields, MERCHANT.apiKey, 'HMAC-SHA256').ok).toBe(true);
    expect((await query(emulator, outTradeNo)).fields.trade_state).toBe('CLOSED');

    expect((await close(emulator, outTradeNo)).fields.err_code).toBe('ORDERCLOSED');
    const fields = orderFields({ out_trade_no: outTradeNo });
    expect((await call(emulator, 'unifiedorder', fields)).fields.err_code).toBe('ORDERCLOSED');
    expect((await control(emulator, 'POST', '/__sim/pay', { out_trade_no: outTradeNo })).status).toBe(409);
  });

  it('ORDERPAID for a paid order, and a repeated unified order of it is ORDERPAID too', async () => {
    const fields = orderFields();
    await call(emulator, 'unifiedorder', fields);
    await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no });
    await sleep(5 * 60_000 * TIME_SCALE + 50);
    expect((await close(emulator, fields.out_trade_no ?? '')).fields.err_code).toBe('ORDERPAID');
    expect((await call(emulator, 'unifiedorder', fields)).fields.err_code).toBe('ORDERPAID');
  });
});
