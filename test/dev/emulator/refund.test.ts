import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nonceStr } from '../../../lib/wechatpay/ids';
import { readRefundNotification } from '../../../lib/wechatpay/refund-notification';
import { verifySignature, type SignableFields } from '../../../lib/wechatpay/sign';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { buildXml } from '../../../lib/wechatpay/xml';
import { signFields } from '../../../lib/wechatpay/sign';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { makeLocalCertificates } from '../../../dev/emulator/certs';
import {
  call,
  control,
  localCertificates,
  MERCHANT,
  orderFields,
  postRaw,
  postTls,
  refundCall,
  startReceiver,
  startTestEmulator,
  type Receiver,
  type TlsIdentity,
} from '../../support/emulator';
import { eventually, sleep } from '../../support/eventually';

// At this scale refunds of one order are 60 ms apart and end 10 ms after they are accepted.
const TIME_SCALE = 0.001;
const SPACING_MS = 70;
let emulator: RunningEmulator;
let merchantTls: TlsIdentity;
let receiver: Receiver;

beforeAll(async () => {
  const certs = localCertificates(MERCHANT.mchId);
  emulator = await startTestEmulator({ timeScale: TIME_SCALE, tls: certs });
  merchantTls = { ca: certs.caPem, clientPem: certs.clientPem };
  receiver = await startReceiver();
});
afterAll(async () => {
  await emulator?.close();
  await receiver?.close();
});

async function paidOrder(totalFee = 100, timeEnd?: string): Promise<string> {
  const fields = orderFields({ total_fee: String(totalFee) });
  expect((await call(emulator, 'unifiedorder', fields)).fields.result_code).toBe('SUCCESS');
  const paid = await control(emulator, 'POST', '/__sim/pay', {
    out_trade_no: fields.out_trade_no,
    ...(timeEnd ? { time_end: timeEnd } : {}),
  });
  expect(paid.status).toBe(200);
  return fields.out_trade_no as string;
}

let refundSeq = 0;
function refundFields(outTradeNo: string, refundFee: number, totalFee = 100, extra: SignableFields = {}): SignableFields {
  return {
    appid: MERCHANT.appId,
    mch_id: MERCHANT.mchId,
    nonce_str: nonceStr(),
    out_trade_no: outTradeNo,
    out_refund_no: `R${Date.now()}${refundSeq++}`,
    total_fee: String(totalFee),
    refund_fee: String(refundFee),
    ...extra,
  };
}

const refund = (fields: SignableFields, signType: 'MD5' | 'HMAC-SHA256' = 'MD5') => refundCall(emulator, fields, merchantTls, signType);
const refundQuery = (fields: SignableFields) =>
  call(emulator, 'refundquery', { appid: MERCHANT.appId, mch_id: MERCHANT.mchId, nonce_str: nonceStr(), ...fields });

describe('/secapi/pay/refund needs the merchant client certificate', () => {
  it('the plain HTTP port answers an error and refunds nothing', async () => {
    const outTradeNo = await paidOrder();
    const fields = refundFields(outTradeNo, 10);
    const reply = await postRaw(emulator, '/secapi/pay/refund', buildXml(signFields(fields, MERCHANT.apiKey, 'MD5')));
    expect(reply.fields.return_code).toBe('FAIL');
    expect(reply.fields.return_msg).toMatch(/证书/);
    const view = await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`);
    expect(view.json.refunds).toEqual([]);
    expect(view.json.calls).toContainEqual(expect.objectContaining({ endpoint: 'refund', return_code: 'FAIL', err_code: 'CERT_REQUIRED' }));
  });

  it('a TLS caller without a client certificate is refused at the handshake', async () => {
    const outTradeNo = await paidOrder();
    const body = buildXml(signFields(refundFields(outTradeNo, 10), MERCHANT.apiKey, 'MD5'));
    await expect(postTls(`${emulator.secapiUrl}/secapi/pay/refund`, body, { ca: merchantTls.ca })).rejects.toThrow();
    expect((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds).toEqual([]);
  });

  it('a client certificate from another CA is refused at the handshake', async () => {
    const stranger = makeLocalCertificates({ mchId: MERCHANT.mchId, days: 1 });
    const outTradeNo = await paidOrder();
    const body = buildXml(signFields(refundFields(outTradeNo, 10), MERCHANT.apiKey, 'MD5'));
    await expect(
      postTls(`${emulator.secapiUrl}/secapi/pay/refund`, body, { ca: merchantTls.ca, clientPem: stranger.clientPem }),
    ).rejects.toThrow();
    expect((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds).toEqual([]);
  });

  it('a certificate issued to another merchant id is refused', async () => {
    const outTradeNo = await paidOrder();
    // An emulator of this merchant trusting a CA that signed a certificate for another merchant id.
    const other = makeLocalCertificates({ mchId: '1900000999', days: 1 });
    const secondEmulator = await startTestEmulator({ timeScale: TIME_SCALE, tls: other });
    try {
      const fields = orderFields({ total_fee: '100' });
      await call(secondEmulator, 'unifiedorder', fields);
      await control(secondEmulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no });
      const reply = await refundCall(secondEmulator, refundFields(fields.out_trade_no as string, 10), {
        ca: other.caPem,
        clientPem: other.clientPem,
      });
      expect(reply.fields.return_code).toBe('FAIL');
      expect((await control(secondEmulator, 'GET', `/__sim/orders/${fields.out_trade_no}`)).json.refunds).toEqual([]);
    } finally {
      await secondEmulator.close();
    }
    expect((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds).toEqual([]);
  });

  it('the TLS port serves /secapi/ only', async () => {
    const reply = await postTls(`${emulator.secapiUrl}/pay/orderquery`, '<xml></xml>', merchantTls);
    expect(reply.status).toBe(404);
  });
});

describe('/secapi/pay/refund', () => {
  it('accepts a refund of a paid order: signed, PROCESSING, then SUCCESS', async () => {
    const outTradeNo = await paidOrder();
    const fields = refundFields(outTradeNo, 30, 100, { refund_desc: '退货' });
    const reply = await refund(fields, 'HMAC-SHA256');
    expect(verifySignature(reply.fields, MERCHANT.apiKey, 'HMAC-SHA256').ok).toBe(true);
    expect(reply.fields).toMatchObject({
      return_code: 'SUCCESS',
      result_code: 'SUCCESS',
      out_trade_no: outTradeNo,
      out_refund_no: fields.out_refund_no,
      refund_fee: '30',
      total_fee: '100',
    });
    expect(reply.fields.refund_id).toMatch(/^503\d{26}$/);
    expect(reply.fields.transaction_id).toMatch(/^4200\d{24}$/);
    const view = await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`);
    expect(view.json.refunds).toEqual([
      expect.objectContaining({ out_refund_no: fields.out_refund_no, refund_fee: 30, refund_desc: '退货' }),
    ]);
    await eventually(async () => {
      const refunds = (await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as Array<{ refund_status: string }>;
      return refunds[0]?.refund_status === 'SUCCESS' ? true : undefined;
    });
  });

  it('the same out_refund_no refunds only once: a repeat answers the same refund', async () => {
    const outTradeNo = await paidOrder();
    const fields = refundFields(outTradeNo, 40);
    const first = await refund(fields);
    const again = await refund({ ...fields, nonce_str: nonceStr() });
    expect(again.fields.result_code).toBe('SUCCESS');
    expect(again.fields.refund_id).toBe(first.fields.refund_id);
    const changed = await refund({ ...fields, nonce_str: nonceStr(), refund_fee: '41' });
    expect(changed.fields).toMatchObject({ result_code: 'FAIL', err_code: 'INVALID_REQUEST' });
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(1);
  });

  it('never refunds more than the order: NOTENOUGH; a REFUNDCLOSE refund frees its amount', async () => {
    const outTradeNo = await paidOrder(100);
    await control(emulator, 'POST', '/__sim/faults', { refundOutcome: 'REFUNDCLOSE' });
    expect((await refund(refundFields(outTradeNo, 60))).fields.result_code).toBe('SUCCESS');
    await control(emulator, 'POST', '/__sim/faults', { refundOutcome: 'SUCCESS' });
    await sleep(SPACING_MS);
    expect((await refund(refundFields(outTradeNo, 41))).fields.result_code).toBe('SUCCESS');
    await sleep(SPACING_MS);
    // 60 (closed, once it ends) + 41: 59 left only after the close.
    await eventually(async () => {
      const refunds = (await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as Array<{ refund_status: string }>;
      return refunds[0]?.refund_status === 'REFUNDCLOSE' ? true : undefined;
    });
    expect((await refund(refundFields(outTradeNo, 60))).fields).toMatchObject({ result_code: 'FAIL', err_code: 'NOTENOUGH' });
    await sleep(SPACING_MS);
    expect((await refund(refundFields(outTradeNo, 59))).fields.result_code).toBe('SUCCESS');
  });

  it('refunds of one order at least a minute apart (scaled): FREQUENCY_LIMITED, nothing refunded', async () => {
    const outTradeNo = await paidOrder();
    expect((await refund(refundFields(outTradeNo, 10))).fields.result_code).toBe('SUCCESS');
    const tooSoon = await refund(refundFields(outTradeNo, 10));
    expect(tooSoon.fields).toMatchObject({ result_code: 'FAIL', err_code: 'FREQUENCY_LIMITED' });
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(1);
    await sleep(SPACING_MS);
    expect((await refund(refundFields(outTradeNo, 10))).fields.result_code).toBe('SUCCESS');
  });

  it('at most 50 refunds per order: INVALID_REQ_TOO_MUCH', async () => {
    const outTradeNo = await paidOrder(1000);
    // Made in the merchant platform (no spacing there), 50 of them.
    for (let i = 0; i < 50; i += 1) {
      expect((await control(emulator, 'POST', '/__sim/refund', { out_trade_no: outTradeNo, refund_fee: 1 })).status).toBe(200);
    }
    await sleep(SPACING_MS);
    expect((await refund(refundFields(outTradeNo, 1, 1000))).fields).toMatchObject({
      result_code: 'FAIL',
      err_code: 'INVALID_REQ_TOO_MUCH',
    });
  });

  it("only paid orders; the total_fee must be the order's; unknown orders; past a year: TRADE_OVERDUE", async () => {
    const unpaid = orderFields({ total_fee: '100' });
    await call(emulator, 'unifiedorder', unpaid);
    expect((await refund(refundFields(unpaid.out_trade_no as string, 10))).fields).toMatchObject({
      result_code: 'FAIL',
      err_code: 'ERROR',
    });
    const outTradeNo = await paidOrder();
    expect((await refund(refundFields(outTradeNo, 10, 99))).fields).toMatchObject({ result_code: 'FAIL', err_code: 'PARAM_ERROR' });
    expect((await refund(refundFields('T-never-ordered', 10))).fields).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
    const yearAgo = toBeijingTimestamp(new Date(Date.now() - 366 * 24 * 3600 * 1000));
    const old = await paidOrder(100, yearAgo);
    expect((await refund(refundFields(old, 10))).fields).toMatchObject({ result_code: 'FAIL', err_code: 'TRADE_OVERDUE' });
  });

  it('checks its parameters: LACK_PARAMS, PARAM_ERROR, a bad signature', async () => {
    const outTradeNo = await paidOrder();
    expect((await refund(refundFields(outTradeNo, 10, 100, { out_refund_no: undefined }))).fields.err_code).toBe('LACK_PARAMS');
    expect((await refund(refundFields(outTradeNo, 10, 100, { out_refund_no: 'bad no!' }))).fields.err_code).toBe('PARAM_ERROR');
    expect((await refund(refundFields(outTradeNo, 0))).fields.err_code).toBe('PARAM_ERROR');
    expect((await refund(refundFields(outTradeNo, 10, 100, { refund_desc: 'x'.repeat(81) }))).fields.err_code).toBe('PARAM_ERROR');
    const forged = buildXml(signFields(refundFields(outTradeNo, 10), 'f'.repeat(32), 'MD5'));
    expect((await postTls(`${emulator.secapiUrl}/secapi/pay/refund`, forged, merchantTls)).fields).toMatchObject({ return_code: 'FAIL' });
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(0);
  });

  it('systemError.refund answers SYSTEMERROR and refunds nothing', async () => {
    const outTradeNo = await paidOrder();
    await control(emulator, 'POST', '/__sim/faults', { systemError: { refund: 1 } });
    const fields = refundFields(outTradeNo, 10);
    expect((await refund(fields)).fields).toMatchObject({ result_code: 'FAIL', err_code: 'SYSTEMERROR' });
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(0);
    expect((await refund({ ...fields, nonce_str: nonceStr() })).fields.result_code).toBe('SUCCESS');
  });
});

describe('/pay/refundquery', () => {
  it("answers WeChat Pay's indexed fields, by out_refund_no or by out_trade_no", async () => {
    const outTradeNo = await paidOrder();
    const first = refundFields(outTradeNo, 10);
    await refund(first);
    await sleep(SPACING_MS);
    const second = refundFields(outTradeNo, 20);
    await refund(second);
    const one = await refundQuery({ out_refund_no: second.out_refund_no });
    expect(verifySignature(one.fields, MERCHANT.apiKey, 'MD5').ok).toBe(true);
    expect(one.fields).toMatchObject({
      result_code: 'SUCCESS',
      out_trade_no: outTradeNo,
      total_fee: '100',
      refund_count: '1',
      out_refund_no_0: second.out_refund_no,
      refund_fee_0: '20',
    });
    expect(one.fields.refund_id_0).toMatch(/^503/);
    expect(['PROCESSING', 'SUCCESS']).toContain(one.fields.refund_status_0);
    await eventually(async () =>
      (await refundQuery({ out_trade_no: outTradeNo })).fields.refund_status_1 === 'SUCCESS' ? true : undefined,
    );
    const all = await refundQuery({ out_trade_no: outTradeNo });
    expect(all.fields).toMatchObject({
      refund_count: '2',
      out_refund_no_0: first.out_refund_no,
      refund_fee_0: '10',
      refund_status_0: 'SUCCESS',
      out_refund_no_1: second.out_refund_no,
      refund_fee_1: '20',
    });
    expect(all.fields.refund_success_time_0).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('REFUNDNOTEXIST for a refund WeChat Pay never received; systemError.refundquery', async () => {
    expect((await refundQuery({ out_refund_no: 'Rnever' })).fields).toMatchObject({ result_code: 'FAIL', err_code: 'REFUNDNOTEXIST' });
    const outTradeNo = await paidOrder();
    expect((await refundQuery({ out_trade_no: outTradeNo })).fields.err_code).toBe('REFUNDNOTEXIST');
    await control(emulator, 'POST', '/__sim/faults', { systemError: { refundquery: 1 } });
    expect((await refundQuery({ out_trade_no: outTradeNo })).fields.err_code).toBe('SYSTEMERROR');
  });

  it('CHANGE and REFUNDCLOSE as the refundOutcome fault says', async () => {
    for (const outcome of ['CHANGE', 'REFUNDCLOSE'] as const) {
      const outTradeNo = await paidOrder();
      await control(emulator, 'POST', '/__sim/faults', { refundOutcome: outcome });
      const fields = refundFields(outTradeNo, 10);
      await refund(fields);
      await eventually(async () =>
        (await refundQuery({ out_refund_no: fields.out_refund_no })).fields.refund_status_0 === outcome ? true : undefined,
      );
    }
    await control(emulator, 'POST', '/__sim/faults', { refundOutcome: 'SUCCESS' });
    expect((await control(emulator, 'POST', '/__sim/faults', { refundOutcome: 'FAIL' })).status).toBe(400);
  });
});

describe('refund callbacks', () => {
  it('go to the refund notify_url with encrypted req_info, on the retry schedule until SUCCESS', async () => {
    const failingTwice = await startReceiver((n) => (n < 2 ? 'FAIL' : 'SUCCESS'));
    try {
      const outTradeNo = await paidOrder();
      const fields = refundFields(outTradeNo, 25, 100, { notify_url: failingTwice.url });
      await refund(fields);
      await eventually(async () => (failingTwice.received.length >= 3 ? true : undefined), 10_000);
      await sleep(100);
      expect(failingTwice.received).toHaveLength(3);
      const { fields: outer } = failingTwice.received[2]!;
      expect(outer.sign).toBeUndefined();
      const read = readRefundNotification(buildXml(outer), { apiKey: MERCHANT.apiKey, appIds: [MERCHANT.appId], mchId: MERCHANT.mchId });
      expect(read.ok && read.refund).toMatchObject({
        outTradeNo,
        outRefundNo: fields.out_refund_no,
        refundFee: 25,
        totalFee: 100,
        refundStatus: 'SUCCESS',
        refundRequestSource: 'API',
      });
      const view = await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`);
      const [seen] = view.json.refunds as Array<{ notifications: Array<{ return_code: string }> }>;
      expect(seen!.notifications.map((n) => n.return_code)).toEqual(['FAIL', 'FAIL', 'SUCCESS']);
    } finally {
      await failingTwice.close();
    }
  });

  it('a refund made in the merchant platform is called back too (refund_request_source VENDOR_PLATFORM)', async () => {
    const before = receiver.received.length;
    const outTradeNo = await paidOrder();
    const made = await control(emulator, 'POST', '/__sim/refund', { out_trade_no: outTradeNo, refund_fee: 5, notify_url: receiver.url });
    expect(made.status).toBe(200);
    await eventually(async () => (receiver.received.length > before ? true : undefined));
    const read = readRefundNotification(buildXml(receiver.received.at(-1)!.fields), {
      apiKey: MERCHANT.apiKey,
      appIds: [MERCHANT.appId],
      mchId: MERCHANT.mchId,
    });
    expect(read.ok && read.refund).toMatchObject({ outTradeNo, refundFee: 5, refundRequestSource: 'VENDOR_PLATFORM' });
  });
});

describe('the trade bill', () => {
  it("lists a day's refunds as REFUND rows of the day they were accepted", async () => {
    const { billRows } = await import('../../../dev/emulator/bill');
    const { emptyState } = await import('../../../dev/emulator/state');
    const { createOrder, payOrder } = await import('../../../dev/emulator/orders');
    const { createRefund } = await import('../../../dev/emulator/refunds');
    const state = emptyState();
    const yesterday = new Date(Date.now() - 24 * 3600 * 1000);
    const order = createOrder(state, orderFields({ total_fee: '100' }) as never, 'MD5', yesterday);
    payOrder(state, order, yesterday);
    createRefund(state, order, { outRefundNo: 'Rbill1', refundFee: 30, source: 'API' }, yesterday);
    const day = toBeijingTimestamp(yesterday).slice(0, 8);
    const rows = billRows(state, MERCHANT, day, 'ALL');
    expect(rows.map((row) => row.tradeState)).toEqual(['SUCCESS', 'REFUND']);
    expect(billRows(state, MERCHANT, day, 'REFUND')).toEqual([
      expect.objectContaining({ outRefundNo: 'Rbill1', tradeState: 'REFUND', refundFeeFen: 30 }),
    ]);
  });
});
