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
import { handler as clearOutbox } from '../../functions/clearOutbox';
import { handler as miniProgramLogin } from '../../functions/miniProgramLogin';
import { handler as officialAccountLogin } from '../../functions/officialAccountLogin';
import { handler as jssdkConfig } from '../../functions/jssdkConfig';
import { identityContext } from '../../lib/identity-runtime';
import { TEST_MINIPROGRAM } from '../../emulator/test-apps';
import { simLogin } from '../support/identity';
import { handler as createRefund } from '../../functions/createRefund';
import { handler as getRefund } from '../../functions/getRefund';
import { handler as refundNotify } from '../../functions/refundNotify';
import { TEST_MERCHANT } from '../../emulator/test-merchant';
import { encryptedRefundNotification } from '../../lib/wechatpay/refund-testing';
import { recoverOrders } from '../../lib/orders/recovery';
import type { OrdersContext } from '../../lib/orders/context';
import { catalogStore, ordersContext, outboxStore, reportStore } from '../../lib/runtime';
import { FUNCTIONS } from '../support/functions';
import { startTestStack, TEST_PAGE_ORIGIN, type TestStack } from '../support/stack';
import { apiEvent, MERCHANT_AUTHORIZATION } from '../support/api';
import { recordCommands, reportFigures } from './support';
import { paidCallback } from '../support/callbacks';
import { sleep } from '../support/eventually';

/**
 * test/infra checks the packaged roles against a list of grants and for wildcards. This checks the
 * other direction: that the list is what the code really does. Each handler runs every path it has
 * while its DynamoDB and EventBridge requests are recorded; its role in serverless.yml must allow
 * each one and nothing it never uses.
 */
type Statement = { Effect: string; Action: string[] | string; Resource: unknown };
type Role = { Properties: { Policies: Array<{ PolicyName: string; PolicyDocument: { Statement: Statement[] } }> } };
const service = parseYaml(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as {
  functions: Record<string, { role: string }>;
  custom: Record<string, unknown>;
  resources: { Resources: Record<string, Role & { Type: string }> };
};

/** A role's statements, `${self:custom.NAME}` ones resolved from serverless.yml's custom section. */
function statementsOf(functionName: string): Statement[] {
  const role = service.resources.Resources[service.functions[functionName]!.role]!;
  return role.Properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement).map((statement) => {
    const custom = typeof statement === 'string' ? /^\$\{self:custom\.(\w+)\}$/.exec(statement)?.[1] : undefined;
    return custom ? (service.custom[custom] as Statement) : statement;
  });
}

/** A role's EventBridge grants as "Action on bus" (the stage's own bus) or "Action on <resource>". */
function eventsGrants(functionName: string): string[] {
  const grants: string[] = [];
  for (const statement of statementsOf(functionName)) {
    for (const action of [statement.Action].flat()) {
      if (!action.startsWith('events:')) continue;
      for (const resource of [statement.Resource].flat()) {
        const text = JSON.stringify(resource);
        grants.push(`${action.slice('events:'.length)} on ${text === JSON.stringify({ 'Fn::GetAtt': ['EventBus', 'Arn'] }) ? 'bus' : text}`);
      }
    }
  }
  return [...new Set(grants)].sort();
}

/** The partition keys a role's DynamoDB statements are limited to, or denied (`dynamodb:LeadingKeys`). */
function leadingKeysCondition(functionName: string, condition = 'ForAllValues:StringLike'): string[] {
  const role = service.resources.Resources[service.functions[functionName]!.role]!;
  const statements = role.Properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement) as Array<Statement & { Condition?: Record<string, Record<string, string[]>> }>;
  return statements.flatMap((statement) => (typeof statement === 'object' ? (statement.Condition?.[condition]?.['dynamodb:LeadingKeys'] ?? []) : []));
}

/** A role's DynamoDB grants as "Action on table" (orders) / "Action on catalog" / "Action on index/NAME". */
function dynamoGrants(functionName: string): string[] {
  const role = service.resources.Resources[service.functions[functionName]!.role]!;
  const grants: string[] = [];
  for (const statement of role.Properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement)) {
    // `${self:custom...}` statements (the API key parameter, read from SSM) are not DynamoDB grants,
    // nor is the token cache's Deny.
    if (typeof statement !== 'object' || statement.Effect !== 'Allow') continue;
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
const published: Record<string, Set<string>> = {};

beforeAll(async () => {
  // Events are confirmed by hand below (as clearOutbox), so that its calls are its own.
  stack = await startTestStack({ confirmEvents: false, refunds: true });
  ctx = await ordersContext();
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
});
afterAll(async () => {
  reportFigures('least privilege', Object.fromEntries(Object.entries(used).map(([name, set]) => [name, [...set, ...(published[name] ?? [])].sort()])));
  await stack?.close();
});

/** Runs `work` as the named function and records the DynamoDB and EventBridge requests it makes. */
async function as(functionName: string, work: () => Promise<unknown>) {
  const tokenCache = await identityContext().tokens();
  // clearOutbox has a client of its own (it needs no WeChat Pay settings); the others share the context's.
  const recorders = functionName === 'clearOutbox' ? [recordCommands(outboxStore().db)] : [recordCommands(ctx.store.db), recordCommands(catalogStore().db), recordCommands(reportStore().db), recordCommands(tokenCache.store.db)];
  const events = await ctx.events.client();
  const buses: string[] = [];
  const name = `record-events-${functionName}`;
  events.middlewareStack.add(
    (next, context) => async (args) => {
      const bus = (args.input as { Entries?: Array<{ EventBusName?: string }> }).Entries?.[0]?.EventBusName;
      buses.push(`${String(context.commandName).replace(/Command$/, '')} on ${bus === process.env.EVENT_BUS_NAME ? 'bus' : String(bus)}`);
      return next(args);
    },
    { step: 'initialize', name },
  );
  try {
    await work();
  } finally {
    for (const recorder of recorders) recorder.stop();
    events.middlewareStack.remove(name);
  }
  used[functionName] ??= new Set();
  published[functionName] ??= new Set();
  keys[functionName] ??= new Set();
  for (const { command, index, table, pk } of recorders.flatMap((recorder) => recorder.commands)) {
    const on = index ? `index/${index}` : table === stack.catalogTable ? 'catalog' : 'table';
    used[functionName].add(`${command} on ${on}`);
    if (pk !== undefined) keys[functionName].add(pk);
  }
  for (const call of buses) published[functionName].add(call);
}

/** The partition keys each function read or wrote, for the roles that allow only some keys. */
const keys: Record<string, Set<string>> = {};

const merchant = { authorization: MERCHANT_AUTHORIZATION };

const post = (body: unknown) => createOrder(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify(body) }));
const postMerchant = (body: unknown) => createMerchantOrder(apiEvent({ method: 'POST', path: '/merchant/orders', body: JSON.stringify(body), ...merchant }));
const put = (sku: string, body: unknown) => putProduct(apiEvent({ method: 'PUT', path: `/merchant/products/${sku}`, pathParameters: { sku }, body: JSON.stringify(body), ...merchant }));
const getOrder = (outTradeNo: string) => queryOrder(apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } }));
const deliver = (xml: string) => notify(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: xml, contentType: 'text/xml' }));
const postRefund = (outTradeNo: string, body: unknown) =>
  createRefund(apiEvent({ method: 'POST', path: `/merchant/orders/${outTradeNo}/refunds`, pathParameters: { outTradeNo }, body: JSON.stringify(body), ...merchant }));
const deliverRefund = (xml: string) => refundNotify(apiEvent({ method: 'POST', path: '/wechatpay/refund-notify', body: xml, contentType: 'text/xml' }));

/** A merchant order of 100 fen, paid and recorded (outside any function's recording). */
async function paidMerchantOrder(): Promise<{ outTradeNo: string; transactionId: string }> {
  const created = await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'refund' });
  const { outTradeNo } = JSON.parse(created.body as string) as { outTradeNo: string };
  await stack.sim.pay(outTradeNo);
  const transactionId = (await stack.sim.order(outTradeNo)).transaction_id as string;
  await deliver(paidCallback(outTradeNo, 100, { transaction_id: transactionId }));
  return { outTradeNo, transactionId };
}

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
      // Refused by WeChat Pay for good: FAILED, and its event.
      await createOrder(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify({ tradeType: 'NATIVE', items: [{ sku: 'lp-coffee', quantity: 1 }] }), sourceIp: 'not-an-ip' }));
    });
    await as('createMerchantOrder', async () => {
      for (const key of ['lp-m', 'lp-m', undefined]) await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant', ...(key ? { idempotencyKey: key } : {}) });
      await createMerchantOrder(apiEvent({ method: 'POST', path: '/merchant/orders', body: JSON.stringify({ tradeType: 'NATIVE', totalFee: 100, description: 'refused' }), sourceIp: 'not-an-ip', ...merchant }));
    });
    // Paid, and learnt by the merchant's server asking for it.
    const paidByMerchantQuery = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant' })).body as string).outTradeNo as string;
    await stack.sim.pay(paidByMerchantQuery);
    await as('getMerchantOrder', async () => {
      for (const outTradeNo of [ids[0] as string, paidByMerchantQuery, '20990101unknownOrder000000']) {
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
    // EventBridge hands every event back: the first of each, its guess right; a second, found gone; another source, ignored.
    await as('clearOutbox', async () => {
      for (const event of stack.events.events()) await clearOutbox(event);
      await clearOutbox(stack.events.events()[0]!);
      await clearOutbox({ source: 'aws.partner', detail: {} });
    });
    // Some events are left unconfirmed, for the sweep.
    const unconfirmed = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant' })).body as string).outTradeNo as string;
    await stack.sim.pay(unconfirmed);
    await deliver(paidCallback(unconfirmed, 100, { transaction_id: (await stack.sim.order(unconfirmed)).transaction_id }));
    // Refunds: made, repeated, refused (NOTENOUGH: 90 refunded in the merchant platform), over the amount, read, called back.
    const refunded = await paidMerchantOrder();
    const refusedOrder = await paidMerchantOrder();
    const platformRefunded = await paidMerchantOrder();
    await fetch(`${stack.emulator.url}/__sim/refund`, { method: 'POST', body: JSON.stringify({ out_trade_no: refusedOrder.outTradeNo, refund_fee: 90 }) });
    let accepted = '';
    await as('createRefund', async () => {
      const made = await postRefund(refunded.outTradeNo, { refundFee: 30, idempotencyKey: 'lp-refund-1' });
      accepted = (JSON.parse(made.body as string) as { outRefundNo: string }).outRefundNo;
      await postRefund(refunded.outTradeNo, { refundFee: 30, idempotencyKey: 'lp-refund-1' });
      await postRefund(refunded.outTradeNo, { refundFee: 71, idempotencyKey: 'lp-refund-2' });
      await postRefund(refusedOrder.outTradeNo, { refundFee: 50, idempotencyKey: 'lp-refund-3' });
      await postRefund('20990101unknownOrder000000', { refundFee: 1, idempotencyKey: 'lp-refund-4' });
    });
    await as('getRefund', async () => {
      await getRefund(apiEvent({ method: 'GET', path: '/', pathParameters: { outTradeNo: refunded.outTradeNo, outRefundNo: accepted }, ...merchant }));
      await getRefund(apiEvent({ method: 'GET', path: '/', pathParameters: { outTradeNo: refunded.outTradeNo, outRefundNo: 'Rnothere' }, ...merchant }));
    });
    const refundDocument = (order: { outTradeNo: string; transactionId: string }, outRefundNo: string, refundFee: string) =>
      encryptedRefundNotification({
        apiKey: TEST_MERCHANT.apiKey,
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        fields: { out_trade_no: order.outTradeNo, transaction_id: order.transactionId, out_refund_no: outRefundNo, total_fee: '100', refund_fee: refundFee },
      });
    await as('refundNotify', async () => {
      await deliverRefund(refundDocument(platformRefunded, 'Pplatform1', '40'));
      await deliverRefund(refundDocument(platformRefunded, 'Pplatform1', '40'));
      await deliverRefund(refundDocument({ outTradeNo: '20990101unknownOrder000000', transactionId: '4200000000000000000000000001' }, 'R1', '1'));
    });
    // A refund reserved whose call never reached WeChat Pay, for recovery to send again.
    const resent = await paidMerchantOrder();
    await stack.sim.faults({ systemError: { refund: 3 } });
    await postRefund(resent.outTradeNo, { refundFee: 10, idempotencyKey: 'lp-refund-5' });
    await stack.sim.faults({ systemError: { refund: 0 } });
    await sleep(100);

    // Closed at WeChat Pay (e.g. from its merchant platform) while still PENDING here.
    await sleep(350);
    await ctx.gatewayFor({ signType: 'HMAC-SHA256' }).closePayment(closedByWechatPay);
    await as('recoverOrders', async () => {
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 10_000) }, { deadline: Date.now() + 10_000 });
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 31 * 60_000) }, { deadline: Date.now() + 10_000 });
      await recoverOrdersHandler({} as never);
    });
    // Payments whose callbacks were lost, and refunds made in the merchant platform whose callbacks
    // were lost too, found in the bills of yesterday (by the schedule) and of the day before (asked
    // for by the merchant); a report read back.
    const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);
    const lost: string[] = [];
    for (const n of [1, 2]) {
      const outTradeNo = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 77, description: 'lost' })).body as string).outTradeNo as string;
      await fetch(`${stack.emulator.url}/__sim/pay`, { method: 'POST', body: JSON.stringify({ out_trade_no: outTradeNo, time_end: `${day(n)}120000` }) });
      await fetch(`${stack.emulator.url}/__sim/refund`, { method: 'POST', body: JSON.stringify({ out_trade_no: outTradeNo, refund_fee: 7, out_refund_no: `lp-platform-${n}`, refund_time: `${day(n)}150000` }) });
      lost.push(outTradeNo);
    }
    // Each day twice: the second run's report replaces the first's, whose page it deletes.
    await as('reconcile', async () => {
      for (let run = 0; run < 2; run++) await reconcile({} as never);
    });
    await as('runReconciliation', async () => {
      for (let run = 0; run < 2; run++) await runReconciliation(apiEvent({ method: 'POST', path: '/merchant/reconciliations', body: JSON.stringify({ billDate: day(2) }), ...merchant }));
    });
    await as('getReconciliation', () => getReconciliation(apiEvent({ method: 'GET', path: `/merchant/reconciliations/${day(2)}`, pathParameters: { billDate: day(2) }, ...merchant })));
    for (const [n, outTradeNo] of lost.entries()) {
      const order = await ctx.store.get(outTradeNo);
      expect(order?.paidVia).toBe('reconciliation');
      expect(order?.refunds?.[`lp-platform-${n + 1}`]?.status).toBe('SUCCESS');
    }
    // Payers' identity: logins (a good code and a used one), and JS-SDK configs: the first fetches
    // and stores the tokens under the lease, WeChat refusing the first token once marks it stale,
    // and a later config is served from memory.
    await as('miniProgramLogin', async () => {
      const { code } = await simLogin(stack.emulator.url, { appId: TEST_MINIPROGRAM.appId });
      for (let i = 0; i < 2; i += 1) await miniProgramLogin(apiEvent({ method: 'POST', path: '/auth/miniprogram', body: JSON.stringify({ code }) }));
    });
    await as('officialAccountLogin', async () => {
      const { code } = await simLogin(stack.emulator.url, { appId: TEST_MERCHANT.appId });
      await officialAccountLogin(apiEvent({ method: 'POST', path: '/auth/officialaccount', body: JSON.stringify({ code }) }));
    });
    await as('jssdkConfig', async () => {
      await stack.sim.faults({ platformErrors: { getticket: [40001] } });
      const page = { ...apiEvent({ method: 'GET', path: '/auth/jssdk-config' }), rawQueryString: `url=${encodeURIComponent(`${TEST_PAGE_ORIGIN}/pay`)}` };
      expect((await jssdkConfig(page)).statusCode).toBe(200);
      expect((await jssdkConfig(page)).statusCode).toBe(200);
    });
    expect((await ctx.store.get(paidByQuery))?.paidVia).toBe('query');
    expect((await ctx.store.get(paidByRecovery))?.paidVia).toBe('recovery');
    expect((await ctx.store.get(closedByWechatPay))?.status).toBe('CLOSED');
    // Recovery settled the accepted refund and sent the other again.
    await as('recoverOrders', async () => {
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 62 * 60_000) }, { deadline: Date.now() + 10_000 });
    });
    expect((await ctx.store.get(refunded.outTradeNo))?.refunds?.[accepted]?.status).toBe('SUCCESS');
    expect((await stack.sim.order(resent.outTradeNo)).refunds).toHaveLength(1);
  });

  it.each(FUNCTIONS)('%s: its role allows every call it made, and nothing more', (name) => {
    expect([...(used[name] ?? [])].sort()).toEqual(dynamoGrants(name));
    expect([...(published[name] ?? [])].sort()).toEqual(eventsGrants(name));
  });

  it('the recovery schedule published again what was left unconfirmed', () => {
    expect(published.recoverOrders).toContain('PutEvents on bus');
    expect(used.recoverOrders).toContain('Query on index/outboxByShard');
  });

  it("the JS-SDK config touches only the token cache's items, as its role's condition requires", () => {
    const condition = leadingKeysCondition('jssdkConfig');
    expect(condition).toEqual(['wechat-token#*', 'lease#*']);
    expect(keys.jssdkConfig?.size).toBeGreaterThan(0);
    for (const pk of keys.jssdkConfig ?? []) expect(condition.some((pattern) => pk.startsWith(pattern.slice(0, -1))), pk).toBe(true);
  });

  it("no other function touches the token cache's items, which their roles deny them (only the JS-SDK config's own keys begin wechat-token# or lease#)", () => {
    const cacheKeys = leadingKeysCondition('jssdkConfig');
    const isCacheKey = (pk: string) => cacheKeys.some((pattern) => pk.startsWith(pattern.slice(0, -1)));
    for (const name of FUNCTIONS.filter((other) => other !== 'jssdkConfig')) {
      const touched = [...(keys[name] ?? [])];
      expect(touched.filter(isCacheKey), name).toEqual([]);
      // Every function on the orders table is denied exactly the JS-SDK config's keys.
      const onTable = dynamoGrants(name).some((grant) => grant.endsWith(' on table'));
      expect(leadingKeysCondition(name, 'ForAnyValue:StringLike'), name).toEqual(onTable ? cacheKeys : []);
    }
    // The orders and records the run wrote and read, under their own keys.
    expect([...(keys.createOrder ?? [])].some((pk) => pk.startsWith('idempotency#'))).toBe(true);
    expect([...(keys.createRefund ?? [])].some((pk) => pk.startsWith('refund#'))).toBe(true);
  });

  it('no function scans the table or queries it outside its sparse indexes (pending orders, open refunds, payments by day, refund requests by day, unpublished events)', () => {
    const all = Object.values(used).flatMap((set) => [...set]);
    // Listing the catalog scans the catalog table, which holds products only.
    expect(all.filter((call) => (call.startsWith('Scan') && call !== 'Scan on catalog') || call === 'Query on table')).toEqual([]);
    expect(used.reconcile).toContain('Query on index/paidByDay');
    expect(used.reconcile).toContain('Query on index/refundsByRequestDay');
    expect([...new Set(all.filter((call) => call.startsWith('Query')))].sort()).toEqual([
      'Query on index/openRefundsByShard',
      'Query on index/outboxByShard',
      'Query on index/paidByDay',
      'Query on index/pendingByShard',
      'Query on index/refundsByRequestDay',
    ]);
  });

  it('no function needs CloudWatch to publish metrics (they are EMF log lines)', () => {
    const text = JSON.stringify(service.resources.Resources);
    expect(text).not.toMatch(/cloudwatch:PutMetricData/);
  });
});
