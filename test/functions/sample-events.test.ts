/**
 * The events in events/ are what `serverless invoke local -f NAME -p events/NAME.json` feeds the
 * handlers: each must still be a request the handler accepts, whatever the contract became.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../lib/http/event';
import { parseXml } from '../../lib/wechatpay/xml';
import { DEMO_PRODUCTS } from '../../dev/local/demo-products';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { putProduct } from '../support/api';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
  // As on the local stack, which starts with the demo products.
  for (const { sku, name, priceFen } of DEMO_PRODUCTS) await putProduct(sku, { name, priceFen });
});
afterAll(async () => {
  await stack?.close();
});

function sample(name: string): ApiEvent {
  return JSON.parse(readFileSync(new URL(`../../events/${name}.json`, import.meta.url), 'utf8')) as ApiEvent;
}

describe('sample events', () => {
  // The samples carry the local stack's merchant token.
  beforeAll(() => {
    process.env.MERCHANT_API_TOKEN = 'local-merchant-token';
  });

  it.each([
    ['putProduct', 200],
    ['listProducts', 200],
    ['createMerchantOrder', 201],
    ['getMerchantOrder', 404],
    // The sample refunds an order that is not here.
    ['createRefund', 404],
    ['getRefund', 404],
  ])("%s: the sample request of the merchant's server is accepted (%i)", async (name, status) => {
    const { handler } = (await import(`../../functions/${name}.ts`)) as {
      handler: (event: ApiEvent) => Promise<{ statusCode?: number; body?: string }>;
    };
    const result = await handler(sample(name));
    expect(result.statusCode, String(result.body)).toBe(status);
  });

  it('createOrder: the sample request creates an order', async () => {
    const { handler } = await import('../../functions/createOrder');
    const result = await handler(sample('createOrder'));
    expect(result.statusCode, String(result.body)).toBe(201);
  });

  it("reconcile: the sample schedule event reconciles yesterday's bill", async () => {
    const { handler } = await import('../../functions/reconcile');
    const report = await handler(JSON.parse(readFileSync(new URL('../../events/reconcile.json', import.meta.url), 'utf8')));
    expect(['MATCHED', 'NO_BILL']).toContain(report.status);
  });

  it.each(['miniProgramLogin', 'officialAccountLogin'])(
    '%s: the sample login reaches WeChat, which refuses its sample code (401, errcode 40029)',
    async (name) => {
      const { handler } = (await import(`../../functions/${name}.ts`)) as {
        handler: (event: ApiEvent) => Promise<{ statusCode?: number; body?: string }>;
      };
      const result = await handler(sample(name));
      expect(result.statusCode, String(result.body)).toBe(401);
      expect(JSON.parse(result.body as string).error.message).toMatch(/errcode 40029/);
    },
  );

  it("jssdkConfig: the sample page of the shop's origin gets its wx.config", async () => {
    const { handler } = await import('../../functions/jssdkConfig');
    const result = await handler(sample('jssdkConfig'));
    expect(result.statusCode, String(result.body)).toBe(200);
    expect(JSON.parse(result.body as string)).toMatchObject({
      appId: TEST_MERCHANT.appId,
      signature: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
  });

  it('queryOrder: the sample asks for an order that does not exist here: 404', async () => {
    const { handler } = await import('../../functions/queryOrder');
    expect((await handler(sample('queryOrder'))).statusCode).toBe(404);
  });

  it('clearOutbox: the sample Order Paid event is of an order that is not here: nothing to clear', async () => {
    const { handler } = await import('../../functions/clearOutbox');
    const event = JSON.parse(readFileSync(new URL('../../events/clearOutbox.json', import.meta.url), 'utf8'));
    expect(await handler(event)).toBe('gone');
  });

  it('refundNotify: the sample refund callback decrypts and is refused only because its order is not here', async () => {
    const { handler } = await import('../../functions/refundNotify');
    const reply = parseXml((await handler(sample('refundNotify'))).body as string);
    expect(reply).toMatchObject({ return_code: 'FAIL' });
    expect(reply.return_msg).toMatch(/^no order /);
  });

  it('notify: the sample callback verifies and is refused only because its order is not here', async () => {
    const { handler } = await import('../../functions/notify');
    const reply = parseXml((await handler(sample('notify'))).body as string);
    expect(reply).toMatchObject({ return_code: 'FAIL' });
    expect(reply.return_msg).toMatch(/^no order /);
  });
});
