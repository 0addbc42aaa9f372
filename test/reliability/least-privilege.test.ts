import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { handler as createOrder } from '../../functions/createOrder';
import { handler as createMerchantOrder } from '../../functions/createMerchantOrder';
import { handler as getMerchantOrder } from '../../functions/getMerchantOrder';
import { handler as listProducts } from '../../functions/listProducts';
import { handler as putProduct } from '../../functions/putProduct';
import { handler as getReconciliation } from '../../functions/getReconciliation';
import { handler as reconcile } from '../../functions/reconcile';
import { handler as runReconciliation } from '../../functions/runReconciliation';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { handler as notify } from '../../functions/notify';
import { handler as queryOrder } from '../../functions/queryOrder';
import { handler as recoverOrdersHandler } from '../../functions/recoverOrders';
import { recoverOrders } from '../../lib/orders/recovery';
import type { OrdersContext } from '../../lib/orders/context';
import { catalogStore, orderStore, ordersContext } from '../../lib/runtime';
import { startTestStack, type TestStack } from '../support/stack';
import { apiEvent, MERCHANT_AUTHORIZATION } from '../support/api';
import { recordCommands, reportFigures } from './support';
import { paidCallback } from '../support/callbacks';
import { sleep } from '../support/eventually';

/**
 * test/infra checks the packaged roles against a list of grants and for wildcards. This checks the
 * other direction: that the list is what the code really does. Each handler runs every path it has
 * while its DynamoDB requests are recorded; its role in serverless.yml must allow each one and
 * nothing it never uses.
 */
type Statement = { Effect: string; Action: string[] | string; Resource: unknown };
type Role = { Properties: { Policies: Array<{ PolicyName: string; PolicyDocument: { Statement: Statement[] } }> } };
const service = parseYaml(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as {
  functions: Record<string, { role: string }>;
  resources: { Resources: Record<string, Role & { Type: string }> };
};

/** A role's DynamoDB grants as "Action on table" (orders) / "Action on catalog" / "Action on index/NAME". */
function dynamoGrants(functionName: string): string[] {
  const role = service.resources.Resources[service.functions[functionName]!.role]!;
  const grants: string[] = [];
  for (const statement of role.Properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement)) {
    // `${self:custom...}` statements (the API key parameter, read from SSM) are not DynamoDB grants.
    if (typeof statement !== 'object') continue;
    for (const action of [statement.Action].flat()) {
      if (!action.startsWith('dynamodb:')) continue;
      for (const resource of [statement.Resource].flat()) {
        const text = JSON.stringify(resource);
        const index = /\/index\/([A-Za-z0-9_.-]+)/.exec(text)?.[1];
        const table = text.includes('CatalogTable') ? 'catalog' : 'table';
        grants.push(`${action.slice('dynamodb:'.length)} on ${index ? `index/${index}` : table}`);
      }
    }
  }
  return [...new Set(grants)].sort();
}

let stack: TestStack;
let ctx: OrdersContext;
const used: Record<string, Set<string>> = {};

beforeAll(async () => {
  stack = await startTestStack();
  ctx = await ordersContext();
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
});
afterAll(async () => {
  reportFigures('least privilege', Object.fromEntries(Object.entries(used).map(([name, set]) => [name, [...set].sort()])));
  await stack?.close();
});

/** Runs `work` as the named function and records the DynamoDB requests it makes. */
async function as(functionName: string, work: () => Promise<unknown>) {
  const recorders = [recordCommands(ctx.store.db), recordCommands(catalogStore().db), recordCommands(orderStore().db)];
  try {
    await work();
  } finally {
    for (const recorder of recorders) recorder.stop();
  }
  used[functionName] ??= new Set();
  for (const { command, index, table } of recorders.flatMap((recorder) => recorder.commands)) {
    const on = index ? `index/${index}` : table === stack.catalogTable ? 'catalog' : 'table';
    used[functionName].add(`${command} on ${on}`);
  }
}

const merchant = { authorization: MERCHANT_AUTHORIZATION };

const post = (body: unknown) => createOrder(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify(body) }));
const postMerchant = (body: unknown) => createMerchantOrder(apiEvent({ method: 'POST', path: '/merchant/orders', body: JSON.stringify(body), ...merchant }));
const put = (sku: string, body: unknown) => putProduct(apiEvent({ method: 'PUT', path: `/merchant/products/${sku}`, pathParameters: { sku }, body: JSON.stringify(body), ...merchant }));
const getOrder = (outTradeNo: string) => queryOrder(apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } }));
const deliver = (xml: string) => notify(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: xml, contentType: 'text/xml' }));

describe('each function uses exactly the DynamoDB calls its role allows', () => {
  it('exercises every path of every function', async () => {
    const ids: string[] = [];
    await as('putProduct', async () => {
      await put('lp-coffee', { name: 'Coffee', priceFen: 100 });
      await put('lp-tea', { name: 'Tea', priceFen: 50, active: false });
    });
    await as('listProducts', () => listProducts(apiEvent({ method: 'GET', path: '/merchant/products', ...merchant })));
    await as('createOrder', async () => {
      for (const key of ['lp-1', 'lp-1', undefined, undefined, undefined]) {
        const result = await post({ tradeType: 'NATIVE', items: [{ sku: 'lp-coffee', quantity: 1 }], ...(key ? { idempotencyKey: key } : {}) });
        ids.push(JSON.parse(result.body as string).outTradeNo);
      }
      await post({ tradeType: 'NATIVE', items: [{ sku: 'lp-tea', quantity: 1 }] });
    });
    await as('createMerchantOrder', async () => {
      for (const key of ['lp-m', 'lp-m', undefined]) await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant', ...(key ? { idempotencyKey: key } : {}) });
    });
    await as('getMerchantOrder', async () => {
      for (const outTradeNo of [ids[0] as string, '20990101unknownOrder000000']) {
        await getMerchantOrder(apiEvent({ method: 'GET', path: `/merchant/orders/${outTradeNo}`, pathParameters: { outTradeNo }, ...merchant }));
      }
    });
    const [paidByNotify, , paidByQuery, paidByRecovery, closedByWechatPay] = ids as [string, string, string, string, string];
    await stack.sim.pay(paidByNotify);
    await stack.sim.pay(paidByQuery);
    await stack.sim.pay(paidByRecovery);
    await as('notify', async () => {
      const good = paidCallback(paidByNotify, 100, { transaction_id: (await stack.sim.order(paidByNotify)).transaction_id });
      await deliver(good);
      await deliver(good);
      await deliver(paidCallback(paidByNotify, 100, { transaction_id: '4200000000000000000000000009' }));
      await deliver(paidCallback(paidByRecovery, 1));
      await deliver(paidCallback('20990101unknownOrder000000', 100));
    });
    await as('queryOrder', async () => {
      await getOrder(paidByQuery);
      await getOrder(paidByNotify);
      await getOrder('20990101unknownOrder000000');
    });
    // Closed at WeChat Pay (e.g. from its merchant platform) while still PENDING here.
    await sleep(350);
    await ctx.wechatPay.closeOrder({ outTradeNo: closedByWechatPay }, { signType: 'HMAC-SHA256' });
    await as('recoverOrders', async () => {
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 10_000) }, { deadline: Date.now() + 10_000 });
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 31 * 60_000) }, { deadline: Date.now() + 10_000 });
      await recoverOrdersHandler({} as never);
    });
    // Payments whose callbacks were lost, found in the bills of yesterday (by the schedule) and of the
    // day before (asked for by the merchant); a report read back.
    const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);
    const lost: string[] = [];
    for (const n of [1, 2]) {
      const outTradeNo = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 77, description: 'lost' })).body as string).outTradeNo as string;
      await fetch(`${stack.emulator.url}/__sim/pay`, { method: 'POST', body: JSON.stringify({ out_trade_no: outTradeNo, time_end: `${day(n)}120000` }) });
      lost.push(outTradeNo);
    }
    await as('reconcile', () => reconcile({} as never));
    await as('runReconciliation', () => runReconciliation(apiEvent({ method: 'POST', path: '/merchant/reconciliations', body: JSON.stringify({ billDate: day(2) }), ...merchant })));
    await as('getReconciliation', () => getReconciliation(apiEvent({ method: 'GET', path: `/merchant/reconciliations/${day(2)}`, pathParameters: { billDate: day(2) }, ...merchant })));
    for (const outTradeNo of lost) expect((await ctx.store.get(outTradeNo))?.paidVia).toBe('reconciliation');
    expect((await ctx.store.get(paidByQuery))?.paidVia).toBe('query');
    expect((await ctx.store.get(paidByRecovery))?.paidVia).toBe('recovery');
    expect((await ctx.store.get(closedByWechatPay))?.status).toBe('CLOSED');
  });

  it.each(['createOrder', 'queryOrder', 'notify', 'recoverOrders', 'putProduct', 'listProducts', 'createMerchantOrder', 'getMerchantOrder', 'runReconciliation', 'getReconciliation', 'reconcile'])('%s: its role allows every call it made, and nothing more', (name) => {
    expect([...(used[name] ?? [])].sort()).toEqual(dynamoGrants(name));
  });

  it('no function scans the table or queries it outside the sparse pending index', () => {
    const all = Object.values(used).flatMap((set) => [...set]);
    // Listing the catalog scans the catalog table, which holds products only.
    expect(all.filter((call) => (call.startsWith('Scan') && call !== 'Scan on catalog') || call === 'Query on table')).toEqual([]);
    expect(used.reconcile).toContain('Query on index/paidByDay');
  });

  it('no function needs CloudWatch to publish metrics (they are EMF log lines)', () => {
    const text = JSON.stringify(service.resources.Resources);
    expect(text).not.toMatch(/cloudwatch:PutMetricData/);
  });
});
