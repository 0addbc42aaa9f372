/**
 * POST /orders: a frontend orders catalog items; the backend takes every amount from the catalog.
 */
import { describe, expect, it } from 'vitest';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { MAX_ORDER_FEN } from '../../lib/catalog/product';
import { ordersContext } from '../../lib/runtime';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { order, putProduct } from '../support/api';
import { bearer, sessionToken } from '../support/identity';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true });

async function stored(outTradeNo: string) {
  return (await ordersContext()).store.get(outTradeNo);
}

async function ordersTableItems() {
  const ctx = await ordersContext();
  return (await ctx.store.db.send(new ScanCommand({ TableName: stack.table, ConsistentRead: true }))).Items ?? [];
}

async function catalogItems() {
  const ctx = await ordersContext();
  return (await ctx.store.db.send(new ScanCommand({ TableName: stack.catalogTable, ConsistentRead: true }))).Items ?? [];
}

describe('a frontend orders by items; the catalog sets the amount', () => {
  it('the amount and description come from the catalog, and the order keeps its lines at their prices', async () => {
    await putProduct('fe-latte', { name: 'Latte', priceFen: 2800 });
    await putProduct('fe-bun', { name: 'Bun', priceFen: 650 });
    const created = await order({
      tradeType: 'NATIVE',
      items: [
        { sku: 'fe-latte', quantity: 2 },
        { sku: 'fe-bun', quantity: 1 },
      ],
    });
    expect(created.status, created.raw).toBe(201);
    expect(created.body).toMatchObject({ totalFee: 2 * 2800 + 650, description: 'Latte ×2, Bun', status: 'PENDING' });
    const order0 = await stored(created.body.outTradeNo);
    expect(order0?.items).toEqual([
      { sku: 'fe-latte', name: 'Latte', quantity: 2, unitPriceFen: 2800 },
      { sku: 'fe-bun', name: 'Bun', quantity: 1, unitPriceFen: 650 },
    ]);
    expect(order0?.unifiedOrder).toMatchObject({ total_fee: '6250', body: 'Latte ×2, Bun' });
    // WeChat Pay was asked for exactly that amount.
    expect((await stack.sim.order(created.body.outTradeNo)).total_fee).toBe(6250);
  });

  it.each(['totalFee', 'description'])('a frontend that sends %s is refused with a 400 naming it, and nothing is stored', async (field) => {
    await putProduct('fe-any', { name: 'Any', priceFen: 100 });
    const before = await ordersTableItems();
    const answer = await order({
      tradeType: 'NATIVE',
      items: [{ sku: 'fe-any', quantity: 1 }],
      [field]: field === 'totalFee' ? 1 : 'cheap',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe(field);
    expect(answer.body.error.message).toMatch(/POST \/merchant\/orders/);
    expect(await ordersTableItems()).toEqual(before);
  });

  it("the client IP comes from the request context and the openid from the payer's session token", async () => {
    await putProduct('fe-claim', { name: 'Claim', priceFen: 1 });
    const created = await order(
      { tradeType: 'JSAPI', items: [{ sku: 'fe-claim', quantity: 1 }], openid: 'o-from-body' },
      { sourceIp: '198.51.100.23', authorization: bearer(await sessionToken(TEST_MERCHANT.appId, 'o-from-token')) },
    );
    expect(created.status).toBe(201);
    const order0 = await stored(created.body.outTradeNo);
    expect(order0?.unifiedOrder.spbill_create_ip).toBe('198.51.100.23');
    expect(order0?.unifiedOrder.openid).toBe('o-from-token');
  });
});

describe('a price change never changes an order already made', () => {
  it('the order keeps its amount, lines and unifiedorder parameters; an idempotent repeat returns the original order', async () => {
    await putProduct('fe-change', { name: 'Changing', priceFen: 500 });
    const request = { tradeType: 'NATIVE', items: [{ sku: 'fe-change', quantity: 3 }], idempotencyKey: 'price-change-1' };
    const first = await order(request);
    const before = await stored(first.body.outTradeNo);
    await putProduct('fe-change', { name: 'Changed', priceFen: 900 });

    const again = await order(request);
    expect(again.status).toBe(200);
    expect(again.body.outTradeNo).toBe(first.body.outTradeNo);
    expect(again.body.totalFee).toBe(1500);
    const after = await stored(first.body.outTradeNo);
    expect(after?.totalFee).toBe(1500);
    expect(after?.items).toEqual(before?.items);
    expect(after?.unifiedOrder).toEqual(before?.unifiedOrder);
    // A new order is made at the new price.
    const fresh = await order({ ...request, idempotencyKey: 'price-change-2' });
    expect(fresh.body).toMatchObject({ totalFee: 2700, description: 'Changed ×3' });
  });

  it('50 orders racing a price change each carry one of the two prices, never a mix', async () => {
    await putProduct('fe-race', { name: 'Race', priceFen: 300 });
    const orders = Array.from({ length: 50 }, () => order({ tradeType: 'APP', items: [{ sku: 'fe-race', quantity: 2 }] }));
    const change = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await putProduct('fe-race', { name: 'Race', priceFen: 400 });
    })();
    const answers = await Promise.all(orders);
    await change;
    const seen = new Set<number>();
    for (const answer of answers) {
      expect(answer.status, answer.raw).toBe(201);
      const order0 = await stored(answer.body.outTradeNo);
      const unit = order0?.items?.[0]?.unitPriceFen as number;
      expect([300, 400]).toContain(unit);
      expect(order0?.totalFee).toBe(unit * 2);
      expect(order0?.unifiedOrder.total_fee).toBe(String(unit * 2));
      expect(answer.body.totalFee).toBe(unit * 2);
      seen.add(unit);
    }
    expect((await catalogItems()).find((item) => item.sku === 'fe-race')?.priceFen).toBe(400);
    expect(seen.size).toBeGreaterThanOrEqual(1);
  });
});

describe(`hostile item bodies: a 400 naming the field, nothing stored, never a 5xx`, () => {
  const cases: Array<[string, unknown, string]> = [
    ['no items', { tradeType: 'NATIVE' }, 'items'],
    ['items not a list', { tradeType: 'NATIVE', items: { sku: 'fe-h', quantity: 1 } }, 'items'],
    ['no item', { tradeType: 'NATIVE', items: [] }, 'items'],
    ['21 lines', { tradeType: 'NATIVE', items: Array.from({ length: 21 }, (_, i) => ({ sku: `fe-h${i}`, quantity: 1 })) }, 'items'],
    ['quantity zero', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 0 }] }, 'items.0.quantity'],
    ['quantity negative', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: -2 }] }, 'items.0.quantity'],
    ['quantity fractional', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1.5 }] }, 'items.0.quantity'],
    ['quantity a string', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: '2' }] }, 'items.0.quantity'],
    ['quantity huge', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1e9 }] }, 'items.0.quantity'],
    ['quantity 1000', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1000 }] }, 'items.0.quantity'],
    ['quantity missing', { tradeType: 'NATIVE', items: [{ sku: 'fe-h' }] }, 'items.0.quantity'],
    ['quantity null', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: null }] }, 'items.0.quantity'],
    ['sku missing', { tradeType: 'NATIVE', items: [{ quantity: 1 }] }, 'items.0.sku'],
    ['sku empty', { tradeType: 'NATIVE', items: [{ sku: '', quantity: 1 }] }, 'items.0.sku'],
    ['sku with a slash', { tradeType: 'NATIVE', items: [{ sku: 'a/b', quantity: 1 }] }, 'items.0.sku'],
    ['sku too long', { tradeType: 'NATIVE', items: [{ sku: 'x'.repeat(65), quantity: 1 }] }, 'items.0.sku'],
    ['sku a number', { tradeType: 'NATIVE', items: [{ sku: 42, quantity: 1 }] }, 'items.0.sku'],
    ['unknown sku', { tradeType: 'NATIVE', items: [{ sku: 'fe-nowhere', quantity: 1 }] }, 'items.0.sku'],
    ['inactive sku', { tradeType: 'NATIVE', items: [{ sku: 'fe-h-off', quantity: 1 }] }, 'items.0.sku'],
    [
      'second line unknown',
      {
        tradeType: 'NATIVE',
        items: [
          { sku: 'fe-h', quantity: 1 },
          { sku: 'fe-nowhere', quantity: 1 },
        ],
      },
      'items.1.sku',
    ],
    [
      'sku twice',
      {
        tradeType: 'NATIVE',
        items: [
          { sku: 'fe-h', quantity: 1 },
          { sku: 'fe-h', quantity: 2 },
        ],
      },
      'items.1.sku',
    ],
    ['a price in an item', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1, priceFen: 1 }] }, 'items.0.priceFen'],
    ['a unit price in an item', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1, unitPriceFen: 1 }] }, 'items.0.unitPriceFen'],
    ['a name in an item', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1, name: 'free' }] }, 'items.0.name'],
    ['totalFee beside items', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1 }], totalFee: 1 }, 'totalFee'],
    ['description beside items', { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1 }], description: 'x' }, 'description'],
    [
      'a total past the maximum',
      {
        tradeType: 'NATIVE',
        items: [
          { sku: 'fe-h-dear', quantity: 999 },
          { sku: 'fe-h-dear2', quantity: 999 },
        ],
      },
      'items',
    ],
    ['an item that is a string', { tradeType: 'NATIVE', items: ['fe-h'] }, 'items.0'],
    ['an item that is null', { tradeType: 'NATIVE', items: [null] }, 'items.0'],
    ['JSAPI without openid', { tradeType: 'JSAPI', items: [{ sku: 'fe-h', quantity: 1 }] }, 'openid'],
    [
      'an attach forging a field boundary',
      { tradeType: 'NATIVE', items: [{ sku: 'fe-h', quantity: 1 }], attach: 'a&total_fee=1' },
      'attach',
    ],
  ];

  it('has at least 30 cases', () => expect(cases.length).toBeGreaterThanOrEqual(30));

  it.each(cases)('%s', async (_name, body, field) => {
    await putProduct('fe-h', { name: 'Hostile', priceFen: 100 });
    await putProduct('fe-h-off', { name: 'Off', priceFen: 100, active: false });
    await putProduct('fe-h-dear', { name: 'Dear', priceFen: MAX_ORDER_FEN / 1000 });
    await putProduct('fe-h-dear2', { name: 'Dear too', priceFen: MAX_ORDER_FEN / 1000 });
    const before = await ordersTableItems();
    const answer = await order(body);
    expect(answer.status, answer.raw).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    expect(answer.body.error.field).toBe(field);
    expect(answer.body.error.message).toContain(field);
    expect(await ordersTableItems()).toEqual(before);
  });
});
