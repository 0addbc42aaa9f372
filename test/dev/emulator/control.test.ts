import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../lib/wechatpay/sign';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, close, control, MERCHANT, orderFields, query, startTestEmulator } from '../../support/emulator';

let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startTestEmulator({ timeScale: 0.0001 });
});
beforeEach(() => control(emulator, 'POST', '/__sim/reset'));
afterAll(() => emulator.close());

describe('POST /__sim/faults', () => {
  it('merges the given keys and answers the fault state in force', async () => {
    const first = await control(emulator, 'POST', '/__sim/faults', { dropNotifies: 2, systemError: { orderquery: 1 } });
    expect(first.status).toBe(200);
    const second = await control(emulator, 'POST', '/__sim/faults', { delayMs: 5, systemError: { closeorder: 3 } });
    expect(second.json).toEqual({
      dropNotifies: 2,
      duplicateNotifies: 1,
      systemError: { unifiedorder: 0, orderquery: 1, closeorder: 3, refund: 0, refundquery: 0 },
      delayMs: 5,
      refundOutcome: 'SUCCESS',
    });
  });

  it.each([
    [{ dropNotifies: -1 }],
    [{ dropNotifies: 1.5 }],
    [{ duplicateNotifies: 0 }],
    [{ delayMs: '10' }],
    [{ systemError: { downloadbill: 1 } }],
    [{ refundOutcome: 'FAIL' }],
    [{ systemError: 2 }],
    [{ sometimes: true }],
    ['[1]'],
    ['{'],
  ])('refuses %j with a JSON error and changes nothing', async (body) => {
    const refused = await control(emulator, 'POST', '/__sim/faults', body);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    expect((await control(emulator, 'POST', '/__sim/faults', {})).json).toMatchObject({ dropNotifies: 0, delayMs: 0 });
  });

  it('systemError answers exactly the next N calls of that endpoint with SYSTEMERROR', async () => {
    await control(emulator, 'POST', '/__sim/faults', { systemError: { unifiedorder: 2, orderquery: 1 } });
    const fields = orderFields();
    for (let i = 0; i < 2; i++) {
      const failed = await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256');
      expect(failed.fields).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'SYSTEMERROR' });
      expect(verifySignature(failed.fields, MERCHANT.apiKey, 'HMAC-SHA256').ok).toBe(true);
    }
    // A retry with the same parameters then goes through, and nothing was stored by the failures.
    expect((await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256')).fields.result_code).toBe('SUCCESS');
    const outTradeNo = fields.out_trade_no ?? '';
    expect((await query(emulator, outTradeNo)).fields.err_code).toBe('SYSTEMERROR');
    expect((await query(emulator, outTradeNo)).fields.trade_state).toBe('NOTPAY');
    expect((await control(emulator, 'POST', '/__sim/faults', {})).json.systemError).toEqual({
      unifiedorder: 0,
      orderquery: 0,
      closeorder: 0,
      refund: 0,
      refundquery: 0,
    });
  });

  it('delayMs delays every answer until set back to 0, but the call takes effect at once', async () => {
    await control(emulator, 'POST', '/__sim/faults', { delayMs: 250 });
    const fields = orderFields();
    const started = performance.now();
    const slow = call(emulator, 'unifiedorder', fields);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The order exists before its answer arrives, as with a client that timed out on WeChat Pay.
    expect((await control(emulator, 'GET', `/__sim/orders/${fields.out_trade_no}`)).status).toBe(200);
    expect((await slow).fields.result_code).toBe('SUCCESS');
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);

    const again = performance.now();
    await query(emulator, fields.out_trade_no ?? '');
    expect(performance.now() - again).toBeGreaterThanOrEqual(240);

    await control(emulator, 'POST', '/__sim/faults', { delayMs: 0 });
    const fast = performance.now();
    await query(emulator, fields.out_trade_no ?? '');
    expect(performance.now() - fast).toBeLessThan(200);
  });
});

describe('GET /__sim/orders/{out_trade_no}', () => {
  it('shows the order and every call it received, with what was answered', async () => {
    const fields = orderFields({ attach: 'x' });
    const outTradeNo = fields.out_trade_no ?? '';
    await call(emulator, 'unifiedorder', fields, 'HMAC-SHA256');
    await call(emulator, 'unifiedorder', { ...fields, total_fee: '1' }, 'HMAC-SHA256');
    await call(emulator, 'orderquery', { ...fields, sign: undefined, out_trade_no: outTradeNo }, 'MD5', 'y'.repeat(32));
    await new Promise((resolve) => setTimeout(resolve, 40));
    await close(emulator, outTradeNo);

    const view = await control(emulator, 'GET', `/__sim/orders/${encodeURIComponent(outTradeNo)}`);
    expect(view.status).toBe(200);
    expect(view.json).toMatchObject({
      out_trade_no: outTradeNo,
      trade_state: 'CLOSED',
      total_fee: 101,
      trade_type: 'NATIVE',
      sign_type: 'HMAC-SHA256',
      body: fields.body,
      attach: 'x',
      notifications: [],
    });
    expect(Date.parse(String(view.json.created_at))).not.toBeNaN();
    expect(view.json.calls).toMatchObject([
      { endpoint: 'unifiedorder', return_code: 'SUCCESS', result_code: 'SUCCESS' },
      { endpoint: 'unifiedorder', return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'INVALID_REQUEST' },
      { endpoint: 'orderquery', return_code: 'FAIL', err_code: 'SIGNERROR' },
      { endpoint: 'closeorder', return_code: 'SUCCESS', result_code: 'SUCCESS' },
    ]);
    expect(JSON.stringify(view.json)).not.toContain(MERCHANT.apiKey);
  });

  it('answers 404 for an unknown order, with the calls refused for it', async () => {
    const fields = orderFields({ total_fee: '0' });
    await call(emulator, 'unifiedorder', fields);
    const view = await control(emulator, 'GET', `/__sim/orders/${fields.out_trade_no}`);
    expect(view.status).toBe(404);
    expect(view.json.error).toMatchObject({ code: 'ORDER_NOT_FOUND' });
    expect(view.json.calls).toMatchObject([{ endpoint: 'unifiedorder', result_code: 'FAIL', err_code: 'PARAM_ERROR' }]);
  });
});

describe('POST /__sim/reset', () => {
  it('forgets orders, calls and faults', async () => {
    const fields = orderFields();
    await call(emulator, 'unifiedorder', fields);
    await control(emulator, 'POST', '/__sim/faults', { dropNotifies: 3, duplicateNotifies: 2, systemError: { closeorder: 1 } });
    expect((await control(emulator, 'POST', '/__sim/reset')).status).toBe(200);
    expect((await query(emulator, fields.out_trade_no ?? '')).fields.err_code).toBe('ORDERNOTEXIST');
    // Only the query just made is known for it; the unified order before the reset is forgotten.
    expect((await control(emulator, 'GET', `/__sim/orders/${fields.out_trade_no}`)).json.calls).toHaveLength(1);
    expect((await control(emulator, 'POST', '/__sim/faults', {})).json).toEqual({
      dropNotifies: 0,
      duplicateNotifies: 1,
      systemError: { unifiedorder: 0, orderquery: 0, closeorder: 0, refund: 0, refundquery: 0 },
      delayMs: 0,
      refundOutcome: 'SUCCESS',
    });
    // The out_trade_no is free again.
    expect((await call(emulator, 'unifiedorder', { ...fields, total_fee: '5' })).fields.result_code).toBe('SUCCESS');
  });
});

describe('routing', () => {
  it('answers JSON errors for unknown paths and wrong methods', async () => {
    expect((await control(emulator, 'GET', '/pay/micropay')).status).toBe(404);
    expect((await control(emulator, 'GET', '/__sim/reset')).status).toBe(405);
    expect((await control(emulator, 'POST', '/__sim/orders/abc')).status).toBe(405);
  });
});

describe('startEmulator', () => {
  it('gives a callable URL when listening on every interface', async () => {
    const everywhere = await startTestEmulator({ host: '0.0.0.0' });
    try {
      expect(everywhere.url).toBe(`http://127.0.0.1:${everywhere.port}`);
      expect((await control(everywhere, 'POST', '/__sim/reset')).status).toBe(200);
    } finally {
      await everywhere.close();
    }
  });

  it('refuses a time scale that is not a positive number', async () => {
    await expect(startTestEmulator({ timeScale: 0 })).rejects.toThrow(/timeScale/);
  });
});
