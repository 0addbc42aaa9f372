import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { handler as createMerchantOrder } from '../../functions/createMerchantOrder';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { apiEvent, callback, create, get, MERCHANT_AUTHORIZATION } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true });

function signString(fields: Record<string, string>, signType: string): string {
  const text =
    Object.keys(fields)
      .filter((k) => k !== 'paySign' && k !== 'sign' && fields[k] !== '')
      .sort()
      .map((k) => `${k}=${fields[k]}`)
      .join('&') + `&key=${TEST_MERCHANT.apiKey}`;
  const hash =
    signType === 'MD5' ? createHash('md5').update(text, 'utf8') : createHmac('sha256', TEST_MERCHANT.apiKey).update(text, 'utf8');
  return hash.digest('hex').toUpperCase();
}

async function itemCount(): Promise<number> {
  const db = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  return (await db.send(new ScanCommand({ TableName: stack.table, Select: 'COUNT' }))).Count ?? 0;
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
      // The payment is visible as soon as it is written, a moment before the callback is answered.
      const sim = await eventually(async () => {
        const view = await stack.sim.order(outTradeNo);
        return view.notifications.length > 0 ? view : undefined;
      });
      expect(sim.notifications.at(-1)?.return_code).toBe('SUCCESS');
    });
  }

  it('an MD5 merchant: the order, its paySign and its callback all use MD5', async () => {
    process.env.WECHATPAY_SIGN_TYPE = 'MD5';
    try {
      // The handlers read configuration once per container; a fresh module graph stands for a new one.
      const { vi } = await import('vitest');
      vi.resetModules();
      const fresh = (await import('../../functions/createMerchantOrder')).handler;
      const body0 = JSON.stringify({ tradeType: 'JSAPI', totalFee: 5, description: 'md5', openid: 'o-md5' });
      const result = await fresh(
        apiEvent({ method: 'POST', path: '/merchant/orders', body: body0, authorization: MERCHANT_AUTHORIZATION }),
      );
      const body = JSON.parse(result.body as string);
      expect(body.pay.signType).toBe('MD5');
      expect(body.pay.paySign).toBe(signString(body.pay, 'MD5'));
      const reply = await callback(paidCallback(body.outTradeNo, 5, {}, 'MD5'));
      expect(reply.returnCode).toBe('SUCCESS');
      expect((await get(body.outTradeNo)).body.status).toBe('PAID');
    } finally {
      delete process.env.WECHATPAY_SIGN_TYPE;
    }
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
    expect(conflict.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED'); // The key's record is forgotten by DynamoDB's TTL a day after the longest possible order expiry.
    const { ordersContext } = await import('../../lib/runtime');
    const record = await (
      await ordersContext()
    ).store.db.send(new GetCommand({ TableName: stack.table, Key: { pk: 'idempotency#merchant#checkout-7f3a' } }));
    const eightDays = 8 * 24 * 3600;
    expect(record.Item?.ttl).toBeGreaterThan(Date.now() / 1000 + eightDays - 60);
    expect(record.Item?.ttl).toBeLessThan(Date.now() / 1000 + eightDays + 60);
    const order = await (
      await ordersContext()
    ).store.db.send(new GetCommand({ TableName: stack.table, Key: { pk: first.body.outTradeNo } }));
    expect(order.Item).not.toHaveProperty('ttl');
  });

  it('concurrent requests with one idempotencyKey create one order', async () => {
    const request = { tradeType: 'APP', totalFee: 500, description: 'concurrent', idempotencyKey: 'tap-tap-tap' };
    const answers = await Promise.all(Array.from({ length: 10 }, () => create(request)));
    expect(new Set(answers.map((a) => a.body.outTradeNo)).size).toBe(1);
    expect(answers.every((a) => a.status === 200 || a.status === 201)).toBe(true);
  });

  it('the client IP comes from the request context, never from the body', async () => {
    const created = await create(
      { tradeType: 'JSAPI', totalFee: 1, description: 'ip', openid: 'o-from-body' },
      { sourceIp: '198.51.100.23' },
    );
    expect(created.status).toBe(201);
    const { ordersContext } = await import('../../lib/runtime');
    const stored = await (await ordersContext()).store.get(created.body.outTradeNo);
    expect(stored?.unifiedOrder.spbill_create_ip).toBe('198.51.100.23');
    expect(stored?.unifiedOrder.openid).toBe('o-from-body');
  });

  it('a WeChat Pay SYSTEMERROR that outlasts the retries answers 502 and leaves the order PENDING', async () => {
    await stack.sim.faults({ systemError: { unifiedorder: 10 } });
    const created = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'flaky' });
    expect(created.status).toBe(502);
    expect(created.body.error.code).toBe('SYSTEMERROR');
  });

  it("a refusal for good (PARAM_ERROR) marks the order FAILED and answers 502 with WeChat Pay's code", async () => {
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
    [
      'spbill_create_ip in the body',
      { tradeType: 'NATIVE', totalFee: 1, description: 'x', spbill_create_ip: '1.2.3.4' },
      'spbill_create_ip',
    ],
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
    const result = await createMerchantOrder(
      apiEvent({ method: 'POST', path: '/merchant/orders', body: '{"tradeType":', authorization: MERCHANT_AUTHORIZATION }),
    );
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body as string).error.message).toContain('JSON');
  });
});
