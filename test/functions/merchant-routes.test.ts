/**
 * The merchant's server's routes: the bearer token checked before anything, the catalog, and the
 * merchant's view of an order.
 */
import { describe, expect, it, vi } from 'vitest';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handler as createMerchantOrder } from '../../functions/createMerchantOrder';
import { handler as getMerchantOrder } from '../../functions/getMerchantOrder';
import { handler as listProducts } from '../../functions/listProducts';
import { handler as putProduct } from '../../functions/putProduct';
import type { ApiEvent } from '../../lib/http/event';
import { logger } from '../../lib/log';
import { ordersContext } from '../../lib/runtime';
import { apiEvent, callback, create, MERCHANT_AUTHORIZATION, order, putProduct as put, TEST_MERCHANT_TOKEN } from '../support/api';
import { paidCallback } from '../support/callbacks';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true });

async function everything() {
  const ctx = await ordersContext();
  const scan = async (table: string) => (await ctx.store.db.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  return { orders: await scan(stack.table), catalog: await scan(stack.catalogTable) };
}

type Route = [name: string, call: (authorization: string | undefined) => Promise<APIGatewayProxyStructuredResultV2>];

function withAuth(event: ApiEvent, authorization: string | undefined): ApiEvent {
  const headers = { ...event.headers };
  delete headers.authorization;
  return { ...event, headers: authorization === undefined ? headers : { ...headers, authorization } };
}

const ROUTES: Route[] = [
  [
    'PUT /merchant/products/{sku}',
    (auth) =>
      putProduct(
        withAuth(
          apiEvent({
            method: 'PUT',
            path: '/merchant/products/auth-sku',
            pathParameters: { sku: 'auth-sku' },
            body: JSON.stringify({ name: 'Sneaky', priceFen: 1 }),
          }),
          auth,
        ),
      ),
  ],
  ['GET /merchant/products', (auth) => listProducts(withAuth(apiEvent({ method: 'GET', path: '/merchant/products' }), auth))],
  [
    'POST /merchant/orders',
    (auth) =>
      createMerchantOrder(
        withAuth(
          apiEvent({
            method: 'POST',
            path: '/merchant/orders',
            body: JSON.stringify({ tradeType: 'NATIVE', totalFee: 1, description: 'sneaky' }),
          }),
          auth,
        ),
      ),
  ],
  [
    'GET /merchant/orders/{outTradeNo}',
    (auth) =>
      getMerchantOrder(
        withAuth(
          apiEvent({
            method: 'GET',
            path: '/merchant/orders/20261130abcdefghijABCDEFGHIJ',
            pathParameters: { outTradeNo: '20261130abcdefghijABCDEFGHIJ' },
          }),
          auth,
        ),
      ),
  ],
];

const BAD_AUTHORIZATION: Array<[string, string | undefined]> = [
  ['missing', undefined],
  ['empty', ''],
  ['the scheme alone', 'Bearer'],
  ['the scheme and a space', 'Bearer '],
  ['another scheme', `Basic ${Buffer.from(`merchant:${TEST_MERCHANT_TOKEN}`).toString('base64')}`],
  ['the token without a scheme', TEST_MERCHANT_TOKEN],
  ['a wrong token', 'Bearer wrong-merchant-token-0123456789'],
  ['a prefix of the right one', `Bearer ${TEST_MERCHANT_TOKEN.slice(0, -1)}`],
  ['the right one plus a character', `Bearer ${TEST_MERCHANT_TOKEN}x`],
  ['the right one case-changed', `Bearer ${TEST_MERCHANT_TOKEN.toUpperCase()}`],
  ['the right one with a space inside', `Bearer ${TEST_MERCHANT_TOKEN.slice(0, 5)} ${TEST_MERCHANT_TOKEN.slice(5)}`],
  ['the right one twice', `Bearer ${TEST_MERCHANT_TOKEN}, Bearer ${TEST_MERCHANT_TOKEN}`],
  ['very long', `Bearer ${'a'.repeat(100_000)}`],
  ['non-ASCII', 'Bearer 商户令牌商户令牌商户令牌商户令牌'],
  ['a control character', `Bearer ${TEST_MERCHANT_TOKEN}\u0000`],
];

describe('merchant routes answer 401 to any request without the merchant token, and change nothing', () => {
  it(`has at least 10 bad Authorization values (${BAD_AUTHORIZATION.length})`, () =>
    expect(BAD_AUTHORIZATION.length).toBeGreaterThanOrEqual(10));

  for (const [route, call] of ROUTES) {
    it.each(BAD_AUTHORIZATION)(`${route}: %s`, async (_name, authorization) => {
      const lines: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (lines.push(String(chunk)), true));
      const before = await everything();
      let result;
      try {
        result = await call(authorization);
      } finally {
        spy.mockRestore();
      }
      expect(result.statusCode).toBe(401);
      expect(result.headers?.['www-authenticate']).toMatch(/^Bearer realm="merchant"/);
      const body = JSON.parse(result.body as string);
      expect(body.error.code).toBe('UNAUTHORIZED');
      // Nothing of what was sent comes back or reaches a log.
      const sent = (authorization ?? '').replace(/^Bearer /i, '');
      if (sent.length >= 8) expect(result.body).not.toContain(sent.slice(0, 40));
      expect(lines.join('')).not.toContain(TEST_MERCHANT_TOKEN);
      expect(await everything()).toEqual(before);
    });
  }

  it('the right token passes on every route, in either case of "Bearer"', async () => {
    for (const [route, call] of ROUTES) {
      expect((await call(MERCHANT_AUTHORIZATION)).statusCode, route).not.toBe(401);
      expect((await call(`bearer ${TEST_MERCHANT_TOKEN}`)).statusCode, route).not.toBe(401);
    }
  });

  it('two tokens at once, for a rotation: both pass, and the old one fails once it is removed', async () => {
    const list = (token: string) => listProducts(apiEvent({ method: 'GET', path: '/merchant/products', authorization: `Bearer ${token}` }));
    vi.stubEnv('MERCHANT_API_TOKEN', `${TEST_MERCHANT_TOKEN}, next-merchant-token-9876543210`);
    try {
      expect((await list(TEST_MERCHANT_TOKEN)).statusCode).toBe(200);
      expect((await list('next-merchant-token-9876543210')).statusCode).toBe(200);
      vi.stubEnv('MERCHANT_API_TOKEN', 'next-merchant-token-9876543210');
      expect((await list(TEST_MERCHANT_TOKEN)).statusCode).toBe(401);
      expect((await list('next-merchant-token-9876543210')).statusCode).toBe(200);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('a weak configured token is a configuration error (503), never accepted', async () => {
    vi.stubEnv('MERCHANT_API_TOKEN', 'short');
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    try {
      const result = await listProducts(apiEvent({ method: 'GET', path: '/merchant/products', authorization: 'Bearer short' }));
      expect(result.statusCode).toBe(503);
      expect(JSON.stringify(logged.mock.calls)).not.toContain('"short"');
    } finally {
      logged.mockRestore();
      vi.unstubAllEnvs();
    }
  });
});

describe('the catalog', () => {
  it('PUT creates or replaces a product; GET lists every product, inactive ones too', async () => {
    const created = await put('cat-tea', { name: 'Tea', priceFen: 900 });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ sku: 'cat-tea', name: 'Tea', priceFen: 900, active: true });
    await put('cat-tea', { name: 'Green tea', priceFen: 950, active: false });
    const listed = JSON.parse(
      (await listProducts(apiEvent({ method: 'GET', path: '/merchant/products', authorization: MERCHANT_AUTHORIZATION }))).body as string,
    );
    const tea = listed.products.find((product: { sku: string }) => product.sku === 'cat-tea');
    expect(tea).toMatchObject({ sku: 'cat-tea', name: 'Green tea', priceFen: 950, active: false });
    expect(Date.parse(tea.updatedAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  const hostile: Array<[string, string, unknown, string]> = [
    ['price zero', 'cat-h', { name: 'x', priceFen: 0 }, 'priceFen'],
    ['price negative', 'cat-h', { name: 'x', priceFen: -1 }, 'priceFen'],
    ['price fractional', 'cat-h', { name: 'x', priceFen: 9.99 }, 'priceFen'],
    ['price a string', 'cat-h', { name: 'x', priceFen: '100' }, 'priceFen'],
    ['price huge', 'cat-h', { name: 'x', priceFen: 1e15 }, 'priceFen'],
    ['price missing', 'cat-h', { name: 'x' }, 'priceFen'],
    ['name missing', 'cat-h', { priceFen: 1 }, 'name'],
    ['name empty', 'cat-h', { name: '', priceFen: 1 }, 'name'],
    ['name of 41 characters', 'cat-h', { name: 'x'.repeat(41), priceFen: 1 }, 'name'],
    ['an emoji in the name', 'cat-h', { name: 'Tea 🍵', priceFen: 1 }, 'name'],
    ['a control character in the name', 'cat-h', { name: 'Te\u0007a', priceFen: 1 }, 'name'],
    ['U+FFFF in the name', 'cat-h', { name: 'Tea\uFFFF', priceFen: 1 }, 'name'],
    ['active not a boolean', 'cat-h', { name: 'x', priceFen: 1, active: 'yes' }, 'active'],
    ['an unknown field', 'cat-h', { name: 'x', priceFen: 1, stock: 5 }, 'stock'],
    ['a sku in the body', 'cat-h', { name: 'x', priceFen: 1, sku: 'other' }, 'sku'],
    ['a sku with a space', 'cat h', { name: 'x', priceFen: 1 }, 'sku'],
    ['a sku of 65 characters', 'x'.repeat(65), { name: 'x', priceFen: 1 }, 'sku'],
    ['a sku with a slash', 'a%2Fb', { name: 'x', priceFen: 1 }, 'sku'],
  ];
  it.each(hostile)('a hostile product, %s: 400 naming the field, nothing stored', async (_name, sku, body, field) => {
    const before = await everything();
    const answer = await put(sku, body);
    expect(answer.status, answer.raw).toBe(400);
    expect(answer.body.error.field).toBe(field);
    expect(await everything()).toEqual(before);
  });

  it('a body that is not an object, or not JSON: 400, nothing stored', async () => {
    const before = await everything();
    for (const raw of ['[]', '"tea"', 'null', '{"name":', '']) expect((await put('cat-h', raw)).status).toBe(400);
    expect(await everything()).toEqual(before);
  });
});

describe("the merchant's view of an order", () => {
  it('has everything the frontend view has, plus the description, app, openid, items and review flags', async () => {
    await put('view-cake', { name: 'Cake', priceFen: 3300 });
    const created = await order({
      tradeType: 'JSAPI',
      openid: 'oViewOpenid',
      attach: 'table 7',
      items: [{ sku: 'view-cake', quantity: 2 }],
    });
    expect(created.status, created.raw).toBe(201);
    const { outTradeNo } = created.body;
    // A second payment of the same order: recorded and flagged for a person to look at.
    await stack.sim.pay(outTradeNo);
    const paid = await (async () => {
      for (let i = 0; i < 100; i++) {
        const view = JSON.parse(
          (
            await getMerchantOrder(
              apiEvent({
                method: 'GET',
                path: `/merchant/orders/${outTradeNo}`,
                pathParameters: { outTradeNo },
                authorization: MERCHANT_AUTHORIZATION,
              }),
            )
          ).body as string,
        );
        if (view.status === 'PAID') return view;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error('never paid');
    })();
    await callback(paidCallback(outTradeNo, 6600, { transaction_id: '4200000000000000000000000042' }));
    const result = await getMerchantOrder(
      apiEvent({
        method: 'GET',
        path: `/merchant/orders/${outTradeNo}`,
        pathParameters: { outTradeNo },
        authorization: MERCHANT_AUTHORIZATION,
      }),
    );
    const view = JSON.parse(result.body as string);
    expect(view).toMatchObject({
      outTradeNo,
      status: 'PAID',
      totalFee: 6600,
      description: 'Cake ×2',
      appId: expect.any(String),
      openid: 'oViewOpenid',
      attach: 'table 7',
      items: [{ sku: 'view-cake', name: 'Cake', quantity: 2, unitPriceFen: 3300 }],
      transactionId: paid.transactionId,
    });
    expect(view.review).toEqual([expect.objectContaining({ reason: 'SECOND_PAYMENT', transactionId: '4200000000000000000000000042' })]);
    // The frontend's view of the same order stays impersonal.
    const { get } = await import('../support/api');
    const frontend = (await get(outTradeNo)).body;
    expect(frontend).not.toHaveProperty('openid');
    expect(frontend).not.toHaveProperty('review');
  });

  it('an unknown order is a 404, a malformed number a 400', async () => {
    const get = (outTradeNo: string) =>
      getMerchantOrder(
        apiEvent({
          method: 'GET',
          path: `/merchant/orders/${outTradeNo}`,
          pathParameters: { outTradeNo },
          authorization: MERCHANT_AUTHORIZATION,
        }),
      );
    expect((await get('20990101unknownOrder000000')).statusCode).toBe(404);
    expect((await get('bad no')).statusCode).toBe(400);
  });

  it('merchant orders of any amount keep the description the merchant gave', async () => {
    const created = await create({ tradeType: 'NATIVE', totalFee: 12345, description: 'Invoice 2026-118' });
    expect(created.body).toMatchObject({ totalFee: 12345, description: 'Invoice 2026-118' });
  });
});
