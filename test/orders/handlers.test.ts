import { createHash, createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { handler as createOrder } from '../../functions/createOrder';
import { handler as queryOrder } from '../../functions/queryOrder';
import { handler as notify } from '../../functions/notify';
import { TEST_MERCHANT } from '../../emulator/test-merchant';
import { signedNotification } from '../../lib/wechatpay/testing';
import { parseXml } from '../../lib/wechatpay/xml';
import { apiEvent, eventually, startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  await stack.sim.reset();
});

async function create(body: unknown, extra: Partial<Parameters<typeof apiEvent>[0]> = {}) {
  const result = await createOrder(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify(body), ...extra }));
  return { status: result.statusCode, body: JSON.parse(result.body as string) };
}

async function get(outTradeNo: string) {
  const result = await queryOrder(apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } }));
  return { status: result.statusCode, body: JSON.parse(result.body as string) };
}

async function callback(xml: string) {
  const result = await notify(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: xml, contentType: 'text/xml' }));
  return parseXml(result.body as string);
}

function signString(fields: Record<string, string>, signType: string): string {
  const text = Object.keys(fields).filter((k) => k !== 'paySign' && k !== 'sign' && fields[k] !== '').sort().map((k) => `${k}=${fields[k]}`).join('&') + `&key=${TEST_MERCHANT.apiKey}`;
  const hash = signType === 'MD5' ? createHash('md5').update(text, 'utf8') : createHmac('sha256', TEST_MERCHANT.apiKey).update(text, 'utf8');
  return hash.digest('hex').toUpperCase();
}

async function itemCount(): Promise<number> {
  const db = new DynamoDBClient({ endpoint: stack.dynamoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  return (await db.send(new ScanCommand({ TableName: stack.table, Select: 'COUNT' }))).Count ?? 0;
}

function paidCallback(outTradeNo: string, totalFee: number, fields: Record<string, string | undefined> = {}, signType: 'MD5' | 'HMAC-SHA256' = 'HMAC-SHA256') {
  return signedNotification({
    apiKey: TEST_MERCHANT.apiKey,
    signType,
    fields: { appid: TEST_MERCHANT.appId, mch_id: TEST_MERCHANT.mchId, out_trade_no: outTradeNo, total_fee: String(totalFee), ...fields },
  });
}

describe('every trade type from create to PAID', () => {
  const cases = [
    { tradeType: 'JSAPI', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    { tradeType: 'NATIVE', productId: 'sku-42' },
    { tradeType: 'MWEB', sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' } } },
    { tradeType: 'APP' },
  ];
  for (const extra of cases) {
    it(`${extra.tradeType}: create, pay in the emulator, callback, GET shows PAID`, async () => {
      const created = await create({ totalFee: 101, description: '测试商品 & <more>', ...extra });
      expect(created.status).toBe(201);
      expect(created.body.status).toBe('PENDING');
      expect(created.body.totalFee).toBe(101);
      const { outTradeNo, pay } = created.body;
      expect(outTradeNo).toMatch(/^[0-9A-Za-z_-]{6,32}$/);
      if (extra.tradeType === 'JSAPI') {
        expect(Object.keys(pay).sort()).toEqual(['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
        expect(pay.appId).toBe(TEST_MERCHANT.appId);
        expect(pay.timeStamp).toMatch(/^\d{10}$/);
        expect(pay.package).toMatch(/^prepay_id=wx/);
        expect(pay.signType).toBe('HMAC-SHA256');
        expect(pay.paySign).toBe(signString(pay, 'HMAC-SHA256'));
      } else if (extra.tradeType === 'NATIVE') {
        expect(pay.codeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
        expect(pay.qrCode).toMatch(/^data:image\/png;base64,/);
      } else if (extra.tradeType === 'MWEB') {
        expect(pay.mwebUrl).toMatch(/^https:\/\//);
      } else {
        expect(Object.keys(pay).sort()).toEqual(['appid', 'noncestr', 'package', 'partnerid', 'prepayid', 'sign', 'timestamp']);
        expect(pay.package).toBe('Sign=WXPay');
        expect(pay.partnerid).toBe(TEST_MERCHANT.mchId);
        expect(pay.sign).toBe(signString(pay, 'HMAC-SHA256'));
      }
      expect((await stack.sim.pay(outTradeNo)).status).toBe(200);
      const paid = await eventually(async () => {
        const order = await get(outTradeNo);
        return order.body.status === 'PAID' ? order.body : undefined;
      });
      expect(paid.transactionId).toMatch(/^42000\d{23}$/);
      expect(paid).not.toHaveProperty('openid');
      const sim = await stack.sim.order(outTradeNo);
      expect(sim.notifications.at(-1)?.return_code).toBe('SUCCESS');
    });
  }

  it('an MD5 merchant: the order, its paySign and its callback all use MD5', async () => {
    process.env.WECHATPAY_SIGN_TYPE = 'MD5';
    try {
      // The handlers read configuration once per container; a fresh module graph stands for a new one.
      const { vi } = await import('vitest');
      vi.resetModules();
      const fresh = (await import('../../functions/createOrder')).handler;
      const result = await fresh(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify({ tradeType: 'JSAPI', totalFee: 5, description: 'md5', openid: 'o-md5' }) }));
      const body = JSON.parse(result.body as string);
      expect(body.pay.signType).toBe('MD5');
      expect(body.pay.paySign).toBe(signString(body.pay, 'MD5'));
      const reply = await callback(paidCallback(body.outTradeNo, 5, {}, 'MD5'));
      expect(reply.return_code).toBe('SUCCESS');
      expect((await get(body.outTradeNo)).body.status).toBe('PAID');
    } finally {
      delete process.env.WECHATPAY_SIGN_TYPE;
    }
  });
});

describe('payment callbacks', () => {
  async function pendingOrder(totalFee = 300) {
    const created = await create({ tradeType: 'NATIVE', totalFee, description: 'callback test' });
    expect(created.status).toBe(201);
    return created.body.outTradeNo as string;
  }

  it('50 concurrent copies of one callback give one transition and 50 SUCCESS replies', async () => {
    const outTradeNo = await pendingOrder();
    const xml = paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611230000000001' });
    const { handlePaymentNotification } = await import('../../lib/orders/notify');
    const { ordersContext } = await import('../../lib/runtime');
    const ctx = await ordersContext();
    const results = await Promise.all(Array.from({ length: 50 }, () => handlePaymentNotification(xml, ctx)));
    expect(results.filter((r) => r.outcome === 'PAID')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'ALREADY_PAID')).toHaveLength(49);
    for (const r of results) expect(parseXml(r.reply).return_code).toBe('SUCCESS');
    const replies = await Promise.all(Array.from({ length: 50 }, () => callback(xml)));
    expect(replies.every((r) => r.return_code === 'SUCCESS')).toBe(true);
    const order = (await get(outTradeNo)).body;
    expect(order).toMatchObject({ status: 'PAID', transactionId: '4200000000202611230000000001' });
  });

  it('a replay with another transaction_id changes nothing and is flagged for review', async () => {
    const outTradeNo = await pendingOrder();
    expect((await callback(paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611230000000002' }))).return_code).toBe('SUCCESS');
    const before = (await get(outTradeNo)).body;
    expect((await callback(paidCallback(outTradeNo, 300, { transaction_id: '4200000000202611239999999999' }))).return_code).toBe('SUCCESS');
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
    expect(reply.return_code).toBe('FAIL');
    expect(reply.return_msg?.toLowerCase()).toContain(reason.toLowerCase() === 'amount' ? 'total_fee' : reason);
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
    expect(reply.return_code).toBe('FAIL');
    expect(reply.return_msg).toContain('signature');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('a callback signed with MD5 for an HMAC-SHA256 order is refused', async () => {
    const outTradeNo = await pendingOrder();
    const reply = await callback(paidCallback(outTradeNo, 300, {}, 'MD5'));
    expect(reply.return_code).toBe('FAIL');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('an unknown order is refused', async () => {
    const reply = await callback(paidCallback('20990101unknownorder0001', 300));
    expect(reply).toMatchObject({ return_code: 'FAIL' });
    expect(reply.return_msg).toContain('no order');
  });

  it('a base64-encoded body (as API Gateway sends binary) is read', async () => {
    const outTradeNo = await pendingOrder();
    const result = await notify(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: paidCallback(outTradeNo, 300), base64: true, contentType: 'text/xml' }));
    expect(parseXml(result.body as string).return_code).toBe('SUCCESS');
    expect((await get(outTradeNo)).body.status).toBe('PAID');
  });

  it('a genuine result_code=FAIL callback is acknowledged and the order stays unpaid', async () => {
    const outTradeNo = await pendingOrder();
    const reply = await callback(paidCallback(outTradeNo, 300, { result_code: 'FAIL', err_code: 'NOTENOUGH', transaction_id: undefined }));
    expect(reply.return_code).toBe('SUCCESS');
    expect((await get(outTradeNo)).body.status).toBe('PENDING');
  });

  it('malformed XML gets FAIL with the reason', async () => {
    const reply = await callback('<xml><return_code>SUCCESS</return_code>');
    expect(reply.return_code).toBe('FAIL');
    expect(reply.return_msg).toMatch(/malformed|XML/i);
  });
});

describe('following an order', () => {
  it('a lost callback: GET asks WeChat Pay and records the payment', async () => {
    await stack.sim.faults({ dropNotifies: 1000 });
    const { body } = await create({ tradeType: 'NATIVE', totalFee: 88, description: 'lost callback' });
    await stack.sim.pay(body.outTradeNo);
    const order = await eventually(async () => {
      const current = (await get(body.outTradeNo)).body;
      return current.status === 'PAID' ? current : undefined;
    }, 10_000);
    expect(order.transactionId).toMatch(/^42000/);
  });

  it('1000 polls of one pending order cause at most a handful of orderquery calls', async () => {
    const { body } = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'polling' });
    const started = Date.now();
    for (let batch = 0; batch < 10; batch += 1) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => get(body.outTradeNo)));
      for (const answer of answers) expect(answer.body.status).toBe('PENDING');
    }
    const elapsed = Date.now() - started;
    const queries = (await stack.sim.order(body.outTradeNo)).calls.filter((c) => c.endpoint === 'orderquery');
    // One query per 3-second interval, however many clients poll.
    expect(queries.length).toBeGreaterThanOrEqual(1);
    expect(queries.length).toBeLessThanOrEqual(Math.ceil(elapsed / 3_000) + 1);
  });

  it('an unknown order is 404; a malformed id is 400', async () => {
    expect((await get('20990101doesnotexist00001')).status).toBe(404);
    const bad = await get('../etc');
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('outTradeNo');
  });

  it('the answer carries nothing personal', async () => {
    const { body } = await create({ tradeType: 'JSAPI', totalFee: 1, description: 'privacy', openid: 'o-private-openid' });
    const answer = (await get(body.outTradeNo)).body;
    expect(JSON.stringify(answer)).not.toContain('o-private-openid');
    expect(Object.keys(answer).sort()).toEqual(['createdAt', 'expiresAt', 'outTradeNo', 'status', 'totalFee', 'tradeType']);
  });
});

describe('creating orders', () => {
  it('the same idempotencyKey returns the same order; a different request with it is refused', async () => {
    const request = { tradeType: 'NATIVE', totalFee: 500, description: 'idempotent', idempotencyKey: 'checkout-7f3a' };
    const first = await create(request);
    const again = await create(request);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.outTradeNo).toBe(first.body.outTradeNo);
    expect(again.body.pay.codeUrl).toBe(first.body.pay.codeUrl);
    const conflict = await create({ ...request, totalFee: 501 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');    // The key's record is forgotten by DynamoDB's TTL a day after the longest possible order expiry.
    const { ordersContext } = await import('../../lib/runtime');
    const record = await (await ordersContext()).store.db.send(new GetCommand({ TableName: stack.table, Key: { pk: 'idempotency#checkout-7f3a' } }));
    const eightDays = 8 * 24 * 3600;
    expect(record.Item?.ttl).toBeGreaterThan(Date.now() / 1000 + eightDays - 60);
    expect(record.Item?.ttl).toBeLessThan(Date.now() / 1000 + eightDays + 60);
    const order = await (await ordersContext()).store.db.send(new GetCommand({ TableName: stack.table, Key: { pk: first.body.outTradeNo } }));
    expect(order.Item).not.toHaveProperty('ttl');
  });

  it('concurrent requests with one idempotencyKey create one order', async () => {
    const request = { tradeType: 'APP', totalFee: 500, description: 'concurrent', idempotencyKey: 'tap-tap-tap' };
    const answers = await Promise.all(Array.from({ length: 10 }, () => create(request)));
    expect(new Set(answers.map((a) => a.body.outTradeNo)).size).toBe(1);
    expect(answers.every((a) => a.status === 200 || a.status === 201)).toBe(true);
  });

  it('the client IP comes from the request context and the openid from a verified claim', async () => {
    const created = await create(
      { tradeType: 'JSAPI', totalFee: 1, description: 'claims', openid: 'o-from-body' },
      { sourceIp: '198.51.100.23', claims: { openid: 'o-from-claim' } },
    );
    expect(created.status).toBe(201);
    const { ordersContext } = await import('../../lib/runtime');
    const stored = await (await ordersContext()).store.get(created.body.outTradeNo);
    expect(stored?.unifiedOrder.spbill_create_ip).toBe('198.51.100.23');
    expect(stored?.unifiedOrder.openid).toBe('o-from-claim');
  });

  it('a WeChat Pay SYSTEMERROR that outlasts the retries answers 502 and leaves the order PENDING', async () => {
    await stack.sim.faults({ systemError: { unifiedorder: 10 } });
    const created = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'flaky' });
    expect(created.status).toBe(502);
    expect(created.body.error.code).toBe('SYSTEMERROR');
  });

  it('a refusal for good (PARAM_ERROR) marks the order FAILED and answers 502 with WeChat Pay\'s code', async () => {
    // WeChat Pay checks spbill_create_ip; a request context without a real IP cannot be paid.
    const refused = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'refused' }, { sourceIp: 'not-an-ip' });
    expect(refused.status).toBe(502);
    expect(refused.body.error.code).toBe('PARAM_ERROR');
    const { outTradeNo } = refused.body.error;
    const order = (await get(outTradeNo)).body;
    expect(order.status).toBe('FAILED');
    const { ordersContext } = await import('../../lib/runtime');
    const stored = await (await ordersContext()).store.get(outTradeNo);
    expect(stored).toMatchObject({ failureCode: 'PARAM_ERROR' });
    // Out of the pending index: recovery never looks at it again.
    expect(stored).not.toHaveProperty('pendingShard');
  });

  const badBodies: Array<[string, unknown, string | undefined]> = [
    ['no tradeType', { totalFee: 1, description: 'x' }, 'tradeType'],
    ['unknown tradeType', { tradeType: 'MICROPAY', totalFee: 1, description: 'x' }, 'tradeType'],
    ['fractional fen', { tradeType: 'NATIVE', totalFee: 1.5, description: 'x' }, 'totalFee'],
    ['zero fen', { tradeType: 'NATIVE', totalFee: 0, description: 'x' }, 'totalFee'],
    ['fee as a string', { tradeType: 'NATIVE', totalFee: '100', description: 'x' }, 'totalFee'],
    ['empty description', { tradeType: 'NATIVE', totalFee: 1, description: '' }, 'description'],
    ['description too long', { tradeType: 'NATIVE', totalFee: 1, description: 'x'.repeat(129) }, 'description'],
    ['emoji in description', { tradeType: 'NATIVE', totalFee: 1, description: 'coffee ☕️🍰' }, 'description'],
    ['JSAPI without openid', { tradeType: 'JSAPI', totalFee: 1, description: 'x' }, 'openid'],
    ['attach over 127 bytes', { tradeType: 'NATIVE', totalFee: 1, description: 'x', attach: '中'.repeat(43) }, 'attach'],
    ['unknown field', { tradeType: 'NATIVE', totalFee: 1, description: 'x', total_fee: 1 }, 'total_fee'],
    ['spbill_create_ip in the body', { tradeType: 'NATIVE', totalFee: 1, description: 'x', spbill_create_ip: '1.2.3.4' }, 'spbill_create_ip'],
    ['idempotencyKey too long', { tradeType: 'NATIVE', totalFee: 1, description: 'x', idempotencyKey: 'k'.repeat(65) }, 'idempotencyKey'],
    ['an array', [], undefined],
    ['null', null, undefined],
  ];
  it.each(badBodies)('%s gets a 400 naming the field and stores nothing', async (_name, body, field) => {
    const before = await itemCount();
    const answer = await create(body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    if (field) {
      expect(answer.body.error.field).toBe(field);
      expect(answer.body.error.message).toContain(field);
    }
    expect(await itemCount()).toBe(before);
  });

  it('a body that is not JSON gets a 400', async () => {
    const result = await createOrder(apiEvent({ method: 'POST', path: '/orders', body: '{"tradeType":' }));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body as string).error.message).toContain('JSON');
  });
});
