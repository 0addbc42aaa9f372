import { clearCaches } from '@aws-lambda-powertools/parameters';
import { DEFAULT_PROVIDERS } from '@aws-lambda-powertools/parameters/base';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { SSMClient } from '@aws-sdk/client-ssm';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
import { handler as recoverOrders } from '../../functions/recoverOrders';
import { handler as clearOutbox } from '../../functions/clearOutbox';
import { handler as miniProgramLogin } from '../../functions/miniProgramLogin';
import { handler as officialAccountLogin } from '../../functions/officialAccountLogin';
import { handler as jssdkConfig } from '../../functions/jssdkConfig';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import { bearer, sessionToken, simLogin } from '../support/identity';
import { handler as createRefund } from '../../functions/createRefund';
import { handler as getRefund } from '../../functions/getRefund';
import { handler as refundNotify } from '../../functions/refundNotify';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import type { OrdersContext } from '../../lib/orders/context';
import { ordersContext } from '../../lib/runtime';
import { LOCAL_SESSION_KEY } from '../../dev/local/session-key';
import { readTableProperties } from '../../dev/local/tables';
import { FUNCTIONS, type FunctionName } from '../support/functions';
import { startTestStack, TEST_PAGE_ORIGIN, type TestStack } from '../support/stack';
import { apiEvent, MERCHANT_AUTHORIZATION, TEST_MERCHANT_TOKEN } from '../support/api';
import {
  recordClient,
  recordedCalls,
  resetRecording,
  runAs,
  setHashKeys,
  unattributedCalls,
  type RecordedCall,
} from '../support/aws-calls';
import { checkFunction, describeCall, stageFacts, tableArn, type FunctionReport } from '../support/least-privilege';
import { DEV, PROD, PROD_FROM_ENVIRONMENT, sharedPackage, type PackageRequest, type Template } from '../support/packaging';
import { reportFigures } from './support';
import { paidCallback } from '../support/callbacks';
import { sleep } from '../support/eventually';

/**
 * Least privilege, proven: each function runs every path it has, as a cold container of its own
 * (its modules loaded afresh, its settings read from SSM), while a middleware on every SDK client it
 * builds records each AWS call it makes (test/support/aws-calls.ts): the action, the resource, and
 * for DynamoDB the partition keys. Then each call is evaluated against the function's role in the
 * packaged templates of dev and of two prods (as docs/go-live.md deploys it, and set through the
 * deploying environment with several apps) by an IAM policy simulator, conditions included
 * (test/support/least-privilege.ts): every call must be allowed, every grant of the role must allow
 * one of them, and every call of the never-list must be denied.
 */

// Every DynamoDB and EventBridge client the product builds, through the two places that build them.
vi.mock('../../lib/store/dynamo', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../lib/store/dynamo')>();
  const { recordClient: record } = await import('../support/aws-calls');
  return { ...original, createDocumentClient: (endpoint?: string) => record(original.createDocumentClient(endpoint), 'dynamodb') };
});
vi.mock('../../lib/events/eventbridge-client', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../lib/events/eventbridge-client')>();
  const { recordClient: record } = await import('../support/aws-calls');
  return {
    loadEventBridge: async () => {
      const loaded = await original.loadEventBridge();
      class RecordedEventBridgeClient extends loaded.EventBridgeClient {
        constructor(...config: ConstructorParameters<typeof loaded.EventBridgeClient>) {
          super(...config);
          record(this, 'events');
        }
      }
      return { ...loaded, EventBridgeClient: RecordedEventBridgeClient };
    },
  };
});

/** The handlers as this file loaded them, for setting things up outside any function's recording. */
const LOADED = {
  createOrder,
  createMerchantOrder,
  getMerchantOrder,
  listProducts,
  putProduct,
  getReconciliation,
  reconcile,
  runReconciliation,
  notify,
  queryOrder,
  recoverOrders,
  clearOutbox,
  miniProgramLogin,
  officialAccountLogin,
  jssdkConfig,
  createRefund,
  getRefund,
  refundNotify,
} satisfies Record<FunctionName, unknown>;
type Handlers = typeof LOADED;

/** Each function's module, loaded afresh: a cold container. */
const LOADERS: { [N in FunctionName]: () => Promise<{ handler: Handlers[N] }> } = {
  createOrder: () => import('../../functions/createOrder'),
  createMerchantOrder: () => import('../../functions/createMerchantOrder'),
  getMerchantOrder: () => import('../../functions/getMerchantOrder'),
  listProducts: () => import('../../functions/listProducts'),
  putProduct: () => import('../../functions/putProduct'),
  getReconciliation: () => import('../../functions/getReconciliation'),
  reconcile: () => import('../../functions/reconcile'),
  runReconciliation: () => import('../../functions/runReconciliation'),
  notify: () => import('../../functions/notify'),
  queryOrder: () => import('../../functions/queryOrder'),
  recoverOrders: () => import('../../functions/recoverOrders'),
  clearOutbox: () => import('../../functions/clearOutbox'),
  miniProgramLogin: () => import('../../functions/miniProgramLogin'),
  officialAccountLogin: () => import('../../functions/officialAccountLogin'),
  jssdkConfig: () => import('../../functions/jssdkConfig'),
  createRefund: () => import('../../functions/createRefund'),
  getRefund: () => import('../../functions/getRefund'),
  refundNotify: () => import('../../functions/refundNotify'),
};

/** The handlers of the function whose work is running (`as`), loaded afresh for it. */
const current: Partial<Handlers> = {};

/** The handler of `name`: the cold container's while `as(name, ...)` runs, else the one this file loaded. */
function handler<N extends FunctionName>(name: N): Handlers[N] {
  return (current[name] ?? LOADED[name]) as Handlers[N];
}

/**
 * The SSM parameters of the run, as docs/go-live.md stores them: the functions read every secret from
 * SSM, as deployed. Their names are the test's; the check translates them to each stage's through
 * the setting that names them.
 */
const PARAMETERS = {
  WECHATPAY_API_KEY_PARAM: '/wechatpay/test/api-key',
  MERCHANT_API_TOKENS_PARAM: '/wechatpay/test/merchant-tokens',
  WECHATPAY_CERT_PARAM: '/wechatpay/test/client-cert',
  SESSION_KEY_PARAM: '/wechatpay/test/session-key',
};
const APP_SECRET_PARAMS: Record<string, string> = {
  officialaccount: '/wechatpay/test/app-secret',
  miniprogram: '/wechatpay/test/mini-program-secret',
};

/** An SSM client that answers GetParameter from `values` (no network), recorded like the others. */
function parameterStore(values: Record<string, string>): SSMClient {
  const client = recordClient(
    new SSMClient({ region: 'ap-southeast-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    'ssm',
  );
  client.middlewareStack.add(
    () => async (args) => {
      const name = (args.input as { Name?: string }).Name ?? '';
      if (!(name in values))
        throw Object.assign(new Error(`ParameterNotFound: ${name}`), {
          name: 'ParameterNotFound',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
        });
      return {
        output: { Parameter: { Name: name, Type: 'SecureString', Value: values[name], Version: 1 }, $metadata: { httpStatusCode: 200 } },
        response: {},
      } as never;
    },
    { step: 'initialize', name: 'answer-from-test-parameters', priority: 'low' },
  );
  return client;
}

let stack: TestStack;
let ctx: OrdersContext;
/** The environment the functions ran with: how the check tells which setting named each resource. */
let env: Record<string, string | undefined>;

beforeAll(async () => {
  // Events are confirmed by hand below (as clearOutbox), so that its calls are its own.
  stack = await startTestStack({ confirmEvents: false, refunds: true });
  const hashKeys: Record<string, Record<string, unknown>> = {
    [stack.table]: readTableProperties('OrdersTable'),
    [stack.catalogTable]: readTableProperties('CatalogTable'),
  };
  setHashKeys((table, index) => {
    const properties = hashKeys[table] as
      { KeySchema: KeySchema; GlobalSecondaryIndexes?: Array<{ IndexName: string; KeySchema: KeySchema }> } | undefined;
    const schema = index
      ? properties?.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === index)?.KeySchema
      : properties?.KeySchema;
    return schema?.find((key) => key.KeyType === 'HASH')?.AttributeName;
  });
  // Every secret from SSM, none from the local settings.
  const localSecrets = JSON.parse(process.env.WECHAT_APP_SECRETS!) as Record<string, string>;
  const apps = (JSON.parse(process.env.WECHAT_APPS!) as Array<{ appId: string; kind: string }>).map((app) => ({
    ...app,
    secretParam: APP_SECRET_PARAMS[app.kind]!,
  }));
  const values: Record<string, string> = {
    [PARAMETERS.WECHATPAY_API_KEY_PARAM]: TEST_MERCHANT.apiKey,
    [PARAMETERS.MERCHANT_API_TOKENS_PARAM]: TEST_MERCHANT_TOKEN,
    [PARAMETERS.WECHATPAY_CERT_PARAM]: process.env.WECHATPAY_CLIENT_CERT_PEM!,
    [PARAMETERS.SESSION_KEY_PARAM]: LOCAL_SESSION_KEY,
    ...Object.fromEntries(apps.map((app) => [app.secretParam, localSecrets[app.appId]!])),
  };
  for (const name of ['WECHATPAY_API_KEY', 'MERCHANT_API_TOKEN', 'WECHATPAY_CLIENT_CERT_PEM', 'SESSION_KEY', 'WECHAT_APP_SECRETS'])
    delete process.env[name];
  Object.assign(process.env, PARAMETERS, { WECHAT_APPS: JSON.stringify(apps) });
  DEFAULT_PROVIDERS.ssm = new SSMProvider({ awsSdkV3Client: parameterStore(values) });
  env = { ...process.env };
  resetRecording();
  ctx = await ordersContext();
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
}, 60_000);
afterAll(async () => {
  delete DEFAULT_PROVIDERS.ssm;
  clearCaches();
  await stack?.close();
});

type KeySchema = Array<{ AttributeName: string; KeyType: string }>;

/**
 * Runs `work` as the named function, in a cold container: its modules loaded afresh (vi.resetModules)
 * and SSM's cache emptied, so that it reads each setting it needs as a new container does. Every AWS
 * call made while it runs is recorded as this function's.
 */
async function as(name: FunctionName, work: () => Promise<unknown>) {
  vi.resetModules();
  clearCaches();
  await runAs(name, async () => {
    (current as Record<string, unknown>)[name] = (await LOADERS[name]()).handler;
    try {
      await work();
    } finally {
      delete current[name];
    }
  });
}

/** recoverOrders' work as the schedule's function does it, in its container's modules, at `now`. */
async function recoverAt(now: () => Date) {
  const [{ recoverOrders: recover }, runtime] = await Promise.all([import('../../lib/orders/recovery'), import('../../lib/runtime')]);
  await recover({ ...(await runtime.ordersContext()), now }, { deadline: Date.now() + 10_000 });
}

const merchant = { authorization: MERCHANT_AUTHORIZATION };

const post = (body: unknown) => handler('createOrder')(apiEvent({ method: 'POST', path: '/orders', body: JSON.stringify(body) }));
const postMerchant = (body: unknown) =>
  handler('createMerchantOrder')(apiEvent({ method: 'POST', path: '/merchant/orders', body: JSON.stringify(body), ...merchant }));
const put = (sku: string, body: unknown) =>
  handler('putProduct')(
    apiEvent({ method: 'PUT', path: `/merchant/products/${sku}`, pathParameters: { sku }, body: JSON.stringify(body), ...merchant }),
  );
const getOrder = (outTradeNo: string) =>
  handler('queryOrder')(apiEvent({ method: 'GET', path: `/orders/${outTradeNo}`, pathParameters: { outTradeNo } }));
const deliver = (xml: string) =>
  handler('notify')(apiEvent({ method: 'POST', path: '/wechatpay/notify', body: xml, contentType: 'text/xml' }));
const postRefund = (outTradeNo: string, body: unknown) =>
  handler('createRefund')(
    apiEvent({
      method: 'POST',
      path: `/merchant/orders/${outTradeNo}/refunds`,
      pathParameters: { outTradeNo },
      body: JSON.stringify(body),
      ...merchant,
    }),
  );
const deliverRefund = (xml: string) =>
  handler('refundNotify')(apiEvent({ method: 'POST', path: '/wechatpay/refund-notify', body: xml, contentType: 'text/xml' }));

/** A merchant order of 100 fen, paid and recorded (outside any function's recording). */
async function paidMerchantOrder(): Promise<{ outTradeNo: string; transactionId: string }> {
  const created = await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'refund' });
  const { outTradeNo } = JSON.parse(created.body as string) as { outTradeNo: string };
  await stack.sim.pay(outTradeNo);
  const transactionId = (await stack.sim.order(outTradeNo)).transaction_id as string;
  await deliver(paidCallback(outTradeNo, 100, { transaction_id: transactionId }));
  return { outTradeNo, transactionId };
}

/** Each function's recorded calls. */
const callsOf = (name: FunctionName): RecordedCall[] => recordedCalls().filter((call) => call.fn === name);
/** A function's calls as "Action on table/index/parameter/bus", for the readable checks below. */
function summary(name: FunctionName): string[] {
  const where = (call: RecordedCall) => {
    const target = call.target;
    if (target.kind === 'table') return target.index ? `index/${target.index}` : target.table === stack.table ? 'table' : 'catalog';
    if (target.kind === 'bus') return target.name === env.EVENT_BUS_NAME ? 'bus' : `bus ${target.name}`;
    return target.name;
  };
  return [...new Set(callsOf(name).map((call) => `${call.action.split(':')[1]} on ${where(call)}`))].sort();
}

describe('each function, run on every path, makes the calls its role allows and no other', () => {
  it('exercises every path of every function', async () => {
    const ids: string[] = [];
    await as('putProduct', async () => {
      await put('lp-coffee', { name: 'Coffee', priceFen: 100 });
      await put('lp-tea', { name: 'Tea', priceFen: 50, active: false });
    });
    await as('listProducts', () => handler('listProducts')(apiEvent({ method: 'GET', path: '/merchant/products', ...merchant })));
    await as('createOrder', async () => {
      for (const key of ['lp-1', 'lp-1', undefined, undefined, undefined]) {
        const result = await post({
          tradeType: 'NATIVE',
          items: [{ sku: 'lp-coffee', quantity: 1 }],
          ...(key ? { idempotencyKey: key } : {}),
        });
        ids.push(JSON.parse(result.body as string).outTradeNo);
      }
      await post({ tradeType: 'NATIVE', items: [{ sku: 'lp-tea', quantity: 1 }] });
      // A payer's JSAPI order, the openid from their session token (checked with the session key).
      const paying = await handler('createOrder')(
        apiEvent({
          method: 'POST',
          path: '/orders',
          body: JSON.stringify({ tradeType: 'JSAPI', items: [{ sku: 'lp-coffee', quantity: 1 }] }),
          authorization: bearer(await sessionToken(TEST_MERCHANT.appId, 'o-least-privilege')),
        }),
      );
      expect(paying.statusCode).toBe(201);
      // Refused by WeChat Pay for good: FAILED, and its event.
      await handler('createOrder')(
        apiEvent({
          method: 'POST',
          path: '/orders',
          body: JSON.stringify({ tradeType: 'NATIVE', items: [{ sku: 'lp-coffee', quantity: 1 }] }),
          sourceIp: 'not-an-ip',
        }),
      );
    });
    await as('createMerchantOrder', async () => {
      for (const key of ['lp-m', 'lp-m', undefined])
        await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant', ...(key ? { idempotencyKey: key } : {}) });
      await handler('createMerchantOrder')(
        apiEvent({
          method: 'POST',
          path: '/merchant/orders',
          body: JSON.stringify({ tradeType: 'NATIVE', totalFee: 100, description: 'refused' }),
          sourceIp: 'not-an-ip',
          ...merchant,
        }),
      );
    });
    // Paid, and learnt by the merchant's server asking for it.
    const paidByMerchantQuery = JSON.parse(
      (await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant' })).body as string,
    ).outTradeNo as string;
    await stack.sim.pay(paidByMerchantQuery);
    await as('getMerchantOrder', async () => {
      for (const outTradeNo of [ids[0] as string, paidByMerchantQuery, '20990101unknownOrder000000']) {
        await handler('getMerchantOrder')(
          apiEvent({ method: 'GET', path: `/merchant/orders/${outTradeNo}`, pathParameters: { outTradeNo }, ...merchant }),
        );
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
      for (const event of stack.events.events()) await handler('clearOutbox')(event);
      await handler('clearOutbox')(stack.events.events()[0]!);
      await handler('clearOutbox')({ source: 'aws.partner', detail: {} });
    });
    // Some events are left unconfirmed, for the sweep.
    const unconfirmed = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 100, description: 'merchant' })).body as string)
      .outTradeNo as string;
    await stack.sim.pay(unconfirmed);
    await deliver(paidCallback(unconfirmed, 100, { transaction_id: (await stack.sim.order(unconfirmed)).transaction_id }));
    // Refunds: made, repeated, refused (NOTENOUGH: 90 refunded in the merchant platform), over the amount, read, called back.
    const refunded = await paidMerchantOrder();
    const refusedOrder = await paidMerchantOrder();
    const platformRefunded = await paidMerchantOrder();
    await fetch(`${stack.emulator.url}/__sim/refund`, {
      method: 'POST',
      body: JSON.stringify({ out_trade_no: refusedOrder.outTradeNo, refund_fee: 90 }),
    });
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
      await handler('getRefund')(
        apiEvent({ method: 'GET', path: '/', pathParameters: { outTradeNo: refunded.outTradeNo, outRefundNo: accepted }, ...merchant }),
      );
      await handler('getRefund')(
        apiEvent({ method: 'GET', path: '/', pathParameters: { outTradeNo: refunded.outTradeNo, outRefundNo: 'Rnothere' }, ...merchant }),
      );
    });
    const refundDocument = (order: { outTradeNo: string; transactionId: string }, outRefundNo: string, refundFee: string) =>
      encryptedRefundNotification({
        apiKey: TEST_MERCHANT.apiKey,
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        fields: {
          out_trade_no: order.outTradeNo,
          transaction_id: order.transactionId,
          out_refund_no: outRefundNo,
          total_fee: '100',
          refund_fee: refundFee,
        },
      });
    await as('refundNotify', async () => {
      await deliverRefund(refundDocument(platformRefunded, 'Pplatform1', '40'));
      await deliverRefund(refundDocument(platformRefunded, 'Pplatform1', '40'));
      await deliverRefund(
        refundDocument({ outTradeNo: '20990101unknownOrder000000', transactionId: '4200000000000000000000000001' }, 'R1', '1'),
      );
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
      await recoverAt(() => new Date(Date.now() + 10_000));
      await recoverAt(() => new Date(Date.now() + 31 * 60_000));
      await handler('recoverOrders')({} as never);
    });
    // Payments whose callbacks were lost, and refunds made in the merchant platform whose callbacks
    // were lost too, found in the bills of yesterday (by the schedule) and of the day before (asked
    // for by the merchant); a report read back.
    const day = (n: number) => toBeijingTimestamp(new Date(Date.now() - n * 86_400_000)).slice(0, 8);
    const lost: string[] = [];
    for (const n of [1, 2]) {
      const outTradeNo = JSON.parse((await postMerchant({ tradeType: 'NATIVE', totalFee: 77, description: 'lost' })).body as string)
        .outTradeNo as string;
      await fetch(`${stack.emulator.url}/__sim/pay`, {
        method: 'POST',
        body: JSON.stringify({ out_trade_no: outTradeNo, time_end: `${day(n)}120000` }),
      });
      await fetch(`${stack.emulator.url}/__sim/refund`, {
        method: 'POST',
        body: JSON.stringify({
          out_trade_no: outTradeNo,
          refund_fee: 7,
          out_refund_no: `lp-platform-${n}`,
          refund_time: `${day(n)}150000`,
        }),
      });
      lost.push(outTradeNo);
    }
    // Each day twice: the second run's report replaces the first's, whose page it deletes.
    await as('reconcile', async () => {
      for (let run = 0; run < 2; run++) await handler('reconcile')({} as never);
    });
    await as('runReconciliation', async () => {
      for (let run = 0; run < 2; run++)
        await handler('runReconciliation')(
          apiEvent({ method: 'POST', path: '/merchant/reconciliations', body: JSON.stringify({ billDate: day(2) }), ...merchant }),
        );
    });
    await as('getReconciliation', () =>
      handler('getReconciliation')(
        apiEvent({ method: 'GET', path: `/merchant/reconciliations/${day(2)}`, pathParameters: { billDate: day(2) }, ...merchant }),
      ),
    );
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
      for (let i = 0; i < 2; i += 1)
        await handler('miniProgramLogin')(apiEvent({ method: 'POST', path: '/auth/miniprogram', body: JSON.stringify({ code }) }));
    });
    await as('officialAccountLogin', async () => {
      const { code } = await simLogin(stack.emulator.url, { appId: TEST_MERCHANT.appId });
      await handler('officialAccountLogin')(apiEvent({ method: 'POST', path: '/auth/officialaccount', body: JSON.stringify({ code }) }));
    });
    await as('jssdkConfig', async () => {
      await stack.sim.faults({ platformErrors: { getticket: [40001] } });
      const page = {
        ...apiEvent({ method: 'GET', path: '/auth/jssdk-config' }),
        rawQueryString: `url=${encodeURIComponent(`${TEST_PAGE_ORIGIN}/pay`)}`,
      };
      expect((await handler('jssdkConfig')(page)).statusCode).toBe(200);
      expect((await handler('jssdkConfig')(page)).statusCode).toBe(200);
    });
    expect((await ctx.store.get(paidByQuery))?.paidVia).toBe('query');
    expect((await ctx.store.get(paidByRecovery))?.paidVia).toBe('recovery');
    expect((await ctx.store.get(closedByWechatPay))?.status).toBe('CLOSED');
    // Recovery settled the accepted refund and sent the other again.
    await as('recoverOrders', async () => {
      await recoverAt(() => new Date(Date.now() + 62 * 60_000));
    });
    expect((await ctx.store.get(refunded.outTradeNo))?.refunds?.[accepted]?.status).toBe('SUCCESS');
    expect((await stack.sim.order(resent.outTradeNo)).refunds).toHaveLength(1);
  });

  it('recorded every call of every function, and no call outside them went unseen', () => {
    for (const name of FUNCTIONS) expect(callsOf(name).length, name).toBeGreaterThan(0);
    // Set-up (orders paid, callbacks delivered) ran outside any function's recording.
    expect(unattributedCalls()).toBeGreaterThan(0);
    reportFigures('least privilege: calls', Object.fromEntries(FUNCTIONS.map((name) => [name, summary(name)])));
  });

  it('each function read its secrets from SSM as a cold container does: the ones its work needs, and no other', () => {
    const reads = (name: FunctionName) => summary(name).filter((call) => call.startsWith('GetParameter on '));
    expect(reads('notify')).toEqual([`GetParameter on ${PARAMETERS.WECHATPAY_API_KEY_PARAM}`]);
    expect(reads('createRefund')).toEqual(
      [PARAMETERS.WECHATPAY_API_KEY_PARAM, PARAMETERS.WECHATPAY_CERT_PARAM, PARAMETERS.MERCHANT_API_TOKENS_PARAM]
        .map((name) => `GetParameter on ${name}`)
        .sort(),
    );
    expect(reads('miniProgramLogin')).toEqual(
      [APP_SECRET_PARAMS.miniprogram, PARAMETERS.SESSION_KEY_PARAM].map((name) => `GetParameter on ${name}`).sort(),
    );
    expect(reads('jssdkConfig')).toEqual([`GetParameter on ${APP_SECRET_PARAMS.officialaccount}`]);
    expect(reads('clearOutbox')).toEqual([]);
  });

  it('the recovery schedule published again what was left unconfirmed', () => {
    expect(summary('recoverOrders')).toContain('PutEvents on bus');
    expect(summary('recoverOrders')).toContain('Query on index/outboxByShard');
  });

  it("only the JS-SDK config touches the token cache's items (wechat-token#..., lease#...), and it touches no other", () => {
    const keysOf = (name: FunctionName) => callsOf(name).flatMap((call) => [call.context['dynamodb:LeadingKeys'] ?? []].flat());
    const isCacheKey = (pk: string) => /^(wechat-token|lease)#/.test(pk);
    expect(keysOf('jssdkConfig').length).toBeGreaterThan(0);
    expect(keysOf('jssdkConfig').filter((pk) => !isCacheKey(pk))).toEqual([]);
    for (const name of FUNCTIONS.filter((other) => other !== 'jssdkConfig')) expect(keysOf(name).filter(isCacheKey), name).toEqual([]);
    // The orders and records the run wrote and read, under their own keys.
    expect(keysOf('createOrder').some((pk) => pk.startsWith('idempotency#'))).toBe(true);
    expect(keysOf('createRefund').some((pk) => pk.startsWith('refund#'))).toBe(true);
  });

  it('no function scans the table or queries it outside its sparse indexes (pending orders, open refunds, payments by day, refund requests by day, unpublished events)', () => {
    const all = FUNCTIONS.flatMap(summary);
    // Listing the catalog scans the catalog table, which holds products only.
    expect(all.filter((call) => (call.startsWith('Scan') && call !== 'Scan on catalog') || call === 'Query on table')).toEqual([]);
    expect(summary('reconcile')).toContain('Query on index/paidByDay');
    expect(summary('reconcile')).toContain('Query on index/refundsByRequestDay');
    expect([...new Set(all.filter((call) => call.startsWith('Query')))].sort()).toEqual([
      'Query on index/openRefundsByShard',
      'Query on index/outboxByShard',
      'Query on index/paidByDay',
      'Query on index/pendingByShard',
      'Query on index/refundsByRequestDay',
    ]);
  });
});

describe('the recorder sees every AWS client the product builds', () => {
  const ROOT = fileURLToPath(new URL('../..', import.meta.url));
  const product = ['lib', 'functions'].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((name) => /\.ts$/.test(name) && !name.endsWith('.d.ts'))
      .map((name) => join(dir, name)),
  );
  const text = (file: string) => readFileSync(join(ROOT, file), 'utf8');
  const where = (pattern: RegExp) => product.filter((file) => pattern.test(text(file))).sort();

  it('imports no AWS SDK client but DynamoDB, EventBridge, and SSM through Powertools (a new one needs the recorder to learn its calls)', () => {
    const packages = new Set(
      product.flatMap((file) =>
        [...text(file).matchAll(/['"](@aws-sdk\/[a-z-]+|@aws-lambda-powertools\/parameters[^'"]*)/g)].map((match) => match[1]!),
      ),
    );
    expect([...packages].sort()).toEqual([
      '@aws-lambda-powertools/parameters/ssm',
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/client-eventbridge',
      '@aws-sdk/lib-dynamodb',
    ]);
  });

  it('builds each client where this test puts its recorder', () => {
    // DynamoDB: createDocumentClient (mocked above to record); EventBridge: the class loadEventBridge
    // hands out (mocked above); SSM: Powertools' default provider (replaced above by a recorded one).
    expect(where(/new DynamoDBClient\(|DynamoDBDocumentClient\.from\(/)).toEqual(['lib/store/dynamo.ts']);
    expect(text('lib/store/dynamo.ts')).toMatch(/export function createDocumentClient\(/);
    expect(where(/new EventBridgeClient\(/)).toEqual(['lib/events/publisher.ts']);
    expect(where(/import\s*\(\s*'@aws-sdk\/client-eventbridge/)).toEqual(['lib/events/eventbridge-client.ts']);
    expect(where(/@aws-lambda-powertools\/parameters/)).toEqual(['lib/config/secrets.ts']);
    expect(where(/new SSMProvider|SSMClient/)).toEqual([]);
  });
});

/**
 * The stages checked: dev and prod as docs/go-live.md deploys them, and prod set through the deploying
 * environment (its own parameter names, a mini-program beside the official account). Packaged once
 * per test run, shared with test/infra.
 */
const STAGES: Array<[string, PackageRequest]> = [
  ['dev', DEV],
  ['prod', PROD],
  ['prod (settings from the environment, several apps)', PROD_FROM_ENVIRONMENT],
];
const templates: Record<string, Template> = {};
beforeAll(async () => {
  for (const [label, request] of STAGES) templates[label] = (await sharedPackage(request)).template;
}, 300_000);

const reports: Record<string, Record<string, FunctionReport>> = {};

describe.each(STAGES.map(([label]) => label))('the packaged %s template', (label) => {
  it('gives each function exactly the permissions of the calls it makes, and denies it every call of the never-list', async () => {
    const facts = stageFacts(templates[label]!, label.split(' ')[0]!, FUNCTIONS);
    reports[label] = {};
    const findings: string[] = [];
    for (const name of FUNCTIONS) {
      const report = await checkFunction(facts, name, callsOf(name), env);
      reports[label][name] = report;
      findings.push(...report.findings);
    }
    console.log(`least privilege, ${label}:\n${table(reports[label])}`);
    expect(findings).toEqual([]);
    reportFigures(
      `least privilege: ${label}`,
      Object.fromEntries(
        Object.entries(reports[label]).map(([name, { recorded, allowed, denied, notInStage }]) => [
          name,
          { recorded, allowed, denied, notInStage },
        ]),
      ),
    );
  }, 120_000);
});

function table(byFunction: Record<string, FunctionReport>): string {
  const rows = Object.entries(byFunction).map(
    ([name, report]) =>
      `  ${name.padEnd(21)} ${String(report.recorded).padStart(5)} ${String(report.allowed).padStart(8)} ${String(report.denied).padStart(7)}`,
  );
  return [`  ${'function'.padEnd(21)} ${'calls'.padStart(5)} ${'allowed'.padStart(8)} ${'denied'.padStart(7)}`, ...rows].join('\n');
}

describe('the check fails, naming the function, when a role is planted with a mistake', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Planted = any;
  /** dev's template with `plant` applied to a copy, checked for `name` alone. */
  async function findings(name: FunctionName, plant: (statements: Planted[]) => void): Promise<string[]> {
    const template = structuredClone(templates.dev!);
    const role = template.Resources[`${name[0]!.toUpperCase()}${name.slice(1)}Role`]!;
    plant((role.Properties.Policies as Array<{ PolicyDocument: { Statement: Planted[] } }>)[0]!.PolicyDocument.Statement);
    return (await checkFunction(stageFacts(template, 'dev', FUNCTIONS), name, callsOf(name), env)).findings;
  }
  const ordersTable = { 'Fn::GetAtt': ['OrdersTable', 'Arn'] };
  const devTable = tableArn('wechatpay-dev-orders').replace(/^arn:aws:[^:]+:[^:]*:\d*:/, '');

  it('as planted, the role passes', async () => {
    expect(await findings('notify', () => {})).toEqual([]);
  });

  it('a widened role: a permission the function never uses', async () => {
    const found = await findings('notify', (statements) =>
      statements.push({ Effect: 'Allow', Action: ['dynamodb:DeleteItem'], Resource: [ordersTable] }),
    );
    expect(found).toEqual([
      `notify (dev, NotifyRole)'s role allows dynamodb:DeleteItem on ${devTable}, which notify never does`,
      expect.stringMatching(
        /^notify \(dev, NotifyRole\) may make dynamodb:DeleteItem on table\/wechatpay-dev-orders: never-list "dynamodb:\*/,
      ),
    ]);
  });

  it('a missing permission: a call the function makes', async () => {
    const found = await findings('notify', (statements) => {
      const statement = statements.find(
        (candidate) => candidate.Effect === 'Allow' && [candidate.Action].flat().includes('dynamodb:UpdateItem'),
      );
      statement.Action = statement.Action.filter((action: string) => action !== 'dynamodb:UpdateItem');
    });
    expect(found.length).toBeGreaterThan(0);
    for (const finding of found)
      expect(finding).toMatch(
        /^notify \(dev, NotifyRole\) makes dynamodb:UpdateItem on table\/wechatpay-dev-orders \(partition key .*\), which its role does not allow \(ImplicitlyDenied\)$/,
      );
  });

  it("the token cache's deny left out: every function on the orders table but the JS-SDK config's could read the official account's access_token", async () => {
    const found = await findings('createOrder', (statements) =>
      statements.splice(
        statements.findIndex((candidate) => candidate.Effect === 'Deny'),
        1,
      ),
    );
    expect(found.length).toBeGreaterThan(0);
    for (const finding of found)
      expect(finding).toMatch(
        /^createOrder \(dev, CreateOrderRole\) may make dynamodb:\w+ on table\/wechatpay-dev-orders \(partition key .*(wechat-token|lease)#.*\): never-list "the token cache's keys/,
      );
  });

  it("the JS-SDK config's condition left out: it could touch every order", async () => {
    const found = await findings('jssdkConfig', (statements) => {
      delete statements.find((candidate) => candidate.Condition)!.Condition;
    });
    expect(found.length).toBeGreaterThan(0);
    for (const finding of found)
      expect(finding).toMatch(
        /^jssdkConfig \(dev, JssdkConfigRole\) may make dynamodb:\w+ on table\/wechatpay-dev-orders .*: never-list "another key than the token cache's/,
      );
  });

  it('a resource widened to every table: another table', async () => {
    const found = await findings('getRefund', (statements) => {
      statements.find((candidate) => [candidate.Action].flat().includes('dynamodb:GetItem')).Resource = ['arn:aws:dynamodb:*:*:table/*'];
    });
    expect(
      found.some(
        (finding) =>
          finding.startsWith('getRefund (dev, GetRefundRole) may make dynamodb:GetItem on table/wechatpay-dev-catalog') &&
          finding.includes('never-list "another table'),
      ),
    ).toBe(true);
    expect(found.some((finding) => finding.includes('wechatpay-prod-orders'))).toBe(true);
  });

  it('names a call as it reads', () => {
    expect(
      describeCall({ action: 'dynamodb:GetItem', resource: tableArn('wechatpay-dev-orders'), context: { 'dynamodb:LeadingKeys': ['x'] } }),
    ).toBe('dynamodb:GetItem on table/wechatpay-dev-orders (partition key x)');
  });
});

// The figures: recorded calls, allowed and denied checks, per function and stage.
afterAll(() => {
  if (Object.keys(reports).length > 0)
    reportFigures(
      'least privilege: totals',
      Object.fromEntries(
        Object.entries(reports).map(([label, byFunction]) => [
          label,
          Object.values(byFunction).reduce(
            (sum, report) => ({
              recorded: sum.recorded + report.recorded,
              allowed: sum.allowed + report.allowed,
              denied: sum.denied + report.denied,
            }),
            { recorded: 0, allowed: 0, denied: 0 },
          ),
        ]),
      ),
    );
});
