import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../lib/wechatpay/sign';
import type { SignType } from '../../../lib/wechatpay/sign';
import { fromBeijingTimestamp } from '../../../lib/wechatpay/time';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, control, MERCHANT, orderFields, paidJsapiFields, startReceiver, startTestEmulator } from '../../support/emulator';
import { sleep, waitFor } from '../../support/eventually';
import type { Receiver } from '../../support/emulator';

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.close()));
});

async function setUp(timeScale: number, answer?: (n: number) => string | undefined, notifyTimeoutMs?: number) {
  const emulator = await startTestEmulator({ timeScale, ...(notifyTimeoutMs ? { notifyTimeoutMs } : {}) });
  const receiver = await startReceiver(answer);
  running.push(emulator, receiver);
  return { emulator, receiver };
}

async function orderAndPay(
  emulator: RunningEmulator,
  receiver: Receiver,
  overrides: Record<string, string | undefined> = {},
  signType: SignType = 'MD5',
): Promise<string> {
  const fields = orderFields({ notify_url: receiver.url, ...overrides });
  expect((await call(emulator, 'unifiedorder', fields, signType)).fields.result_code).toBe('SUCCESS');
  expect((await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no })).status).toBe(200);
  return fields.out_trade_no ?? '';
}

async function notifications(emulator: RunningEmulator, outTradeNo: string) {
  const view = await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`);
  return view.json.notifications as { status: number | string; return_code?: string; attempt: number }[];
}

describe('payment callbacks', () => {
  it.each<SignType>(['MD5', 'HMAC-SHA256'])(
    'carry every field WeChat Pay sends, signed in the order sign type (%s) without sign_type',
    async (signType) => {
      const { emulator, receiver } = await setUp(0.001);
      const openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
      const outTradeNo = await orderAndPay(
        emulator,
        receiver,
        { trade_type: 'JSAPI', openid, product_id: undefined, attach: '{"cart":7}', device_info: 'WEB' },
        signType,
      );
      await waitFor(() => receiver.received.length >= 1);
      const { fields } = receiver.received[0]!;
      expect(fields.sign_type).toBeUndefined();
      expect(verifySignature(fields, MERCHANT.apiKey, signType)).toEqual({ ok: true, signType });
      expect(fields).toMatchObject({
        return_code: 'SUCCESS',
        appid: MERCHANT.appId,
        mch_id: MERCHANT.mchId,
        device_info: 'WEB',
        result_code: 'SUCCESS',
        ...paidJsapiFields(outTradeNo, openid, '{"cart":7}'),
      });
      expect(fields.nonce_str).toMatch(/^[0-9A-Za-z]{1,32}$/);
      expect(fields.bank_type).toBeTruthy();
      expect(fields.transaction_id).toMatch(/^42000\d{23}$/);
      expect(fromBeijingTimestamp(fields.time_end ?? '')).toBeDefined();
      await waitFor(async () => (await notifications(emulator, outTradeNo)).length === 1);
      expect(await notifications(emulator, outTradeNo)).toMatchObject([{ status: 200, return_code: 'SUCCESS' }]);
    },
  );

  it('name a simulated payer for orders without an openid, and leave out an absent attach', async () => {
    const { emulator, receiver } = await setUp(0.001);
    await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 1);
    const { fields } = receiver.received[0]!;
    expect(fields.openid).toMatch(/^[0-9A-Za-z_-]{28}$/);
    expect(fields.trade_type).toBe('NATIVE');
    expect('attach' in fields).toBe(false);
  });

  it('are retried on the scaled schedule (15s, 15s, 30s, 3m) until answered SUCCESS, then stop', async () => {
    const timeScale = 0.01;
    // FAIL three times, then SUCCESS: attempts at 0, 150, 300 and 600 ms.
    const { emulator, receiver } = await setUp(timeScale, (n) => (n < 3 ? 'FAIL' : 'SUCCESS'));
    const outTradeNo = await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 4);
    const at = receiver.received.map((callback) => callback.at);
    const gaps = at.slice(1).map((time, i) => time - at[i]!);
    const expected = [15_000, 15_000, 30_000].map((ms) => ms * timeScale);
    // Generous bounds: the receiver sees each attempt after its network latency, and CI is busy.
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(expected[i]! * 0.8);
      expect(gap).toBeLessThan(expected[i]! + 250);
    });
    const ratio = gaps[2]! / ((gaps[0]! + gaps[1]!) / 2);
    expect(ratio).toBeGreaterThan(1.4);
    expect(ratio).toBeLessThan(2.6);

    // The next gap would be 3 minutes (1.8 s here); well past it, nothing more came.
    await sleep(180_000 * timeScale + 200);
    expect(receiver.received).toHaveLength(4);
    expect(await notifications(emulator, outTradeNo)).toMatchObject([
      { attempt: 0, status: 200, return_code: 'FAIL' },
      { attempt: 1, status: 200, return_code: 'FAIL' },
      { attempt: 2, status: 200, return_code: 'FAIL' },
      { attempt: 3, status: 200, return_code: 'SUCCESS' },
    ]);
  });

  it('count any answer but return_code SUCCESS (exactly) as a failure', async () => {
    const { emulator, receiver } = await setUp(0.001, (n) => (n === 0 ? 'success' : 'SUCCESS'));
    const outTradeNo = await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 2);
    await waitFor(async () => (await notifications(emulator, outTradeNo)).length === 2);
    expect(await notifications(emulator, outTradeNo)).toMatchObject([
      { status: 200, return_code: 'success' },
      { status: 200, return_code: 'SUCCESS' },
    ]);
  });

  it('record a merchant that does not answer in time as an error, and try again', async () => {
    const { emulator, receiver } = await setUp(0.001, (n) => (n === 0 ? undefined : 'SUCCESS'), 100);
    const outTradeNo = await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 2);
    await waitFor(async () => (await notifications(emulator, outTradeNo)).length === 2);
    expect(await notifications(emulator, outTradeNo)).toMatchObject([
      { status: 'error', attempt: 0 },
      { status: 200, attempt: 1, return_code: 'SUCCESS' },
    ]);
  });

  it('dropNotifies: the next N attempts are not delivered but keep their place on the schedule', async () => {
    const { emulator, receiver } = await setUp(0.002);
    await control(emulator, 'POST', '/__sim/faults', { dropNotifies: 2 });
    const paidAt = performance.now();
    const outTradeNo = await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 1);
    // Delivered as the third attempt: after 15 s + 15 s scaled.
    expect(receiver.received[0]!.at - paidAt).toBeGreaterThanOrEqual(30_000 * 0.002 * 0.9);
    expect(await notifications(emulator, outTradeNo)).toMatchObject([
      { attempt: 0, status: 'dropped' },
      { attempt: 1, status: 'dropped' },
      { attempt: 2, status: 200, return_code: 'SUCCESS' },
    ]);
    expect((await control(emulator, 'POST', '/__sim/faults', {})).json.dropNotifies).toBe(0);
  });

  it('duplicateNotifies: each attempt is delivered K times at once, and SUCCESS to any ends them', async () => {
    const { emulator, receiver } = await setUp(0.001);
    await control(emulator, 'POST', '/__sim/faults', { duplicateNotifies: 3 });
    const outTradeNo = await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 3);
    await sleep(15_000 * 0.001 + 100);
    expect(receiver.received).toHaveLength(3);
    const transactionIds = new Set(receiver.received.map((callback) => callback.fields.transaction_id));
    expect(transactionIds.size).toBe(1);
    const sent = receiver.received.map((callback) => callback.at);
    expect(Math.max(...sent) - Math.min(...sent)).toBeLessThan(100);
    expect(await notifications(emulator, outTradeNo)).toHaveLength(3);
  });
});

describe('pending callbacks', () => {
  it.each(['reset', 'close'])('stop on %s', async (how) => {
    const timeScale = 0.002;
    const { emulator, receiver } = await setUp(timeScale, () => 'FAIL');
    await orderAndPay(emulator, receiver);
    await waitFor(() => receiver.received.length >= 1);
    if (how === 'reset') await control(emulator, 'POST', '/__sim/reset');
    else await emulator.close();
    // An attempt already on the wire may still land; none may start afterwards.
    await sleep(10);
    const delivered = receiver.received.length;
    await sleep(30_000 * timeScale * 3);
    expect(receiver.received).toHaveLength(delivered);
  });
});

describe('POST /__sim/pay', () => {
  it('answers 404 for an unknown order, 409 when already paid, 400 without out_trade_no', async () => {
    const { emulator, receiver } = await setUp(0.001);
    expect((await control(emulator, 'POST', '/__sim/pay', { out_trade_no: 'nobody-ordered' })).status).toBe(404);
    const outTradeNo = await orderAndPay(emulator, receiver);
    const again = await control(emulator, 'POST', '/__sim/pay', { out_trade_no: outTradeNo });
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: 'ORDER_PAID' });
    expect((await control(emulator, 'POST', '/__sim/pay', {})).status).toBe(400);
    expect((await control(emulator, 'POST', '/__sim/pay', 'not json')).status).toBe(400);
  });
});
