import { isDeepStrictEqual } from 'node:util';
import type { ScheduledEvent } from 'aws-lambda';
import fc from 'fast-check';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import type { OrdersContext } from '../../lib/orders/context';
import type { Order } from '../../lib/orders/model';
import { OrderStore } from '../../lib/orders/store';
import { createDocumentClient } from '../../lib/store/dynamo';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { encryptedRefundNotification } from '../../dev/wechatpay-documents/refund-notification';
import { signedNotification } from '../../dev/wechatpay-documents/payment-notification';
import type { RunningEventBridge } from '../../dev/local/eventbridge';
import { apiEvent, MERCHANT_AUTHORIZATION, type HttpResult } from '../support/api';
import type { SimOrder, TestStack } from '../support/stack';
import { countPaidTransitions, FAULT_KINDS, injectFault, requestPk, type FaultKind } from '../reliability/support';
import { faultPutEvents } from '../support/events';
import type { CallbackCapture } from './capture';
import type { Product } from './deployment';

/**
 * A model of the money (docs/internals/guarantees.md: The model of the money): fast-check draws sequences of everything that
 * can happen to orders, runs them against the real handlers, dynalite and the WeChat Pay emulator,
 * and checks after every command, and once more when the run has settled, what must always hold.
 *
 * Why there are two deployments, A and B: WeChat Pay knows a merchant, not a deployment. Its
 * out_trade_no and out_refund_no are unique per merchant id, and one merchant id is often shared by
 * several deployments (staging and production, a table made again, a second region, another system
 * of the merchant). B is a second deployment of the same product on the same emulator merchant (same
 * mch_id, apps, API key and certificate) with its own tables, notify URLs and bus. It makes, pays and
 * refunds its own orders; each deployment's server also sends the other's refund idempotency keys
 * (the same merchant server logic run twice sends the same keys for other orders), often meeting
 * SYSTEMERROR so that recovery asks refundquery; B's orders are refunded by hand in the merchant
 * platform under out_refund_nos A derived; each reconciles the merchant's bill, which has the other's
 * payments and refunds; and callbacks reach the wrong deployment. Whatever WeChat Pay answers about
 * one deployment's order must never be recorded by the other as its own: every invariant is checked
 * for the orders of both, against WeChat Pay's record of that very order.
 */

/** The catalog the frontend orders buy from (sku → price in fen). */
export const MODEL_CATALOG: Record<string, number> = { 'model-tea': 1_200, 'model-cake': 2_550, 'model-pin': 1 };
const SKUS = Object.keys(MODEL_CATALOG);
const OPENID = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
const OTHER_KEY = 'ffffffffffffffffffffffffffffffff';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A deployment of the product: A (the test stack's) or B (another sharing the merchant). */
export type DeploymentName = 'a' | 'b';
const otherThan = (name: DeploymentName): DeploymentName => (name === 'a' ? 'b' : 'a');

/** What the model knows of one order it made. */
export interface ModelOrder {
  /** The deployment that made it (and alone may record it). */
  deployment: DeploymentName;
  outTradeNo: string;
  totalFee: number;
  /** The user paid at WeChat Pay (the emulator said so). */
  paid: boolean;
  /** The Beijing day of the payment when it was paid on an earlier day (so it is in that day's bill). */
  billDate?: string;
}

/** What the model knows of one deployment's orders and keys. */
export interface DeploymentModel {
  orders: ModelOrder[];
  /** Idempotency keys used for orders: the request first sent with each, and its order. */
  orderKeys: Map<string, { request: string; outTradeNo?: string; unsure?: boolean }>;
  /** Idempotency keys used for refunds: the request bound to each (unsure after a failed first request). */
  refundKeys: Map<string, { sent: string; refundFee: number; unsure?: boolean; atWechatPay?: boolean }>;
}

export interface Model {
  run: number;
  a: DeploymentModel;
  b: DeploymentModel;
  /** The earlier day this run pays "on" and reconciles (a different day per run, within the bill window). */
  billDate: string;
}

export interface Figures {
  runs: number;
  commands: number;
  byCommand: Record<string, number>;
  faultsInjected: number;
  faultsFired: number;
  invariantChecks: number;
  violations: string[];
  /**
   * How often the two deployments met on the merchant: refunds one took (answered 2xx, or reserved
   * and answered 503 when DynamoDB's answer to the reservation was lost) under the idempotency key of
   * one of the other's refunds that WeChat Pay has (`keysTaken`), those of them left PROCESSING
   * without WeChat Pay having them, for recovery's refundquery (`leftToRecovery`);
   * refunds made by hand for B's orders under a refund number of A's (`platformUnderTheirNumber`);
   * and orders flagged at the end of a run because WeChat Pay answered about another order's refund
   * under one of their refund numbers (`answersAboutAnotherOrder`).
   */
  shared: { keysTaken: number; leftToRecovery: number; platformUnderTheirNumber: number; answersAboutAnotherOrder: number };
  /** Where the time goes: running each kind of command, checking after commands, settling runs. */
  msByCommand: Record<string, number>;
  msChecking: number;
  msSettling: number;
}

/** One deployment under test: its handlers, its context, and what the model reads and counts of it. */
export interface Deployment {
  name: DeploymentName;
  product: Product;
  ctx: OrdersContext;
  /** The model's own reads of its table, on a client of its own: injected faults strike only the product. */
  reader: OrderStore;
  /** Its notify URLs: where WeChat Pay calls back about its orders. */
  capture: CallbackCapture;
  /** Its bus. */
  events: RunningEventBridge;
  paidWrites: Map<string, number>;
}

/** The system under test, shared by every run. */
export interface System {
  stack: TestStack;
  a: Deployment;
  b: Deployment;
  /** Real time plus this offset is the product's clock (ctx.now), both deployments'. */
  clock: { offsetMs: number };
  figures: Figures;
}

/** What makes a deployment, before the model points its clock and counts its writes. */
export interface DeploymentParts {
  product: Product;
  capture: CallbackCapture;
  events: RunningEventBridge;
  table: string;
}

export function newFigures(): Figures {
  return {
    runs: 0,
    commands: 0,
    byCommand: {},
    faultsInjected: 0,
    faultsFired: 0,
    invariantChecks: 0,
    violations: [],
    shared: { keysTaken: 0, leftToRecovery: 0, platformUnderTheirNumber: 0, answersAboutAnotherOrder: 0 },
    msByCommand: {},
    msChecking: 0,
    msSettling: 0,
  };
}

/** Points both deployments' clocks at `system.clock` and counts every PAID write DynamoDB accepted. */
export function systemOf(stack: TestStack, parts: Record<DeploymentName, DeploymentParts>, figures = newFigures()): System {
  const clock = { offsetMs: 0 };
  const deployment = (name: DeploymentName): Deployment => {
    const { product, capture, events, table } = parts[name];
    const { ctx } = product;
    ctx.now = () => new Date(Date.now() + clock.offsetMs);
    const reader = new OrderStore(createDocumentClient(stack.dynamoEndpoint), table);
    return { name, product, ctx, reader, capture, events, paidWrites: countPaidTransitions(ctx.store.db).counts };
  };
  return { stack, a: deployment('a'), b: deployment('b'), clock, figures };
}

const newDeploymentModel = (): DeploymentModel => ({ orders: [], orderKeys: new Map(), refundKeys: new Map() });

export function newModel(run: number): Model {
  // Paying "yesterday" needs a time_end in the past: each run pays on one of the 20 days before today.
  const billDate = toBeijingTimestamp(new Date(Date.now() - (1 + (run % 20)) * DAY)).slice(0, 8);
  return { run, a: newDeploymentModel(), b: newDeploymentModel(), billDate };
}

/** Both deployments' orders. */
const allOrders = (model: Readonly<Model>): ModelOrder[] => [...model.a.orders, ...model.b.orders];

// ---------------------------------------------------------------------------------------------------
// Faults injected before a command: a DynamoDB error at the SDK boundary, or WeChat Pay's SYSTEMERROR.

const WECHAT_ENDPOINTS = ['unifiedorder', 'orderquery', 'closeorder', 'refundquery', 'refund'] as const;
const PUT_EVENTS_FAULTS = ['error', 'refused', 'lost answer'] as const;
type Fault =
  /** `orderUpdate`: counting only the updates of an order's item (a refund's reservation is the first of its request). */
  | { on: 'dynamodb'; kind: FaultKind; timing: 'before' | 'after'; nth: number; orderUpdate?: boolean }
  | { on: 'wechatpay'; endpoint: (typeof WECHAT_ENDPOINTS)[number]; count: number }
  | { on: 'eventbridge'; kind: (typeof PUT_EVENTS_FAULTS)[number]; times: number };

const faultArb: fc.Arbitrary<Fault | undefined> = fc.oneof(
  { weight: 85, arbitrary: fc.constant(undefined) },
  {
    weight: 10,
    arbitrary: fc.record({
      on: fc.constant('dynamodb' as const),
      kind: fc.constantFrom(...FAULT_KINDS),
      timing: fc.constantFrom('before' as const, 'after' as const),
      nth: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      on: fc.constant('wechatpay' as const),
      endpoint: fc.constantFrom(...WECHAT_ENDPOINTS),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      on: fc.constant('eventbridge' as const),
      kind: fc.constantFrom(...PUT_EVENTS_FAULTS),
      times: fc.integer({ min: 1, max: 2 }),
    }),
  },
);

const NO_SYSTEM_ERRORS = Object.fromEntries(WECHAT_ENDPOINTS.map((endpoint) => [endpoint, 0]));

interface ArmedFault {
  /** It struck: the command may then answer 5xx (a storage or WeChat Pay failure, never an EventBridge one). */
  excuses5xx(): boolean;
  struck(): boolean;
  disarm(): Promise<void>;
}

/** Arms a fault before a command of a deployment (DynamoDB and EventBridge faults strike that deployment's clients). */
async function arm(fault: Fault | undefined, system: System, d: Deployment): Promise<ArmedFault> {
  if (!fault) return { excuses5xx: () => false, struck: () => false, disarm: async () => {} };
  system.figures.faultsInjected += 1;
  if (fault.on === 'dynamodb') {
    const injected = injectFault(d.ctx.store.db, {
      kind: fault.kind,
      timing: fault.timing,
      nth: fault.nth,
      // An order's item is keyed by its out_trade_no alone; the other items' keys have a `kind#` prefix.
      ...(fault.orderUpdate
        ? {
            matches: (action: string, input: Parameters<typeof requestPk>[0]) =>
              action === 'UpdateItem' && !(requestPk(input) ?? '#').includes('#'),
          }
        : {}),
    });
    return {
      excuses5xx: () => injected.state.fired,
      struck: () => injected.state.fired,
      disarm: async () => {
        injected.stop();
      },
    };
  }
  if (fault.on === 'eventbridge') {
    // A publish that fails leaves the events in the outbox: the request itself must not fail.
    const injected = await faultPutEvents(d.ctx, fault.kind, fault.times);
    return {
      excuses5xx: () => false,
      struck: () => injected.state.fired > 0,
      disarm: async () => {
        injected.stop();
      },
    };
  }
  await system.stack.sim.faults({ systemError: { [fault.endpoint]: fault.count } });
  // Whether the command called that endpoint is not known here: a 5xx is allowed; one left unused is cleared.
  return {
    excuses5xx: () => true,
    struck: () => true,
    disarm: async () => {
      await system.stack.sim.faults({ systemError: NO_SYSTEM_ERRORS });
    },
  };
}

function describeFault(fault: Fault | undefined): string {
  if (!fault) return '';
  if (fault.on === 'dynamodb') return ` !dynamodb(${fault.kind},${fault.timing},#${fault.nth}${fault.orderUpdate ? ' order update' : ''})`;
  return fault.on === 'wechatpay' ? ` !wechatpay(${fault.endpoint}×${fault.count})` : ` !eventbridge(${fault.kind}×${fault.times})`;
}

// ---------------------------------------------------------------------------------------------------
// Commands.

class Violation extends Error {}

function violated(system: System, message: string): never {
  system.figures.violations.push(message);
  throw new Violation(message);
}

/** What a command touched: the orders to check after it (all of the run's for the wide ones). */
type Touched = ModelOrder[] | 'all';

abstract class MoneyCommand implements fc.AsyncCommand<Model, System> {
  protected abstract readonly name: string;
  /** The deployment the command acts through (its orders, its handlers). */
  protected on: DeploymentName = 'a';
  constructor(readonly fault: Fault | undefined = undefined) {}
  /** Acts through deployment B (its orders, its handlers); A's unless said. */
  by(on: DeploymentName): this {
    this.on = on;
    return this;
  }
  check(model: Readonly<Model>): boolean {
    return model[this.on].orders.length > 0;
  }
  protected abstract act(model: Model, system: System, faulted: () => boolean): Promise<Touched>;
  protected abstract detail(): string;

  /** Its name in the figures and the counterexample: B's commands are `b:...`. */
  protected get label(): string {
    return this.on === 'a' ? this.name : `b:${this.name}`;
  }

  async run(model: Model, system: System): Promise<void> {
    const { figures } = system;
    figures.commands += 1;
    figures.byCommand[this.label] = (figures.byCommand[this.label] ?? 0) + 1;
    const started = performance.now();
    const armed = await arm(this.fault, system, system[this.on]);
    let touched: Touched;
    try {
      touched = await this.act(model, system, armed.excuses5xx);
    } finally {
      if (armed.struck()) figures.faultsFired += 1;
      await armed.disarm();
    }
    const acted = performance.now();
    await checkOrders(model, system, touched === 'all' ? allOrders(model) : touched, 'step');
    figures.msByCommand[this.label] = (figures.msByCommand[this.label] ?? 0) + (acted - started);
    figures.msChecking += performance.now() - acted;
  }

  toString(): string {
    return `${this.label}(${this.detail()})${describeFault(this.fault)}`;
  }
}

/** A command that needs no order of the run: it may come first. */
abstract class AnyTimeCommand extends MoneyCommand {
  override check(): boolean {
    return true;
  }
  protected detail(): string {
    return '';
  }
}

const pick = (orders: readonly ModelOrder[], index: number): ModelOrder => orders[index % orders.length]!;

/** A 5xx is an answer only an injected fault may cause. */
function answered(system: System, what: string, status: number, faulted: () => boolean, raw: string): void {
  if (status >= 500 && !faulted()) violated(system, `${what} answered ${status} with no fault injected: ${raw.slice(0, 300)}`);
}

/** POST /orders (a frontend, by catalog items) or POST /merchant/orders (the merchant's server, by amount). */
class CreateOrder extends AnyTimeCommand {
  protected readonly name = 'create';
  constructor(
    readonly from: 'frontend' | 'merchant',
    readonly tradeType: 'NATIVE' | 'JSAPI',
    readonly lines: Array<{ sku: number; quantity: number }>,
    readonly totalFee: number,
    readonly key: number | undefined,
    readonly attach: string | undefined,
    fault?: Fault,
  ) {
    super(fault);
  }
  protected override detail(): string {
    const what = this.from === 'frontend' ? this.lines.map((l) => `${SKUS[l.sku]}×${l.quantity}`).join('+') : `${this.totalFee} fen`;
    return `${this.from} ${this.tradeType} ${what}${this.key === undefined ? '' : ` key${this.key}`}${this.attach === undefined ? '' : ` attach=${JSON.stringify(this.attach)}`}`;
  }

  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    // B sends the same order keys as A (its own table: each deployment binds them to its own orders).
    const key = this.key === undefined ? undefined : `model${model.run}-${this.from}-${this.key}`;
    const common = {
      tradeType: this.tradeType,
      ...(this.tradeType === 'JSAPI' ? { openid: OPENID } : {}),
      ...(this.attach === undefined ? {} : { attach: this.attach }),
      ...(key ? { idempotencyKey: key } : {}),
    };
    const items = this.lines.map((line) => ({ sku: SKUS[line.sku]!, quantity: line.quantity }));
    const body = this.from === 'frontend' ? { ...common, items } : { ...common, totalFee: this.totalFee, description: 'Model order' };
    const expectedFee =
      this.from === 'frontend' ? this.lines.reduce((sum, line) => sum + MODEL_CATALOG[SKUS[line.sku]!]! * line.quantity, 0) : this.totalFee;
    const { api } = system[this.on].product;
    const result = this.from === 'frontend' ? await api.order(body) : await api.create(body);
    const mine = model[this.on];
    answered(system, `create ${this.detail()}`, result.status, faulted, result.raw);
    const request = JSON.stringify(body);
    const earlier = key ? mine.orderKeys.get(key) : undefined;
    if (this.attach !== undefined && /[&=]/.test(this.attach)) {
      if (result.status !== 400) violated(system, `an attach with a field boundary was not refused: ${result.status} ${result.raw}`);
      return [];
    }
    if (result.status >= 500) {
      // The order may or may not exist, the key bound or not: only the key can tell, later.
      if (key && !earlier) mine.orderKeys.set(key, { request, unsure: true });
      return [];
    }
    if (earlier?.unsure && earlier.request !== request && result.status < 300) {
      // The failed first request never bound its key: this one did.
      mine.orderKeys.delete(key!);
    } else if (earlier && earlier.request !== request) {
      if (result.status !== 409)
        violated(system, `idempotency key ${key} reused for another order was answered ${result.status}: ${result.raw}`);
      return [];
    }
    if (earlier && result.status === 409) return []; // a repeat of an order that expired unpaid
    if (result.status !== 201 && result.status !== 200)
      violated(system, `create ${this.detail()} answered ${result.status}: ${result.raw}`);
    const { outTradeNo, totalFee } = result.body;
    if (totalFee !== expectedFee) violated(system, `order ${outTradeNo} costs ${totalFee} fen, the model priced it ${expectedFee}`);
    if (earlier?.outTradeNo && earlier.outTradeNo !== outTradeNo)
      violated(system, `idempotency key ${key} answered order ${outTradeNo}, first ${earlier.outTradeNo}`);
    if (key && !mine.orderKeys.get(key)?.outTradeNo) mine.orderKeys.set(key, { request, outTradeNo });
    let known = mine.orders.find((o) => o.outTradeNo === outTradeNo);
    if (!known) {
      known = { deployment: this.on, outTradeNo, totalFee: expectedFee, paid: false };
      mine.orders.push(known);
    }
    return [known];
  }
}

/** The user pays at WeChat Pay (now, or on the run's earlier day, for the bill). */
class Pay extends MoneyCommand {
  protected readonly name = 'pay';
  constructor(
    readonly index: number,
    readonly earlierDay: boolean,
    /** Its callback delivered at once, as usual (else only by the commands that deliver callbacks, late or never). */
    readonly calledBack = false,
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index}${this.earlierDay ? ' on the bill day' : ''}${this.calledBack ? ', called back' : ''}`;
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    // B pays its unpaid orders first (A's payer pays any order, again too).
    const unpaid = this.on === 'b' ? model.b.orders.filter((candidate) => !candidate.paid) : [];
    const order = pick(unpaid.length > 0 ? unpaid : model[this.on].orders, this.index);
    const timeEnd = this.earlierDay ? `${model.billDate}120000` : undefined;
    const response = await fetch(`${system.stack.emulator.url}/__sim/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ out_trade_no: order.outTradeNo, ...(timeEnd ? { time_end: timeEnd } : {}) }),
    });
    if (response.status === 200) {
      order.paid = true;
      if (timeEnd) order.billDate = model.billDate;
      // The emulator calls back at once; the capture keeps it for the model to deliver.
      const deadline = Date.now() + 5_000;
      while (system[this.on].capture.payments(order.outTradeNo).length === 0) {
        if (Date.now() > deadline) violated(system, `the emulator never called back for ${order.outTradeNo}`);
        await sleep(2);
      }
      if (this.calledBack) await deliverPayment(system, order, 1, () => false);
    } else if (response.status !== 409) {
      violated(system, `the emulator refused to be paid for ${order.outTradeNo}: ${response.status} ${await response.text()}`);
    }
    return [order];
  }
}

/**
 * WeChat Pay's genuine callbacks of an order, as the emulator sent them: the payment's, or its refunds'
 * (encrypted req_info); once or several times at once, late or early, in any order among orders.
 */
class DeliverCallbacks extends MoneyCommand {
  protected readonly name: string;
  constructor(
    readonly of: 'payment' | 'refunds',
    readonly index: number,
    readonly copies: number,
    fault?: Fault,
  ) {
    super(fault);
    this.name = of === 'payment' ? 'callback' : 'refund-callback';
  }
  protected detail(): string {
    return `#${this.index} ×${this.copies}`;
  }
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    // Three in four deliver callbacks of an order WeChat Pay called back about, when there is one.
    const { capture } = system[this.on];
    const calledBack =
      this.index % 4 === 0
        ? []
        : model[this.on].orders.filter(
            (candidate) => (this.of === 'payment' ? capture.payments : capture.refunds)(candidate.outTradeNo).length > 0,
          );
    const order = pick(calledBack.length > 0 ? calledBack : model[this.on].orders, this.index);
    await (this.of === 'payment' ? deliverPayment : deliverRefundCallbacks)(system, order, this.copies, faulted);
    return [order];
  }
}

/** An order's genuine callbacks go to the deployment that made it: its notify URL got them. */
async function deliverPayment(system: System, order: ModelOrder, copies: number, faulted: () => boolean): Promise<void> {
  const d = system[order.deployment];
  const document = d.capture.payments(order.outTradeNo).at(-1);
  if (!document) return;
  const results = await Promise.all(Array.from({ length: copies }, () => d.product.api.callback(document)));
  for (const result of results) {
    answered(system, `callback of ${order.outTradeNo}`, result.status, faulted, result.raw);
    if (!faulted() && result.returnCode !== 'SUCCESS')
      violated(system, `a genuine callback of ${order.outTradeNo} was answered ${result.raw}`);
  }
}

const FORGERIES = ['wrong-key', 'changed-amount', 'other-order', 'truncated', 'xxe', 'unsigned'] as const;
type Forgery = (typeof FORGERIES)[number];

/** A callback nobody with the API key made: refused, and nothing changes. */
class ForgedPayment extends MoneyCommand {
  protected readonly name = 'forged-callback';
  constructor(
    readonly index: number,
    readonly other: number,
    readonly forgery: Forgery,
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index} ${this.forgery}`;
  }
  private forge(model: Model, system: System, order: ModelOrder): string {
    const genuine = system.a.capture.payments(order.outTradeNo).at(-1);
    const forgedSigned = signedNotification({
      apiKey: OTHER_KEY,
      signType: 'HMAC-SHA256',
      fields: {
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        out_trade_no: order.outTradeNo,
        total_fee: String(order.totalFee),
      },
    });
    const base = genuine ?? forgedSigned;
    switch (this.forgery) {
      case 'wrong-key':
        return forgedSigned;
      case 'changed-amount':
        return base.replace(/<total_fee>(?:<!\[CDATA\[)?\d+/, (m) => `${m}0`).replace(/<cash_fee>(?:<!\[CDATA\[)?\d+/, (m) => `${m}0`);
      case 'other-order': {
        const target = pick(model.a.orders, this.other);
        return base.replace(order.outTradeNo, target.outTradeNo);
      }
      case 'truncated':
        return base.slice(0, Math.floor(base.length / 2));
      case 'xxe':
        return `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY fee SYSTEM "file:///etc/passwd">]>${base.replace(/<total_fee>[^<]*(<!\[CDATA\[[^\]]*\]\]>)?<\/total_fee>/, '<total_fee>&fee;</total_fee>')}`;
      case 'unsigned':
        return base.replace(/<sign>.*?<\/sign>/, '');
    }
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const order = pick(model.a.orders, this.index);
    // Another order's id in a genuine document: with one order there is no other to forge for.
    if (this.forgery === 'other-order' && pick(model.a.orders, this.other) === order) return [];
    const victims = this.forgery === 'other-order' ? [order, pick(model.a.orders, this.other)] : [order];
    const before = await Promise.all(victims.map((victim) => system.a.reader.get(victim.outTradeNo)));
    const result = await system.a.product.api.callback(this.forge(model, system, order));
    if (result.status >= 500 || result.returnCode === 'SUCCESS')
      violated(system, `a forged callback (${this.forgery}) of ${order.outTradeNo} was answered ${result.status} ${result.raw}`);
    const after = await Promise.all(victims.map((victim) => system.a.reader.get(victim.outTradeNo)));
    victims.forEach((victim, i) => {
      if (!isDeepStrictEqual(before[i], after[i]))
        violated(system, `a forged callback (${this.forgery}) changed order ${victim.outTradeNo}`);
    });
    return victims;
  }
}

const REFUND_FORGERIES = ['wrong-key', 'tampered', 'foreign-merchant', 'foreign-app'] as const;
type RefundForgery = (typeof REFUND_FORGERIES)[number];

/** A refund callback nobody with the API key made (or one moved to another merchant or app): nothing changes. */
class ForgedRefundCallback extends MoneyCommand {
  protected readonly name = 'forged-refund-callback';
  constructor(
    readonly index: number,
    readonly forgery: RefundForgery,
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index} ${this.forgery}`;
  }
  private forge(system: System, order: ModelOrder): string {
    const genuine = system.a.capture.refunds(order.outTradeNo).at(-1)?.body;
    const made = (apiKey: string) =>
      encryptedRefundNotification({
        apiKey,
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        fields: {
          out_trade_no: order.outTradeNo,
          out_refund_no: `forged${order.outTradeNo.slice(-8)}`,
          total_fee: String(order.totalFee),
          refund_fee: String(order.totalFee),
        },
      });
    switch (this.forgery) {
      case 'wrong-key':
        return made(OTHER_KEY);
      case 'tampered': {
        // One base64 character of the ciphertext changed: the padding or the fields no longer read.
        const document = genuine ?? made(OTHER_KEY);
        return document.replace(/<req_info><!\[CDATA\[(.)/, (_m, first: string) => `<req_info><![CDATA[${first === 'A' ? 'B' : 'A'}`);
      }
      case 'foreign-merchant':
        return (genuine ?? made(OTHER_KEY)).replace(`<mch_id><![CDATA[${TEST_MERCHANT.mchId}]]>`, '<mch_id><![CDATA[10000999]]>');
      case 'foreign-app':
        return (genuine ?? made(OTHER_KEY)).replace(`<appid><![CDATA[${TEST_MERCHANT.appId}]]>`, '<appid><![CDATA[wx0000000000000bad]]>');
    }
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const order = pick(model.a.orders, this.index);
    const before = await system.a.reader.get(order.outTradeNo);
    const result = await system.a.product.api.refundCallback(this.forge(system, order));
    if (result.status >= 500 || result.returnCode === 'SUCCESS')
      violated(system, `a forged refund callback (${this.forgery}) of ${order.outTradeNo} was answered ${result.status} ${result.raw}`);
    if (!isDeepStrictEqual(before, await system.a.reader.get(order.outTradeNo)))
      violated(system, `a forged refund callback (${this.forgery}) changed order ${order.outTradeNo}`);
    return [order];
  }
}

/** A payer polls GET /orders/{outTradeNo} (which may ask WeChat Pay). */
class Poll extends MoneyCommand {
  protected readonly name = 'poll';
  constructor(
    readonly index: number,
    fault?: Fault,
  ) {
    super(fault);
  }
  protected detail(): string {
    return `#${this.index}`;
  }
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const order = pick(model[this.on].orders, this.index);
    const result = await system[this.on].product.api.get(order.outTradeNo);
    answered(system, `poll of ${order.outTradeNo}`, result.status, faulted, result.raw);
    if (result.status < 500 && result.status !== 200)
      violated(system, `poll of ${order.outTradeNo} answered ${result.status}: ${result.raw}`);
    return [order];
  }
}

async function recover(system: System, d: Deployment, faulted: () => boolean): Promise<void> {
  try {
    await d.product.recoverOrders({} as ScheduledEvent);
  } catch (error) {
    if (!faulted()) violated(system, `recovery of ${d.name.toUpperCase()} failed with no fault injected: ${String(error)}`);
  }
}

/** A deployment's recovery schedule runs (orders due, refunds due, the outbox sweep). */
class Recover extends AnyTimeCommand {
  protected readonly name = 'recovery';
  protected async act(_model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    await recover(system, system[this.on], faulted);
    return 'all';
  }
}

/** Time passes on the product's clock (past the next check, or past expiry: recovery then closes). */
class PassTime extends AnyTimeCommand {
  protected readonly name = 'time';
  constructor(readonly ms: number) {
    super();
  }
  protected override detail(): string {
    return `+${Math.round(this.ms / 1000)}s`;
  }
  protected async act(_model: Model, system: System): Promise<Touched> {
    system.clock.offsetMs += this.ms;
    return [];
  }
}

/** Orders past expiry are closed: time passes beyond it and A's recovery schedule runs (B's runs on its own). */
class CloseExpired extends AnyTimeCommand {
  protected readonly name = 'close';
  protected async act(_model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    system.clock.offsetMs += 2 * HOUR + 5 * 60_000;
    await recover(system, system.a, faulted);
    return 'all';
  }
}

const REFUND_SIZES = ['one-fen', 'half', 'rest', 'whole', 'over'] as const;
/** `mirror`: the amount A asked for under the same key (B repeating A's request for its own order), else a fen. */
type RefundSize = (typeof REFUND_SIZES)[number] | 'mirror';

function refundFeeOf(size: RefundSize, order: ModelOrder, stored: Order | undefined, mirrored?: number): number {
  const left = order.totalFee - (stored?.refundHeldFee ?? 0);
  switch (size) {
    case 'mirror':
      return mirrored ?? 1;
    case 'one-fen':
      return 1;
    case 'half':
      return Math.max(1, Math.floor(order.totalFee / 2));
    case 'rest':
      return Math.max(1, left);
    case 'whole':
      return order.totalFee;
    case 'over':
      return order.totalFee + 1;
  }
}

/** A run's refund idempotency key `k` of an order: each deployment keys its orders' refunds with their own four. */
const refundKeyOf = (model: Readonly<Model>, order: ModelOrder, k: number) => `model${model.run}-${order.outTradeNo}-${k}`;

/**
 * The merchant's server asks for refunds (one, or several at once), each under its idempotency key:
 * one of the order's own keys, or (`crossKeys`) one the other deployment sent, as the same merchant
 * server logic running against two deployments would send the same keys for other orders: first the
 * keys of its refunds WeChat Pay accepted, this deployment has not sent yet; else, before it sent any,
 * its key `k` of its order `keyOwner` (which it may send later).
 */
class Refund extends MoneyCommand {
  protected readonly name: string;
  constructor(
    readonly index: number,
    readonly sizes: RefundSize[],
    readonly keys: number[],
    fault?: Fault,
    readonly crossKeys?: { keyOwner: number },
  ) {
    super(fault);
    this.name = crossKeys ? 'refund-other-key' : 'refund';
  }
  protected detail(): string {
    const keys = this.sizes.map((size, i) => `${size}/key${this.keys[i]}`).join(' ∥ ');
    return `#${this.index} ${keys}${this.crossKeys ? ` (the other's key #${this.crossKeys.keyOwner})` : ''}`;
  }
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const mine = model[this.on];
    const theirs = model[otherThan(this.on)];
    const d = system[this.on];
    // Three refunds in four are of an order paid (recorded PAID here with some left, else paid at
    // WeChat Pay), when there is one; the rest of any order (most refused: not paid, or not yet recorded).
    const paid = this.index % 4 === 0 ? [] : mine.orders.filter((candidate) => candidate.paid);
    const stored = await Promise.all(paid.map((candidate) => d.reader.get(candidate.outTradeNo)));
    const recorded = paid.filter((candidate, i) => stored[i]?.status === 'PAID' && (stored[i]?.refundHeldFee ?? 0) < candidate.totalFee);
    const order = pick(recorded.length > 0 ? recorded : paid.length > 0 ? paid : mine.orders, this.index);
    const keyOf = (k: number, i: number): string => {
      if (!this.crossKeys) return refundKeyOf(model, order, k);
      const sent = [...theirs.refundKeys].filter(([key]) => !mine.refundKeys.has(key));
      const accepted = sent.filter(([, bound]) => bound.atWechatPay);
      const choice = accepted.length > 0 ? accepted : sent;
      if (choice.length > 0) return choice[(this.crossKeys.keyOwner + i) % choice.length]![0];
      return theirs.orders.length > 0 ? refundKeyOf(model, pick(theirs.orders, this.crossKeys.keyOwner), k) : refundKeyOf(model, order, k);
    };
    const before = await d.reader.get(order.outTradeNo);
    const requests = this.sizes.map((size, i) => {
      const idempotencyKey = keyOf(this.keys[i]!, i);
      return { refundFee: refundFeeOf(size, order, before, theirs.refundKeys.get(idempotencyKey)?.refundFee), idempotencyKey };
    });
    const results = await Promise.all(requests.map((request) => d.product.api.refund(order.outTradeNo, request)));
    results.forEach((result: HttpResult, i) => {
      const request = requests[i]!;
      answered(system, `refund ${JSON.stringify(request)}`, result.status, faulted, result.raw);
      if (result.status < 300 && theirs.refundKeys.get(request.idempotencyKey)?.atWechatPay) {
        system.figures.shared.keysTaken += 1;
        if (this.fault?.on === 'wechatpay' && this.fault.endpoint === 'refund' && this.fault.count >= 3)
          system.figures.shared.leftToRecovery += 1;
      }
      if (
        result.status >= 500 &&
        this.fault?.on === 'dynamodb' &&
        this.fault.orderUpdate &&
        theirs.refundKeys.get(request.idempotencyKey)?.atWechatPay
      ) {
        system.figures.shared.keysTaken += 1;
        system.figures.shared.leftToRecovery += 1;
      }
      const earlier = mine.refundKeys.get(request.idempotencyKey);
      // A key sent for two orders: the order is part of the request.
      const sent = JSON.stringify({ outTradeNo: order.outTradeNo, ...request });
      if (result.status < 300 && request.refundFee > order.totalFee)
        violated(system, `a refund of ${request.refundFee} fen of a ${order.totalFee}-fen order was accepted`);
      if (result.status < 300 && earlier && earlier.sent !== sent && !earlier.unsure)
        violated(system, `idempotency key ${request.idempotencyKey} reused for another refund was accepted`);
      if (result.status < 500 && result.status >= 300 && result.status !== 400 && result.status !== 409)
        violated(system, `refund answered ${result.status}: ${result.raw}`);
      // A request that failed may or may not have bound its key; one that was answered did.
      if (result.status < 300 || (result.status === 409 && !earlier)) {
        const atWechatPay = result.status < 300 && result.body.refundId !== undefined;
        mine.refundKeys.set(
          request.idempotencyKey,
          earlier && result.status >= 300 ? earlier : { sent, refundFee: request.refundFee, atWechatPay },
        );
      } else if (result.status >= 500 && !earlier)
        mine.refundKeys.set(request.idempotencyKey, { sent, refundFee: request.refundFee, unsure: true });
    });
    return [order];
  }
}

async function deliverRefundCallbacks(system: System, order: ModelOrder, copies: number, faulted: () => boolean): Promise<void> {
  const d = system[order.deployment];
  for (const captured of d.capture.refunds(order.outTradeNo)) {
    const results = await Promise.all(Array.from({ length: copies }, () => d.product.api.refundCallback(captured.body)));
    for (const result of results) {
      answered(system, `refund callback ${captured.outRefundNo}`, result.status, faulted, result.raw);
      if (faulted() || result.returnCode === 'SUCCESS') continue;
      // Before the payment is recorded here, FAIL asks WeChat Pay to call again (recovery records it meanwhile).
      const stored = await d.reader.get(order.outTradeNo);
      if (PAID.has(stored?.status ?? ''))
        violated(system, `a genuine refund callback of ${captured.outRefundNo} (${captured.refundStatus}) was answered ${result.raw}`);
    }
  }
}

/**
 * Someone refunds by hand in the merchant platform, outside the backend. For B's orders (paid ones,
 * three times in four), under an out_refund_no of A's (`borrowed`), as someone copying a refund number
 * from the other system would: first one of A's refunds that never reached WeChat Pay (PROCESSING
 * with no refund_id: A's recovery will ask refundquery for it), else one A stored for its order
 * `owner`, else the one A derives for that order and one of its keys; dated on the bill day when the
 * order was paid then, so that it is in the bill A reconciles.
 */
class PlatformRefund extends MoneyCommand {
  protected readonly name = 'platform-refund';
  constructor(
    readonly index: number,
    readonly size: RefundSize,
    readonly borrowed?: { owner: number; key: number },
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index} ${this.size}${this.borrowed ? ` as A's refund key${this.borrowed.key} of #${this.borrowed.owner}` : ''}`;
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const d = system[this.on];
    const paid = this.borrowed && this.index % 4 !== 0 ? model[this.on].orders.filter((candidate) => candidate.paid) : [];
    const order = pick(paid.length > 0 ? paid : model[this.on].orders, this.index);
    let outRefundNo: string | undefined;
    let mirrored: number | undefined;
    if (this.borrowed && model.a.orders.length > 0) {
      const owner = pick(model.a.orders, this.borrowed.owner);
      const ofA = await Promise.all(model.a.orders.map((candidate) => system.a.reader.get(candidate.outTradeNo)));
      const api = (stored: Order | undefined) => Object.values(stored?.refunds ?? {}).filter((r) => r.origin === 'api');
      const unsent = ofA.flatMap((stored) => api(stored).filter((r) => r.status === 'PROCESSING' && !r.refundId));
      const hers = unsent.length > 0 ? unsent : api(ofA[model.a.orders.indexOf(owner)]);
      const taken = hers[this.borrowed.key % Math.max(hers.length, 1)];
      outRefundNo = taken?.outRefundNo ?? derivedRefundNo(system.a.product, owner, refundKeyOf(model, owner, this.borrowed.key));
      mirrored = taken?.refundFee ?? model.a.refundKeys.get(refundKeyOf(model, owner, this.borrowed.key))?.refundFee;
    }
    const response = await fetch(`${system.stack.emulator.url}/__sim/refund`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        out_trade_no: order.outTradeNo,
        refund_fee: refundFeeOf(this.size, order, undefined, mirrored),
        notify_url: d.capture.refundNotifyUrl,
        ...(outRefundNo ? { out_refund_no: outRefundNo } : {}),
        ...(this.on === 'b' && order.billDate ? { refund_time: `${order.billDate}130000` } : {}),
      }),
    });
    if (response.status !== 200 && response.status !== 409)
      violated(system, `the emulator's platform refund answered ${response.status}: ${await response.text()}`);
    if (response.status === 200 && outRefundNo) system.figures.shared.platformUnderTheirNumber += 1;
    return [order];
  }
}

/** The out_refund_no a deployment derives for a refund of its order under an idempotency key. */
function derivedRefundNo(product: Product, order: ModelOrder, idempotencyKey: string): string {
  return product.refunds.outRefundNoFor(order.outTradeNo, idempotencyKey);
}

/** How WeChat Pay ends the refunds it accepts from now on. */
class RefundOutcome extends AnyTimeCommand {
  protected readonly name = 'refund-outcome';
  constructor(readonly outcome: 'SUCCESS' | 'CHANGE' | 'REFUNDCLOSE') {
    super();
  }
  protected override detail(): string {
    return this.outcome;
  }
  protected async act(_model: Model, system: System): Promise<Touched> {
    await system.stack.sim.faults({ refundOutcome: this.outcome });
    return [];
  }
}

/** What a reconciliation report item records (the rest only report). */
const RECORDED_FROM_BILL = new Set(['REPAIRED', 'REFUND_REPAIRED']);

/**
 * POST /merchant/reconciliations for the run's bill day: payments the bill has are recorded here.
 * The bill is the merchant's: it has the other deployment's payments and refunds too, which must be
 * reported (UNKNOWN_ORDER for a payment), never recorded as this deployment's.
 */
class Reconcile extends AnyTimeCommand {
  protected readonly name = 'reconcile';
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const d = system[this.on];
    const event = apiEvent({
      method: 'POST',
      path: '/merchant/reconciliations',
      body: JSON.stringify({ billDate: model.billDate }),
      authorization: MERCHANT_AUTHORIZATION,
    });
    const result = await d.product.runReconciliation(event);
    const raw = String(result.body);
    const what = `${this.on.toUpperCase()}'s reconciliation of ${model.billDate}`;
    answered(system, what, result.statusCode ?? 0, faulted, raw);
    if ((result.statusCode ?? 0) >= 500) return 'all';
    if (result.statusCode !== 200) violated(system, `${what} answered ${result.statusCode}: ${raw}`);
    type Item = { kind: string; outTradeNo: string; outRefundNo?: string };
    const report = JSON.parse(raw) as { items: Item[]; nextCursor?: string };
    // The answer has the report's first page: the rest are read from GET /merchant/reconciliations/{billDate}.
    for (let cursor = report.nextCursor; cursor !== undefined;) {
      const path = `/merchant/reconciliations/${model.billDate}`;
      const page = await d.product.getReconciliation({
        ...apiEvent({ method: 'GET', path, pathParameters: { billDate: model.billDate }, authorization: MERCHANT_AUTHORIZATION }),
        rawQueryString: `cursor=${encodeURIComponent(cursor)}&limit=1000`,
      });
      if (page.statusCode !== 200) violated(system, `${what}: its report's next page answered ${page.statusCode}: ${String(page.body)}`);
      const next = JSON.parse(String(page.body)) as { items: Item[]; nextCursor?: string };
      report.items.push(...next.items);
      cursor = next.nextCursor;
    }
    const ours = new Set(model[this.on].orders.map((order) => order.outTradeNo));
    const theirs = new Set(model[otherThan(this.on)].orders.map((order) => order.outTradeNo));
    // A payment orderquery could not confirm (an injected fault) is left for the next run.
    const unconfirmed = new Set(report.items.filter((item) => item.kind === 'UNCONFIRMED' && faulted()).map((item) => item.outTradeNo));
    for (const item of report.items) {
      if (ours.has(item.outTradeNo) && !RECORDED_FROM_BILL.has(item.kind) && !unconfirmed.has(item.outTradeNo))
        violated(system, `${what} reported ${item.kind} for ${item.outTradeNo}`);
      if (theirs.has(item.outTradeNo) && RECORDED_FROM_BILL.has(item.kind)) {
        violated(
          system,
          `${what} recorded the other deployment's ${item.outRefundNo ? `refund ${item.outRefundNo}` : 'payment'} of ${item.outTradeNo} (${item.kind})`,
        );
      }
    }
    for (const order of model[this.on].orders) {
      if (order.billDate !== model.billDate || unconfirmed.has(order.outTradeNo)) continue;
      const stored = await d.reader.get(order.outTradeNo);
      if (stored?.status !== 'PAID' && stored?.status !== 'REFUNDED')
        violated(system, `${what} left ${order.outTradeNo}, in the bill, ${stored?.status}`);
    }
    for (const order of model[otherThan(this.on)].orders) {
      if (order.billDate !== model.billDate) continue;
      if (!report.items.some((item) => item.outTradeNo === order.outTradeNo && item.kind === 'UNKNOWN_ORDER' && !item.outRefundNo)) {
        violated(system, `${what} did not report the other deployment's payment of ${order.outTradeNo}, in the bill, as UNKNOWN_ORDER`);
      }
      if (await d.reader.get(order.outTradeNo)) violated(system, `${what} stored the other deployment's order ${order.outTradeNo}`);
    }
    return 'all';
  }
}

/**
 * A genuine callback about one deployment's order reaches the other (the merchant platform's refund
 * notify URL is one per merchant; a notify URL copied into the other's settings): it records nothing there.
 */
class CrossCallback extends MoneyCommand {
  protected readonly name = 'cross-callback';
  constructor(
    readonly of: 'payment' | 'refunds',
    readonly index: number,
  ) {
    super();
  }
  protected detail(): string {
    return `${this.of} of #${this.index} to ${otherThan(this.on).toUpperCase()}`;
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const order = pick(model[this.on].orders, this.index);
    const from = system[this.on];
    const to = system[otherThan(this.on)];
    const documents =
      this.of === 'payment'
        ? from.capture.payments(order.outTradeNo).slice(-1)
        : from.capture.refunds(order.outTradeNo).map((captured) => captured.body);
    for (const document of documents) {
      const result = await (this.of === 'payment' ? to.product.api.callback(document) : to.product.api.refundCallback(document));
      if (result.status >= 500)
        violated(
          system,
          `${to.name.toUpperCase()} answered ${result.status} to a ${this.of} callback of ${order.outTradeNo}: ${result.raw}`,
        );
      if (await to.reader.get(order.outTradeNo))
        violated(
          system,
          `${to.name.toUpperCase()} recorded a ${this.of} callback of ${order.outTradeNo}, an order of ${from.name.toUpperCase()}`,
        );
    }
    return [order];
  }
}

// ---------------------------------------------------------------------------------------------------
// The command mix.

const index = fc.nat({ max: 1_000 });

const createArb = fc
  .tuple(
    fc.constantFrom('frontend' as const, 'merchant' as const),
    fc.constantFrom('NATIVE' as const, 'JSAPI' as const),
    fc.uniqueArray(fc.record({ sku: fc.nat({ max: SKUS.length - 1 }), quantity: fc.integer({ min: 1, max: 3 }) }), {
      minLength: 1,
      maxLength: 2,
      selector: (line) => line.sku,
    }),
    fc.constantFrom(1, 2, 100, 2_599, 99_999),
    fc.option(fc.nat({ max: 2 }), { freq: 2 }),
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('gift', 'a&out_trade_no=1', 'total_fee=1') },
    ),
    faultArb,
  )
  .map(
    ([from, tradeType, lines, fee, key, attach, fault]) => new CreateOrder(from, tradeType, lines, fee, key ?? undefined, attach, fault),
  );

const refundArb = (fault: fc.Arbitrary<Fault | undefined>) =>
  fc.tuple(index, fc.array(fc.tuple(fc.constantFrom(...REFUND_SIZES), fc.nat({ max: 3 })), { minLength: 1, maxLength: 2 }), fault).map(
    ([i, asks, fault]) =>
      new Refund(
        i,
        asks.map(([size]) => size),
        asks.map(([, key]) => key),
        fault,
      ),
  );

/**
 * A refund under one of the other deployment's keys, of its amount often (`mirror`); two times in
 * three, a fault that leaves it PROCESSING without WeChat Pay having it, for recovery's refundquery:
 * WeChat Pay's SYSTEMERROR on every attempt, or DynamoDB's answer to its reservation lost (the write
 * applied, the request answered 503 before WeChat Pay is asked).
 */
const crossKeyRefundArb = fc
  .tuple(
    index,
    fc.oneof({ weight: 1, arbitrary: fc.constant<RefundSize>('mirror') }, { weight: 1, arbitrary: fc.constantFrom(...REFUND_SIZES) }),
    fc.nat({ max: 3 }),
    index,
    fc.oneof(
      { weight: 1, arbitrary: fc.constant<Fault>({ on: 'wechatpay', endpoint: 'refund', count: 3 }) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(...FAULT_KINDS)
          .map((kind): Fault => ({ on: 'dynamodb', kind, timing: 'after', nth: 1, orderUpdate: true })),
      },
      { weight: 1, arbitrary: faultArb },
    ),
  )
  .map(([i, size, key, keyOwner, fault]) => new Refund(i, [size], [key], fault, { keyOwner }));

/** Deployment A: every kind of command. */
const A_COMMANDS: Array<fc.WeightedArbitrary<fc.AsyncCommand<Model, System>>> = [
  { weight: 6, arbitrary: createArb },
  { weight: 5, arbitrary: fc.tuple(index, fc.boolean(), fc.boolean()).map(([i, earlier, calledBack]) => new Pay(i, earlier, calledBack)) },
  {
    weight: 5,
    arbitrary: fc
      .tuple(index, fc.integer({ min: 1, max: 3 }), faultArb)
      .map(([i, copies, fault]) => new DeliverCallbacks('payment', i, copies, fault)),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(index, index, fc.constantFrom(...FORGERIES)).map(([i, other, forgery]) => new ForgedPayment(i, other, forgery)),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(index, fc.constantFrom(...REFUND_FORGERIES)).map(([i, forgery]) => new ForgedRefundCallback(i, forgery)),
  },
  { weight: 3, arbitrary: fc.tuple(index, faultArb).map(([i, fault]) => new Poll(i, fault)) },
  { weight: 2, arbitrary: faultArb.map((fault) => new Recover(fault)) },
  { weight: 2, arbitrary: fc.constantFrom(6_000, 61_000, 31 * 60_000).map((ms) => new PassTime(ms)) },
  { weight: 1, arbitrary: faultArb.map((fault) => new CloseExpired(fault)) },
  { weight: 5, arbitrary: refundArb(faultArb) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(index, fc.integer({ min: 1, max: 2 }), faultArb)
      .map(([i, copies, fault]) => new DeliverCallbacks('refunds', i, copies, fault)),
  },
  { weight: 1, arbitrary: fc.tuple(index, fc.constantFrom(...REFUND_SIZES)).map(([i, size]) => new PlatformRefund(i, size)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('SUCCESS' as const, 'CHANGE' as const, 'REFUNDCLOSE' as const).map((outcome) => new RefundOutcome(outcome)),
  },
  { weight: 1, arbitrary: faultArb.map((fault) => new Reconcile(fault)) },
];

/**
 * Deployment B, on the same merchant: its orders made, paid (on the bill day too, for A's bill) and
 * mostly called back at once, called back again, polled and refunded; both deployments' refunds under
 * the other's keys (with its amounts, often); B's recovery; B's platform refunds under A's refund
 * numbers; B's reconciliation; and genuine callbacks sent to the wrong deployment.
 */
const B_COMMANDS: Array<fc.WeightedArbitrary<fc.AsyncCommand<Model, System>>> = [
  { weight: 3, arbitrary: createArb.map((command) => command.by('b')) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(index, fc.boolean(), fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }))
      .map(([i, earlier, calledBack]) => new Pay(i, earlier, calledBack).by('b')),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(index, fc.integer({ min: 1, max: 2 }), faultArb)
      .map(([i, copies, fault]) => new DeliverCallbacks('payment', i, copies, fault).by('b')),
  },
  { weight: 1, arbitrary: fc.tuple(index, faultArb).map(([i, fault]) => new Poll(i, fault).by('b')) },
  { weight: 3, arbitrary: refundArb(faultArb).map((command) => command.by('b')) },
  // Each deployment's server sends the other's refund keys, with SYSTEMERROR often: recovery then asks refundquery.
  { weight: 4, arbitrary: crossKeyRefundArb.map((command) => command.by('b')) },
  { weight: 3, arbitrary: crossKeyRefundArb },
  {
    weight: 2,
    arbitrary: fc
      .tuple(index, fc.integer({ min: 1, max: 2 }), faultArb)
      .map(([i, copies, fault]) => new DeliverCallbacks('refunds', i, copies, fault).by('b')),
  },
  { weight: 2, arbitrary: faultArb.map((fault) => new Recover(fault).by('b')) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(index, fc.constantFrom<RefundSize>('mirror', 'one-fen', 'rest'), index, fc.nat({ max: 3 }))
      .map(([i, size, owner, key]) => new PlatformRefund(i, size, { owner, key }).by('b')),
  },
  { weight: 1, arbitrary: faultArb.map((fault) => new Reconcile(fault).by('b')) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('a' as const, 'b' as const), fc.constantFrom('payment' as const, 'refunds' as const), index)
      .map(([from, of, i]) => new CrossCallback(of, i).by(from)),
  },
];

export const COMMANDS: Array<fc.Arbitrary<fc.AsyncCommand<Model, System>>> = [fc.oneof(...A_COMMANDS, ...B_COMMANDS)];

// ---------------------------------------------------------------------------------------------------
// Invariants.

const PAID = new Set(['PAID', 'REFUNDED']);
const GIVES_BACK = new Set(['FAILED', 'REFUNDCLOSE']);

async function simOrder(system: System, outTradeNo: string): Promise<SimOrder | undefined> {
  const response = await fetch(`${system.stack.emulator.url}/__sim/orders/${outTradeNo}`);
  return response.status === 200 ? ((await response.json()) as SimOrder) : undefined;
}

/**
 * Checks one order, in the deployment that made it, against WeChat Pay's record of that very order
 * (its out_trade_no; its transaction_id; its refunds, by out_refund_no and refund_id) and the events;
 * `final` once the run has settled.
 */
async function checkOrder(model: ModelOrder, system: System, phase: 'step' | 'final'): Promise<void> {
  system.figures.invariantChecks += 1;
  const no = model.outTradeNo;
  const d = system[model.deployment];
  const [stored, wechat] = await Promise.all([d.reader.get(no), simOrder(system, no)]);
  const fail = (what: string) => violated(system, `${model.deployment.toUpperCase()}'s ${no}: ${what}`);
  if (!stored) return fail('the order answered to its creator is not stored');
  if (stored.totalFee !== model.totalFee) fail(`stored amount ${stored.totalFee}, created ${model.totalFee}`);
  const wechatPaid = wechat?.trade_state === 'SUCCESS';
  if (model.paid !== wechatPaid) fail(`the emulator says ${wechat?.trade_state}, the model ${model.paid ? 'paid' : 'unpaid'}`);
  const flagged = Object.keys(stored.review ?? {}).length > 0;
  // Money is recorded only where WeChat Pay holds it, and exactly once.
  if (PAID.has(stored.status) && (!wechatPaid || stored.transactionId !== wechat?.transaction_id))
    fail(`${stored.status} here, ${wechat?.trade_state} ${wechat?.transaction_id} at WeChat Pay`);
  if ((d.paidWrites.get(no) ?? 0) > 1) fail(`recorded PAID ${d.paidWrites.get(no)} times`);
  if (wechatPaid && (stored.status === 'CLOSED' || stored.status === 'FAILED') && !flagged)
    fail(`paid at WeChat Pay but ${stored.status} here with no review flag`);
  if (stored.status === 'CLOSED' && wechat?.trade_state !== 'CLOSED') fail(`CLOSED here, ${wechat?.trade_state} at WeChat Pay`);
  // Refunds never exceed the amount, here or at WeChat Pay, and the two agree.
  const refunds = Object.values(stored.refunds ?? {});
  const held = refunds.filter((r) => !GIVES_BACK.has(r.status)).reduce((sum, r) => sum + r.refundFee, 0);
  const refunded = refunds.filter((r) => r.status === 'SUCCESS').reduce((sum, r) => sum + r.refundFee, 0);
  if ((stored.refundHeldFee ?? 0) !== held) fail(`refundHeldFee ${stored.refundHeldFee}, its refunds hold ${held}`);
  if ((stored.refundedFee ?? 0) !== refunded) fail(`refundedFee ${stored.refundedFee}, its SUCCESS refunds ${refunded}`);
  if (refunded > stored.totalFee) fail(`refunded ${refunded} of ${stored.totalFee}`);
  // Only money WeChat Pay moved without this backend's reservation (a refund made in the merchant
  // platform, or one it refused and then made) may hold more than the amount, and then it is flagged.
  const refundFlagged = Object.values(stored.review ?? {}).some((flag) => flag.outRefundNo !== undefined);
  // WeChat Pay answered about another order's refund under one of this order's refund numbers: never
  // recorded, the refund left as it was for a person. The flag must be true: WeChat Pay has no refund
  // of this order under that number, and the answer named another order.
  const answeredForAnother = answeredForAnotherOrder(stored);
  for (const flag of Object.values(stored.review ?? {}).filter((candidate) => candidate.reason === 'REFUND_ANSWER_FOR_ANOTHER_ORDER')) {
    if (flag.answeredOutTradeNo === no) fail(`flagged ${flag.reason} for refund ${flag.outRefundNo}, naming this very order`);
    if ((wechat?.refunds ?? []).some((r) => r.out_refund_no === flag.outRefundNo))
      fail(`flagged ${flag.reason} for refund ${flag.outRefundNo}, which WeChat Pay has of this order`);
  }
  if (held > stored.totalFee && !refundFlagged) fail(`refunds hold ${held} of ${stored.totalFee}`);
  if (PAID.has(stored.status) && (stored.status === 'REFUNDED') !== refunded >= stored.totalFee)
    fail(`${stored.status} with ${refunded} of ${stored.totalFee} refunded`);
  const atWechat = wechat?.refunds ?? [];
  const wechatHeld = atWechat.filter((r) => r.refund_status !== 'REFUNDCLOSE').reduce((sum, r) => sum + r.refund_fee, 0);
  if (wechatHeld > Number(wechat?.total_fee ?? 0)) fail(`WeChat Pay holds refunds of ${wechatHeld} of ${wechat?.total_fee}`);
  for (const here of refunds) {
    // Only this order's refunds at WeChat Pay: one of another order (the other deployment's) under the same out_refund_no is not this one.
    const there = atWechat.find((r) => r.out_refund_no === here.outRefundNo);
    if (['SUCCESS', 'CHANGE', 'REFUNDCLOSE'].includes(here.status) && there?.refund_status !== here.status)
      fail(`refund ${here.outRefundNo} is ${here.status} here, ${there?.refund_status ?? 'no refund of this order'} at WeChat Pay`);
    if (here.refundId !== undefined && there?.refund_id !== here.refundId)
      fail(
        `refund ${here.outRefundNo} carries refund_id ${here.refundId}, WeChat Pay's refund of this order under that number is ${there?.refund_id ?? 'none'}`,
      );
    if (here.status === 'SUCCESS' && there && there.refund_fee !== here.refundFee)
      fail(`refund ${here.outRefundNo} of ${here.refundFee} fen is SUCCESS here, ${there.refund_fee} fen at WeChat Pay`);
    if (here.status === 'FAILED' && there && there.refund_status !== 'REFUNDCLOSE')
      fail(`refund ${here.outRefundNo} is FAILED here, ${there.refund_status} at WeChat Pay`);
    if (phase === 'final' && here.status === 'PROCESSING' && !answeredForAnother.has(here.outRefundNo))
      fail(`refund ${here.outRefundNo} still PROCESSING after recovery`);
  }
  if (phase === 'final') {
    if (answeredForAnother.size > 0) system.figures.shared.answersAboutAnotherOrder += 1;
    for (const there of atWechat) {
      const here = stored.refunds?.[there.out_refund_no];
      if (!here || here.status !== there.refund_status)
        fail(`refund ${there.out_refund_no} is ${there.refund_status} at WeChat Pay, ${here?.status ?? 'unknown'} here`);
    }
    const wechatRefunded = atWechat.filter((r) => r.refund_status === 'SUCCESS').reduce((sum, r) => sum + r.refund_fee, 0);
    if (refunded !== wechatRefunded) fail(`refunded ${refunded} here, WeChat Pay refunded ${wechatRefunded} of this order`);
    if (stored.status === 'PENDING') fail('still PENDING after expiry and recovery');
    if (wechatPaid && !PAID.has(stored.status) && !flagged) fail(`paid at WeChat Pay, ${stored.status} here`);
    if (wechatPaid && d.paidWrites.get(no) !== 1 && !flagged)
      fail(`paid once at WeChat Pay, recorded PAID ${d.paidWrites.get(no) ?? 0} times`);
    if ((stored.outbox ?? []).length > 0) fail(`${stored.outbox?.length} events never confirmed published`);
    // Nothing about it reached the other deployment's table.
    if (await system[otherThan(model.deployment)].reader.get(no)) fail(`recorded by the other deployment too`);
  }
  checkEvents(stored, d, phase, fail);
}

/** The refunds of an order WeChat Pay answered about with another order's refund (flagged, left as they were). */
function answeredForAnotherOrder(stored: Order): Set<string> {
  return new Set(
    Object.values(stored.review ?? {}).flatMap((flag) =>
      flag.reason === 'REFUND_ANSWER_FOR_ANOTHER_ORDER' && flag.outRefundNo ? [flag.outRefundNo] : [],
    ),
  );
}

/** One event id per transition, none for a transition that did not happen; every one present at the end. */
function checkEvents(stored: Order, d: Deployment, phase: 'step' | 'final', fail: (what: string) => never): void {
  // Each deployment publishes on its own bus.
  const events = d.events.events({ outTradeNo: stored.outTradeNo });
  // EventBridge gives every delivery its own id; the transition's id is detail.eventId.
  const ids = (type: string) =>
    new Set(events.filter((event) => event['detail-type'] === type).map((event) => (event.detail as { eventId: string }).eventId));
  const paid = ids('Order Paid').size;
  const closed = ids('Order Closed').size;
  const wholly = ids('Order Refunded').size;
  if (paid > 1 || closed > 1 || wholly > 1) fail(`event ids: ${paid} Order Paid, ${closed} Order Closed, ${wholly} Order Refunded`);
  const succeeded = new Set(
    events
      .filter((event) => event['detail-type'] === 'Refund Succeeded')
      .map((event) => (event.detail as { refund?: { outRefundNo?: string } }).refund?.outRefundNo),
  );
  for (const no of succeeded)
    if (stored.refunds?.[no ?? '']?.status !== 'SUCCESS') fail(`Refund Succeeded published for ${no}, which is not SUCCESS here`);
  if (paid === 1 && !stored.transactionId) fail('Order Paid published for an order with no payment');
  if (closed === 1 && stored.status !== 'CLOSED' && Object.keys(stored.review ?? {}).length === 0)
    fail(`Order Closed published, ${stored.status} here, no review flag`);
  if (phase === 'final') {
    const wantPaid = PAID.has(stored.status) ? 1 : 0;
    if (paid !== wantPaid && !(stored.transactionId && paid === 1)) fail(`${paid} Order Paid events for a ${stored.status} order`);
    if (stored.status === 'CLOSED' && closed !== 1) fail('CLOSED with no Order Closed event');
    if ((stored.status === 'REFUNDED') !== (wholly === 1)) fail(`${wholly} Order Refunded events for a ${stored.status} order`);
    const successes = Object.values(stored.refunds ?? {}).filter((r) => r.status === 'SUCCESS');
    if (successes.length !== succeeded.size) fail(`${successes.length} SUCCESS refunds, ${succeeded.size} Refund Succeeded events`);
    const flags = Object.keys(stored.review ?? {}).length;
    if (ids('Payment Needs Review').size !== flags)
      fail(`${flags} review flags, ${ids('Payment Needs Review').size} Payment Needs Review events`);
  }
}

async function checkOrders(_model: Model, system: System, orders: readonly ModelOrder[], phase: 'step' | 'final'): Promise<void> {
  for (const order of orders) await checkOrder(order, system, phase);
}

// ---------------------------------------------------------------------------------------------------
// The end of a run: WeChat Pay's retries and the schedules catch up, then everything must agree.

export async function settle(model: Model, system: System): Promise<void> {
  await system.stack.sim.faults({ systemError: NO_SYSTEM_ERRORS, refundOutcome: 'SUCCESS' });
  const never = () => false;
  for (let round = 0; round < 8; round += 1) {
    system.clock.offsetMs += 2 * HOUR + 10 * 60_000;
    await recover(system, system.a, never);
    await recover(system, system.b, never);
    // Refunds end at the emulator a moment after they are accepted (10 s scaled); WeChat Pay then
    // calls back, and retries until answered: every refund callback reaches the product at least once.
    await sleep(25);
    for (const order of allOrders(model)) await deliverRefundCallbacks(system, order, 1, never);
    if (await settled(model, system)) break;
  }
  await checkOrders(model, system, allOrders(model), 'final');
}

async function settled(model: Model, system: System): Promise<boolean> {
  for (const order of allOrders(model)) {
    const [stored, wechat] = await Promise.all([system[order.deployment].reader.get(order.outTradeNo), simOrder(system, order.outTradeNo)]);
    if (!stored || stored.status === 'PENDING' || (stored.outbox ?? []).length > 0) return false;
    const leftForReview = answeredForAnotherOrder(stored);
    if (Object.values(stored.refunds ?? {}).some((r) => r.status === 'PROCESSING' && !leftForReview.has(r.outRefundNo))) return false;
    if (
      (wechat?.refunds ?? []).some((r) => r.refund_status === 'PROCESSING' || stored.refunds?.[r.out_refund_no]?.status !== r.refund_status)
    )
      return false;
  }
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------
// The runner.

export interface ModelRunOptions {
  /** Stop once this many commands have run (whole runs: a little more). */
  commands: number;
  /** Commands per run, at most. */
  maxCommands: number;
  seed?: number;
  /** fast-check's replay path of a failure (with its seed). */
  path?: string;
  /** Called after each batch of runs, for progress. */
  progress?: (figures: Figures) => void;
}

/** Runs batches of model runs until `commands` have run or one fails; answers the figures and the failure. */
export async function runMoneyModel(
  system: System,
  options: ModelRunOptions,
): Promise<{ figures: Figures; seeds: number[]; failure?: string }> {
  const { figures } = system;
  const seeds: number[] = [];
  let seed = options.seed ?? Date.now() ^ (Math.random() * 0x7fffffff);
  const property = fc.asyncProperty(fc.commands(COMMANDS, { maxCommands: options.maxCommands, size: 'max' }), async (commands) => {
    figures.runs += 1;
    const model = newModel(figures.runs);
    system.clock.offsetMs = 0;
    await system.stack.sim.faults({ systemError: NO_SYSTEM_ERRORS, refundOutcome: 'SUCCESS' });
    await fc.asyncModelRun(() => ({ model, real: system }), commands);
    const settling = performance.now();
    await settle(model, system);
    figures.msSettling += performance.now() - settling;
  });
  while (figures.commands < options.commands) {
    seeds.push(seed);
    const result = await fc.check(property, { seed, numRuns: 5, endOnFailure: true, ...(options.path ? { path: options.path } : {}) });
    if (result.failed) {
      const failure = [
        `seed ${result.seed}, path ${result.counterexamplePath}`,
        `replay: MODEL_SEED=${result.seed} MODEL_PATH=${result.counterexamplePath} npm run test:model`,
        `commands: ${result.counterexample?.[0]?.toString() ?? '?'}`,
        `error: ${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)}`,
      ].join('\n');
      return { figures, seeds, failure };
    }
    options.progress?.(figures);
    if (options.path) break;
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_647;
  }
  return { figures, seeds };
}
