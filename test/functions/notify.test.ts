import { describe, expect, it } from 'vitest';
import { handler as notify } from '../../functions/notify';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { signedNotification } from '../../dev/wechatpay-documents/payment-notification';
import { parseXml } from '../../lib/wechatpay/xml';
import { apiEvent, callback, create, get } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { useTestStack } from '../support/use-stack';

useTestStack(() => undefined, { reset: true });

describe('payment callbacks', () => {
  async function pendingOrder(totalFee = 300) {
    const created = await create({ tradeType: 'NATIVE', totalFee, description: 'callback test' });
    expect(created.status).toBe(201);
    return created.body.outTradeNo as string;
  }

  it('50 concurrent copies of one callback give one transition and 50 SUCCESS replies', async () => {
    const outTradeNo = await pendingOrder();
    const xml = paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611230000000001' });
    const { handlePaymentNotification } = await import('../../lib/gateways/wechatpay-v2/notify');
    const { ordersContext } = await import('../../lib/runtime');
    const ctx = await ordersContext();
    const results = await Promise.all(Array.from({ length: 50 }, () => handlePaymentNotification(xml, ctx)));
    expect(results.filter((r) => r.outcome === 'PAID')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'ALREADY_PAID')).toHaveLength(49);
    for (const r of results) expect(parseXml(r.reply).return_code).toBe('SUCCESS');
    const replies = await Promise.all(Array.from({ length: 50 }, () => callback(xml)));
    expect(replies.every((r) => r.returnCode === 'SUCCESS')).toBe(true);
    const order = (await get(outTradeNo)).body;
    expect(order).toMatchObject({ status: 'PAID', transactionId: '4200000000202611230000000001' });
  });

  it('a replay with another transaction_id changes nothing and is flagged for review', async () => {
    const outTradeNo = await pendingOrder();
    expect((await callback(paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611230000000002' }))).returnCode).toBe('SUCCESS');
    const before = (await get(outTradeNo)).body;
    expect((await callback(paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611239999999999' }))).returnCode).toBe('SUCCESS');
    expect((await get(outTradeNo)).body).toEqual(before);
    const { ordersContext } = await import('../../lib/runtime');
    const stored = await (await ordersContext()).store.get(outTradeNo);
    expect(stored?.review['4200000000202611239999999999']?.reason).toBe('SECOND_PAYMENT');
  });

  it.each([
    ['amount', { total_fee: '1' }, 'AMOUNT'],
    ['appid', { appid: 'wx0000000000000000' }, 'appid'],
    ['mch_id', { mch_id: '1900000109' }, 'mch_id'],
  ])('a %s mismatch is refused with a reason and the order stays PENDING', async (_name, fields, reason) => {
    const outTradeNo = await pendingOrder();
    const reply = await callback(paidCallback(outTradeNo, 300, fields));
    expect(reply.returnCode).toBe('FAIL');
    expect(reply.returnMsg?.toLowerCase()).toContain(reason.toLowerCase() === 'amount' ? 'total_fee' : reason);
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('a forged signature (another key) is refused and changes nothing', async () => {
    const outTradeNo = await pendingOrder();
    const forged = signedNotification({
      apiKey: 'ffffffffffffffffffffffffffffffff',
      signType: 'HMAC-SHA256',
      fields: { appid: TEST_MERCHANT.appId, mch_id: TEST_MERCHANT.mchId, out_trade_no: outTradeNo, total_fee: '300' },
    });
    const reply = await callback(forged);
    expect(reply.returnCode).toBe('FAIL');
    expect(reply.returnMsg).toContain('signature');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('a callback signed with MD5 for an HMAC-SHA256 order is refused', async () => {
    const outTradeNo = await pendingOrder();
    const reply = await callback(paidCallback(outTradeNo, 300, {}, 'MD5'));
    expect(reply.returnCode).toBe('FAIL');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('an unknown order is refused', async () => {
    const reply = await callback(paidCallback('20990101unknownorder0001', 300));
    expect(reply).toMatchObject({ returnCode: 'FAIL' });
    expect(reply.returnMsg).toContain('no order');
  });

  it('a base64-encoded body (as API Gateway sends binary) is read', async () => {
    const outTradeNo = await pendingOrder();
    const result = await notify(
      apiEvent({ method: 'POST', path: '/wechatpay/notify', body: paidCallback(outTradeNo, 300), base64: true, contentType: 'text/xml' }),
    );
    expect(parseXml(result.body as string).return_code).toBe('SUCCESS');
    expect((await get(outTradeNo)).body.status).toBe('PAID');
  });

  it('a genuine result_code=FAIL callback is acknowledged and the order stays unpaid', async () => {
    const outTradeNo = await pendingOrder();
    const reply = await callback(paidCallback(outTradeNo, 300, { result_code: 'FAIL', err_code: 'NOTENOUGH', transaction_id: undefined }));
    expect(reply.returnCode).toBe('SUCCESS');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('malformed XML gets FAIL with the reason', async () => {
    const reply = await callback('<xml><return_code>SUCCESS</return_code>');
    expect(reply.returnCode).toBe('FAIL');
    expect(reply.returnMsg).toMatch(/malformed|XML/i);
  });
});
