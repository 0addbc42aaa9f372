import { isDeepStrictEqual } from 'node:util';
import type { ScheduledEvent } from 'aws-lambda';
import fc from 'fast-check';
import { TEST_MERCHANT } from '../../emulator/test-merchant';
import { handler as recoverOrdersHandler } from '../../functions/recoverOrders';
import { handler as runReconciliationHandler } from '../../functions/runReconciliation';
import type { OrdersContext } from '../../lib/orders/context';
import type { Order } from '../../lib/orders/model';
import { OrderStore } from '../../lib/orders/store';
import { createDocumentClient } from '../../lib/store/dynamo';
import { toBeijingTimestamp } from '../../lib/wechatpay/time';
import { encryptedRefundNotification } from '../../lib/wechatpay/refund-testing';
import { signedNotification } from '../../lib/wechatpay/testing';
import { apiEvent, callback, create, get, MERCHANT_AUTHORIZATION, order as frontendOrder, refund, refundCallback, type HttpResult } from '../support/api';
import type { SimOrder, TestStack } from '../support/stack';
import { countPaidTransitions, FAULT_KINDS, injectFault, type FaultKind } from '../reliability/support';
import { faultPutEvents } from '../support/events';
import type { CallbackCapture } from './capture';

/**
 * A model of the money (docs/internals/guarantees.md: The model of the money): fast-check draws sequences of everything that
 * can happen to orders, runs them against the real handlers, dynalite and the WeChat Pay emulator,
 * and checks after every command, and once more when the run has settled, what must always hold.
 */

/** The catalog the frontend orders buy from (sku → price in fen). */
export const MODEL_CATALOG: Record<string, number> = { 'model-tea': 1_200, 'model-cake': 2_550, 'model-pin': 1 };
const SKUS = Object.keys(MODEL_CATALOG);
const OPENID = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
const OTHER_KEY = 'ffffffffffffffffffffffffffffffff';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** What the model knows of one order it made. */
export interface ModelOrder {
  outTradeNo: string;
  totalFee: number;
  /** The user paid at WeChat Pay (the emulator said so). */
  paid: boolean;
  /** The Beijing day of the payment when it was paid on an earlier day (so it is in that day's bill). */
  billDate?: string;
}

export interface Model {
  run: number;
  orders: ModelOrder[];
  /** Idempotency keys used for orders: the request first sent with each, and its order. */
  orderKeys: Map<string, { request: string; outTradeNo?: string; unsure?: boolean }>;
  /** Idempotency keys used for refunds: the request bound to each (unsure after a failed first request). */
  refundKeys: Map<string, { sent: string; unsure?: boolean }>;
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
  /** Where the time goes: running each kind of command, checking after commands, settling runs. */
  msByCommand: Record<string, number>;
  msChecking: number;
  msSettling: number;
}

/** The system under test, shared by every run. */
export interface System {
  stack: TestStack;
  ctx: OrdersContext;
  /** The model's own reads, on a client of its own: injected faults strike only the product. */
  reader: OrderStore;
  capture: CallbackCapture;
  /** Real time plus this offset is the product's clock (ctx.now). */
  clock: { offsetMs: number };
  paidWrites: Map<string, number>;
  figures: Figures;
}

export function newFigures(): Figures {
  return { runs: 0, commands: 0, byCommand: {}, faultsInjected: 0, faultsFired: 0, invariantChecks: 0, violations: [], msByCommand: {}, msChecking: 0, msSettling: 0 };
}

/** Points the product's clock at `system.clock` and counts every PAID write DynamoDB accepted. */
export function systemOf(stack: TestStack, ctx: OrdersContext, capture: CallbackCapture, figures = newFigures()): System {
  const clock = { offsetMs: 0 };
  ctx.now = () => new Date(Date.now() + clock.offsetMs);
  const reader = new OrderStore(createDocumentClient(stack.dynamoEndpoint), stack.table);
  return { stack, ctx, reader, capture, clock, paidWrites: countPaidTransitions(ctx.store.db).counts, figures };
}

export function newModel(run: number): Model {
  // Paying "yesterday" needs a time_end in the past: each run pays on one of the 20 days before today.
  const billDate = toBeijingTimestamp(new Date(Date.now() - (1 + (run % 20)) * DAY)).slice(0, 8);
  return { run, orders: [], orderKeys: new Map(), refundKeys: new Map(), billDate };
}

// ---------------------------------------------------------------------------------------------------
// Faults injected before a command: a DynamoDB error at the SDK boundary, or WeChat Pay's SYSTEMERROR.

const WECHAT_ENDPOINTS = ['unifiedorder', 'orderquery', 'closeorder', 'refundquery', 'refund'] as const;
const PUT_EVENTS_FAULTS = ['error', 'refused', 'lost answer'] as const;
type Fault =
  | { on: 'dynamodb'; kind: FaultKind; timing: 'before' | 'after'; nth: number }
  | { on: 'wechatpay'; endpoint: (typeof WECHAT_ENDPOINTS)[number]; count: number }
  | { on: 'eventbridge'; kind: (typeof PUT_EVENTS_FAULTS)[number]; times: number };

const faultArb: fc.Arbitrary<Fault | undefined> = fc.oneof(
  { weight: 85, arbitrary: fc.constant(undefined) },
  {
    weight: 10,
    arbitrary: fc.record({ on: fc.constant('dynamodb' as const), kind: fc.constantFrom(...FAULT_KINDS), timing: fc.constantFrom('before' as const, 'after' as const), nth: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 5, arbitrary: fc.record({ on: fc.constant('wechatpay' as const), endpoint: fc.constantFrom(...WECHAT_ENDPOINTS), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 5, arbitrary: fc.record({ on: fc.constant('eventbridge' as const), kind: fc.constantFrom(...PUT_EVENTS_FAULTS), times: fc.integer({ min: 1, max: 2 }) }) },
);

const NO_SYSTEM_ERRORS = Object.fromEntries(WECHAT_ENDPOINTS.map((endpoint) => [endpoint, 0]));

interface ArmedFault {
  /** It struck: the command may then answer 5xx (a storage or WeChat Pay failure, never an EventBridge one). */
  excuses5xx(): boolean;
  struck(): boolean;
  disarm(): Promise<void>;
}

/** Arms a fault before a command. */
async function arm(fault: Fault | undefined, system: System): Promise<ArmedFault> {
  if (!fault) return { excuses5xx: () => false, struck: () => false, disarm: async () => {} };
  system.figures.faultsInjected += 1;
  if (fault.on === 'dynamodb') {
    const injected = injectFault(system.ctx.store.db, { kind: fault.kind, timing: fault.timing, nth: fault.nth });
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
    const injected = await faultPutEvents(system.ctx, fault.kind, fault.times);
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
  if (fault.on === 'dynamodb') return ` !dynamodb(${fault.kind},${fault.timing},#${fault.nth})`;
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
  constructor(readonly fault: Fault | undefined = undefined) {}
  check(model: Readonly<Model>): boolean {
    return model.orders.length > 0;
  }
  protected abstract act(model: Model, system: System, faulted: () => boolean): Promise<Touched>;
  protected abstract detail(): string;

  async run(model: Model, system: System): Promise<void> {
    const { figures } = system;
    figures.commands += 1;
    figures.byCommand[this.name] = (figures.byCommand[this.name] ?? 0) + 1;
    const started = performance.now();
    const armed = await arm(this.fault, system);
    let touched: Touched;
    try {
      touched = await this.act(model, system, armed.excuses5xx);
    } finally {
      if (armed.struck()) figures.faultsFired += 1;
      await armed.disarm();
    }
    const acted = performance.now();
    await checkOrders(model, system, touched === 'all' ? model.orders : touched, 'step');
    figures.msByCommand[this.name] = (figures.msByCommand[this.name] ?? 0) + (acted - started);
    figures.msChecking += performance.now() - acted;
  }

  toString(): string {
    return `${this.name}(${this.detail()})${describeFault(this.fault)}`;
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

const pick = (model: Readonly<Model>, index: number): ModelOrder => model.orders[index % model.orders.length]!;

/** A 5xx is an answer only an injected fault may cause. */
function answered(system: System, what: string, status: number, faulted: () => boolean, raw: string): void {
  if (status >= 500 && !faulted()) violated(system, `${what} answered ${status} with no fault injected: ${raw.slice(0, 300)}`);
}

/** POST /orders (a frontend, by catalog items) or POST /merchant/orders (the merchant's server, by amount). */
class CreateOrder extends AnyTimeCommand {
  protected readonly name = 'create';
  constructor(
    readonly by: 'frontend' | 'merchant',
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
    const what = this.by === 'frontend' ? this.lines.map((l) => `${SKUS[l.sku]}×${l.quantity}`).join('+') : `${this.totalFee} fen`;
    return `${this.by} ${this.tradeType} ${what}${this.key === undefined ? '' : ` key${this.key}`}${this.attach === undefined ? '' : ` attach=${JSON.stringify(this.attach)}`}`;
  }

  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const key = this.key === undefined ? undefined : `model${model.run}-${this.by}-${this.key}`;
    const common = { tradeType: this.tradeType, ...(this.tradeType === 'JSAPI' ? { openid: OPENID } : {}), ...(this.attach === undefined ? {} : { attach: this.attach }), ...(key ? { idempotencyKey: key } : {}) };
    const items = this.lines.map((line) => ({ sku: SKUS[line.sku]!, quantity: line.quantity }));
    const body = this.by === 'frontend' ? { ...common, items } : { ...common, totalFee: this.totalFee, description: 'Model order' };
    const expectedFee = this.by === 'frontend' ? this.lines.reduce((sum, line) => sum + MODEL_CATALOG[SKUS[line.sku]!]! * line.quantity, 0) : this.totalFee;
    const result = this.by === 'frontend' ? await frontendOrder(body) : await create(body);
    answered(system, `create ${this.detail()}`, result.status, faulted, result.raw);
    const request = JSON.stringify(body);
    const earlier = key ? model.orderKeys.get(key) : undefined;
    if (this.attach !== undefined && /[&=]/.test(this.attach)) {
      if (result.status !== 400) violated(system, `an attach with a field boundary was not refused: ${result.status} ${result.raw}`);
      return [];
    }
    if (result.status >= 500) {
      // The order may or may not exist, the key bound or not: only the key can tell, later.
      if (key && !earlier) model.orderKeys.set(key, { request, unsure: true });
      return [];
    }
    if (earlier?.unsure && earlier.request !== request && result.status < 300) {
      // The failed first request never bound its key: this one did.
      model.orderKeys.delete(key!);
    } else if (earlier && earlier.request !== request) {
      if (result.status !== 409) violated(system, `idempotency key ${key} reused for another order was answered ${result.status}: ${result.raw}`);
      return [];
    }
    if (earlier && result.status === 409) return []; // a repeat of an order that expired unpaid
    if (result.status !== 201 && result.status !== 200) violated(system, `create ${this.detail()} answered ${result.status}: ${result.raw}`);
    const { outTradeNo, totalFee } = result.body;
    if (totalFee !== expectedFee) violated(system, `order ${outTradeNo} costs ${totalFee} fen, the model priced it ${expectedFee}`);
    if (earlier?.outTradeNo && earlier.outTradeNo !== outTradeNo) violated(system, `idempotency key ${key} answered order ${outTradeNo}, first ${earlier.outTradeNo}`);
    if (key && !model.orderKeys.get(key)?.outTradeNo) model.orderKeys.set(key, { request, outTradeNo });
    let known = model.orders.find((o) => o.outTradeNo === outTradeNo);
    if (!known) {
      known = { outTradeNo, totalFee: expectedFee, paid: false };
      model.orders.push(known);
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
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index}${this.earlierDay ? ' on the bill day' : ''}`;
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const order = pick(model, this.index);
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
      while (system.capture.payments(order.outTradeNo).length === 0) {
        if (Date.now() > deadline) violated(system, `the emulator never called back for ${order.outTradeNo}`);
        await sleep(2);
      }
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
    const order = pick(model, this.index);
    await (this.of === 'payment' ? deliverPayment : deliverRefundCallbacks)(system, order, this.copies, faulted);
    return [order];
  }
}

async function deliverPayment(system: System, order: ModelOrder, copies: number, faulted: () => boolean): Promise<void> {
  const document = system.capture.payments(order.outTradeNo).at(-1);
  if (!document) return;
  const results = await Promise.all(Array.from({ length: copies }, () => callback(document)));
  for (const result of results) {
    answered(system, `callback of ${order.outTradeNo}`, result.status, faulted, result.raw);
    if (!faulted() && result.returnCode !== 'SUCCESS') violated(system, `a genuine callback of ${order.outTradeNo} was answered ${result.raw}`);
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
    const genuine = system.capture.payments(order.outTradeNo).at(-1);
    const forgedSigned = signedNotification({
      apiKey: OTHER_KEY,
      signType: 'HMAC-SHA256',
      fields: { appid: TEST_MERCHANT.appId, mch_id: TEST_MERCHANT.mchId, out_trade_no: order.outTradeNo, total_fee: String(order.totalFee) },
    });
    const base = genuine ?? forgedSigned;
    switch (this.forgery) {
      case 'wrong-key':
        return forgedSigned;
      case 'changed-amount':
        return base.replace(/<total_fee>(?:<!\[CDATA\[)?\d+/, (m) => `${m}0`).replace(/<cash_fee>(?:<!\[CDATA\[)?\d+/, (m) => `${m}0`);
      case 'other-order': {
        const target = pick(model, this.other);
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
    const order = pick(model, this.index);
    // Another order's id in a genuine document: with one order there is no other to forge for.
    if (this.forgery === 'other-order' && pick(model, this.other) === order) return [];
    const victims = this.forgery === 'other-order' ? [order, pick(model, this.other)] : [order];
    const before = await Promise.all(victims.map((victim) => system.reader.get(victim.outTradeNo)));
    const result = await callback(this.forge(model, system, order));
    if (result.status >= 500 || result.returnCode === 'SUCCESS') violated(system, `a forged callback (${this.forgery}) of ${order.outTradeNo} was answered ${result.status} ${result.raw}`);
    const after = await Promise.all(victims.map((victim) => system.reader.get(victim.outTradeNo)));
    victims.forEach((victim, i) => {
      if (!isDeepStrictEqual(before[i], after[i])) violated(system, `a forged callback (${this.forgery}) changed order ${victim.outTradeNo}`);
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
    const genuine = system.capture.refunds(order.outTradeNo).at(-1)?.body;
    const made = (apiKey: string) =>
      encryptedRefundNotification({
        apiKey,
        appid: TEST_MERCHANT.appId,
        mch_id: TEST_MERCHANT.mchId,
        fields: { out_trade_no: order.outTradeNo, out_refund_no: `forged${order.outTradeNo.slice(-8)}`, total_fee: String(order.totalFee), refund_fee: String(order.totalFee) },
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
    const order = pick(model, this.index);
    const before = await system.reader.get(order.outTradeNo);
    const result = await refundCallback(this.forge(system, order));
    if (result.status >= 500 || result.returnCode === 'SUCCESS') violated(system, `a forged refund callback (${this.forgery}) of ${order.outTradeNo} was answered ${result.status} ${result.raw}`);
    if (!isDeepStrictEqual(before, await system.reader.get(order.outTradeNo))) violated(system, `a forged refund callback (${this.forgery}) changed order ${order.outTradeNo}`);
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
    const order = pick(model, this.index);
    const result = await get(order.outTradeNo);
    answered(system, `poll of ${order.outTradeNo}`, result.status, faulted, result.raw);
    if (result.status < 500 && result.status !== 200) violated(system, `poll of ${order.outTradeNo} answered ${result.status}: ${result.raw}`);
    return [order];
  }
}

async function recover(system: System, faulted: () => boolean): Promise<void> {
  try {
    await recoverOrdersHandler({} as ScheduledEvent);
  } catch (error) {
    if (!faulted()) violated(system, `recovery failed with no fault injected: ${String(error)}`);
  }
}

/** The recovery schedule runs (orders due, refunds due, the outbox sweep). */
class Recover extends AnyTimeCommand {
  protected readonly name = 'recovery';
  protected async act(_model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    await recover(system, faulted);
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

/** Orders past expiry are closed: time passes beyond it and the recovery schedule runs. */
class CloseExpired extends AnyTimeCommand {
  protected readonly name = 'close';
  protected async act(_model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    system.clock.offsetMs += 2 * HOUR + 5 * 60_000;
    await recover(system, faulted);
    return 'all';
  }
}

const REFUND_SIZES = ['one-fen', 'half', 'rest', 'whole', 'over'] as const;
type RefundSize = (typeof REFUND_SIZES)[number];

function refundFeeOf(size: RefundSize, order: ModelOrder, stored: Order | undefined): number {
  const left = order.totalFee - (stored?.refundHeldFee ?? 0);
  switch (size) {
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

/** The merchant's server asks for refunds (one, or several at once), each under its idempotency key. */
class Refund extends MoneyCommand {
  protected readonly name = 'refund';
  constructor(
    readonly index: number,
    readonly sizes: RefundSize[],
    readonly keys: number[],
    fault?: Fault,
  ) {
    super(fault);
  }
  protected detail(): string {
    return `#${this.index} ${this.sizes.map((size, i) => `${size}/key${this.keys[i]}`).join(' ∥ ')}`;
  }
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const order = pick(model, this.index);
    const stored = await system.reader.get(order.outTradeNo);
    const requests = this.sizes.map((size, i) => ({ refundFee: refundFeeOf(size, order, stored), idempotencyKey: `model${model.run}-${order.outTradeNo}-${this.keys[i]}` }));
    const results = await Promise.all(requests.map((request) => refund(order.outTradeNo, request)));
    results.forEach((result: HttpResult, i) => {
      const request = requests[i]!;
      answered(system, `refund ${JSON.stringify(request)}`, result.status, faulted, result.raw);
      const earlier = model.refundKeys.get(request.idempotencyKey);
      const sent = JSON.stringify(request);
      if (result.status < 300 && request.refundFee > order.totalFee) violated(system, `a refund of ${request.refundFee} fen of a ${order.totalFee}-fen order was accepted`);
      if (result.status < 300 && earlier && earlier.sent !== sent && !earlier.unsure) violated(system, `idempotency key ${request.idempotencyKey} reused for another refund was accepted`);
      if (result.status < 500 && result.status >= 300 && result.status !== 400 && result.status !== 409) violated(system, `refund answered ${result.status}: ${result.raw}`);
      // A request that failed may or may not have bound its key; one that was answered did.
      if (result.status < 300 || (result.status === 409 && !earlier)) model.refundKeys.set(request.idempotencyKey, { sent: earlier && result.status >= 300 ? earlier.sent : sent });
      else if (result.status >= 500 && !earlier) model.refundKeys.set(request.idempotencyKey, { sent, unsure: true });
    });
    return [order];
  }
}

async function deliverRefundCallbacks(system: System, order: ModelOrder, copies: number, faulted: () => boolean): Promise<void> {
  for (const captured of system.capture.refunds(order.outTradeNo)) {
    const results = await Promise.all(Array.from({ length: copies }, () => refundCallback(captured.body)));
    for (const result of results) {
      answered(system, `refund callback ${captured.outRefundNo}`, result.status, faulted, result.raw);
      if (faulted() || result.returnCode === 'SUCCESS') continue;
      // Before the payment is recorded here, FAIL asks WeChat Pay to call again (recovery records it meanwhile).
      const stored = await system.reader.get(order.outTradeNo);
      if (PAID.has(stored?.status ?? '')) violated(system, `a genuine refund callback of ${captured.outRefundNo} (${captured.refundStatus}) was answered ${result.raw}`);
    }
  }
}

/** Someone refunds by hand in the merchant platform, outside the backend. */
class PlatformRefund extends MoneyCommand {
  protected readonly name = 'platform-refund';
  constructor(
    readonly index: number,
    readonly size: RefundSize,
  ) {
    super();
  }
  protected detail(): string {
    return `#${this.index} ${this.size}`;
  }
  protected async act(model: Model, system: System): Promise<Touched> {
    const order = pick(model, this.index);
    const response = await fetch(`${system.stack.emulator.url}/__sim/refund`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ out_trade_no: order.outTradeNo, refund_fee: refundFeeOf(this.size, order, undefined), notify_url: system.capture.refundNotifyUrl }),
    });
    if (response.status !== 200 && response.status !== 409) violated(system, `the emulator's platform refund answered ${response.status}: ${await response.text()}`);
    return [order];
  }
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

/** POST /merchant/reconciliations for the run's bill day: payments the bill has are recorded here. */
class Reconcile extends AnyTimeCommand {
  protected readonly name = 'reconcile';
  protected async act(model: Model, system: System, faulted: () => boolean): Promise<Touched> {
    const event = apiEvent({ method: 'POST', path: '/merchant/reconciliations', body: JSON.stringify({ billDate: model.billDate }), authorization: MERCHANT_AUTHORIZATION });
    const result = await runReconciliationHandler(event);
    const raw = String(result.body);
    answered(system, `reconciliation of ${model.billDate}`, result.statusCode ?? 0, faulted, raw);
    if ((result.statusCode ?? 0) >= 500) return 'all';
    if (result.statusCode !== 200) violated(system, `reconciliation of ${model.billDate} answered ${result.statusCode}: ${raw}`);
    const report = JSON.parse(raw) as { items: Array<{ kind: string; outTradeNo: string }> };
    const ours = new Set(model.orders.map((order) => order.outTradeNo));
    for (const item of report.items) {
      if (ours.has(item.outTradeNo) && !['REPAIRED', 'REFUND_REPAIRED'].includes(item.kind)) {
        violated(system, `reconciliation of ${model.billDate} reported ${item.kind} for ${item.outTradeNo}`);
      }
    }
    for (const order of model.orders) {
      if (order.billDate !== model.billDate) continue;
      const stored = await system.reader.get(order.outTradeNo);
      if (stored?.status !== 'PAID' && stored?.status !== 'REFUNDED') violated(system, `reconciliation left ${order.outTradeNo}, in the bill, ${stored?.status}`);
    }
    return 'all';
  }
}

// ---------------------------------------------------------------------------------------------------
// The command mix.

const index = fc.nat({ max: 1_000 });

export const COMMANDS: Array<fc.Arbitrary<fc.AsyncCommand<Model, System>>> = [
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.constantFrom('frontend' as const, 'merchant' as const),
          fc.constantFrom('NATIVE' as const, 'JSAPI' as const),
          fc.uniqueArray(fc.record({ sku: fc.nat({ max: SKUS.length - 1 }), quantity: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 2, selector: (line) => line.sku }),
          fc.constantFrom(1, 2, 100, 2_599, 99_999),
          fc.option(fc.nat({ max: 2 }), { freq: 2 }),
          fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('gift', 'a&out_trade_no=1', 'total_fee=1') }),
          faultArb,
        )
        .map(([by, tradeType, lines, fee, key, attach, fault]) => new CreateOrder(by, tradeType, lines, fee, key ?? undefined, attach, fault)),
    },
    { weight: 5, arbitrary: fc.tuple(index, fc.boolean()).map(([i, earlier]) => new Pay(i, earlier)) },
    { weight: 5, arbitrary: fc.tuple(index, fc.integer({ min: 1, max: 3 }), faultArb).map(([i, copies, fault]) => new DeliverCallbacks('payment', i, copies, fault)) },
    { weight: 2, arbitrary: fc.tuple(index, index, fc.constantFrom(...FORGERIES)).map(([i, other, forgery]) => new ForgedPayment(i, other, forgery)) },
    { weight: 1, arbitrary: fc.tuple(index, fc.constantFrom(...REFUND_FORGERIES)).map(([i, forgery]) => new ForgedRefundCallback(i, forgery)) },
    { weight: 3, arbitrary: fc.tuple(index, faultArb).map(([i, fault]) => new Poll(i, fault)) },
    { weight: 2, arbitrary: faultArb.map((fault) => new Recover(fault)) },
    { weight: 2, arbitrary: fc.constantFrom(6_000, 61_000, 31 * 60_000).map((ms) => new PassTime(ms)) },
    { weight: 1, arbitrary: faultArb.map((fault) => new CloseExpired(fault)) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(index, fc.array(fc.tuple(fc.constantFrom(...REFUND_SIZES), fc.nat({ max: 3 })), { minLength: 1, maxLength: 2 }), faultArb)
        .map(([i, asks, fault]) => new Refund(i, asks.map(([size]) => size), asks.map(([, key]) => key), fault)),
    },
    { weight: 3, arbitrary: fc.tuple(index, fc.integer({ min: 1, max: 2 }), faultArb).map(([i, copies, fault]) => new DeliverCallbacks('refunds', i, copies, fault)) },
    { weight: 1, arbitrary: fc.tuple(index, fc.constantFrom(...REFUND_SIZES)).map(([i, size]) => new PlatformRefund(i, size)) },
    { weight: 1, arbitrary: fc.constantFrom('SUCCESS' as const, 'CHANGE' as const, 'REFUNDCLOSE' as const).map((outcome) => new RefundOutcome(outcome)) },
    { weight: 1, arbitrary: faultArb.map((fault) => new Reconcile(fault)) },
  ),
];

// ---------------------------------------------------------------------------------------------------
// Invariants.

const PAID = new Set(['PAID', 'REFUNDED']);
const GIVES_BACK = new Set(['FAILED', 'REFUNDCLOSE']);

async function simOrder(system: System, outTradeNo: string): Promise<SimOrder | undefined> {
  const response = await fetch(`${system.stack.emulator.url}/__sim/orders/${outTradeNo}`);
  return response.status === 200 ? ((await response.json()) as SimOrder) : undefined;
}

/** Checks one order against WeChat Pay's record and the events; `final` once the run has settled. */
async function checkOrder(model: ModelOrder, system: System, phase: 'step' | 'final'): Promise<void> {
  system.figures.invariantChecks += 1;
  const no = model.outTradeNo;
  const [stored, wechat] = await Promise.all([system.reader.get(no), simOrder(system, no)]);
  const fail = (what: string) => violated(system, `${no}: ${what}`);
  if (!stored) return fail('the order answered to its creator is not stored');
  if (stored.totalFee !== model.totalFee) fail(`stored amount ${stored.totalFee}, created ${model.totalFee}`);
  const wechatPaid = wechat?.trade_state === 'SUCCESS';
  if (model.paid !== wechatPaid) fail(`the emulator says ${wechat?.trade_state}, the model ${model.paid ? 'paid' : 'unpaid'}`);
  const flagged = Object.keys(stored.review ?? {}).length > 0;
  // Money is recorded only where WeChat Pay holds it, and exactly once.
  if (PAID.has(stored.status) && (!wechatPaid || stored.transactionId !== wechat?.transaction_id)) fail(`${stored.status} here, ${wechat?.trade_state} ${wechat?.transaction_id} at WeChat Pay`);
  if ((system.paidWrites.get(no) ?? 0) > 1) fail(`recorded PAID ${system.paidWrites.get(no)} times`);
  if (wechatPaid && (stored.status === 'CLOSED' || stored.status === 'FAILED') && !flagged) fail(`paid at WeChat Pay but ${stored.status} here with no review flag`);
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
  if (held > stored.totalFee && !refundFlagged) fail(`refunds hold ${held} of ${stored.totalFee}`);
  if (PAID.has(stored.status) && (stored.status === 'REFUNDED') !== refunded >= stored.totalFee) fail(`${stored.status} with ${refunded} of ${stored.totalFee} refunded`);
  const atWechat = wechat?.refunds ?? [];
  const wechatHeld = atWechat.filter((r) => r.refund_status !== 'REFUNDCLOSE').reduce((sum, r) => sum + r.refund_fee, 0);
  if (wechatHeld > Number(wechat?.total_fee ?? 0)) fail(`WeChat Pay holds refunds of ${wechatHeld} of ${wechat?.total_fee}`);
  for (const here of refunds) {
    const there = atWechat.find((r) => r.out_refund_no === here.outRefundNo);
    if (['SUCCESS', 'CHANGE', 'REFUNDCLOSE'].includes(here.status) && there?.refund_status !== here.status) fail(`refund ${here.outRefundNo} is ${here.status} here, ${there?.refund_status} at WeChat Pay`);
    if (here.status === 'FAILED' && there && there.refund_status !== 'REFUNDCLOSE') fail(`refund ${here.outRefundNo} is FAILED here, ${there.refund_status} at WeChat Pay`);
    if (phase === 'final' && here.status === 'PROCESSING') fail(`refund ${here.outRefundNo} still PROCESSING after recovery`);
  }
  if (phase === 'final') {
    for (const there of atWechat) {
      const here = stored.refunds?.[there.out_refund_no];
      if (!here || here.status !== there.refund_status) fail(`refund ${there.out_refund_no} is ${there.refund_status} at WeChat Pay, ${here?.status ?? 'unknown'} here`);
    }
    if (stored.status === 'PENDING') fail('still PENDING after expiry and recovery');
    if (wechatPaid && !PAID.has(stored.status) && !flagged) fail(`paid at WeChat Pay, ${stored.status} here`);
    if (wechatPaid && system.paidWrites.get(no) !== 1 && !flagged) fail(`paid once at WeChat Pay, recorded PAID ${system.paidWrites.get(no) ?? 0} times`);
    if ((stored.outbox ?? []).length > 0) fail(`${stored.outbox?.length} events never confirmed published`);
  }
  checkEvents(stored, system, phase, fail);
}

/** One event id per transition, none for a transition that did not happen; every one present at the end. */
function checkEvents(stored: Order, system: System, phase: 'step' | 'final', fail: (what: string) => never): void {
  const events = system.stack.events.events({ outTradeNo: stored.outTradeNo });
  // EventBridge gives every delivery its own id; the transition's id is detail.eventId.
  const ids = (type: string) => new Set(events.filter((event) => event['detail-type'] === type).map((event) => (event.detail as { eventId: string }).eventId));
  const paid = ids('Order Paid').size;
  const closed = ids('Order Closed').size;
  const wholly = ids('Order Refunded').size;
  if (paid > 1 || closed > 1 || wholly > 1) fail(`event ids: ${paid} Order Paid, ${closed} Order Closed, ${wholly} Order Refunded`);
  const succeeded = new Set(
    events.filter((event) => event['detail-type'] === 'Refund Succeeded').map((event) => (event.detail as { refund?: { outRefundNo?: string } }).refund?.outRefundNo),
  );
  for (const no of succeeded) if (stored.refunds?.[no ?? '']?.status !== 'SUCCESS') fail(`Refund Succeeded published for ${no}, which is not SUCCESS here`);
  if (paid === 1 && !stored.transactionId) fail('Order Paid published for an order with no payment');
  if (closed === 1 && stored.status !== 'CLOSED' && Object.keys(stored.review ?? {}).length === 0) fail(`Order Closed published, ${stored.status} here, no review flag`);
  if (phase === 'final') {
    const wantPaid = PAID.has(stored.status) ? 1 : 0;
    if (paid !== wantPaid && !(stored.transactionId && paid === 1)) fail(`${paid} Order Paid events for a ${stored.status} order`);
    if (stored.status === 'CLOSED' && closed !== 1) fail('CLOSED with no Order Closed event');
    if ((stored.status === 'REFUNDED') !== (wholly === 1)) fail(`${wholly} Order Refunded events for a ${stored.status} order`);
    const successes = Object.values(stored.refunds ?? {}).filter((r) => r.status === 'SUCCESS');
    if (successes.length !== succeeded.size) fail(`${successes.length} SUCCESS refunds, ${succeeded.size} Refund Succeeded events`);
    const flags = Object.keys(stored.review ?? {}).length;
    if (ids('Payment Needs Review').size !== flags) fail(`${flags} review flags, ${ids('Payment Needs Review').size} Payment Needs Review events`);
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
    await recover(system, never);
    // Refunds end at the emulator a moment after they are accepted (10 s scaled); WeChat Pay then
    // calls back, and retries until answered: every refund callback reaches the product at least once.
    await sleep(25);
    for (const order of model.orders) await deliverRefundCallbacks(system, order, 1, never);
    if (await settled(model, system)) break;
  }
  await checkOrders(model, system, model.orders, 'final');
}

async function settled(model: Model, system: System): Promise<boolean> {
  for (const order of model.orders) {
    const [stored, wechat] = await Promise.all([system.reader.get(order.outTradeNo), simOrder(system, order.outTradeNo)]);
    if (!stored || stored.status === 'PENDING' || (stored.outbox ?? []).length > 0) return false;
    if (Object.values(stored.refunds ?? {}).some((r) => r.status === 'PROCESSING')) return false;
    if ((wechat?.refunds ?? []).some((r) => r.refund_status === 'PROCESSING' || stored.refunds?.[r.out_refund_no]?.status !== r.refund_status)) return false;
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
export async function runMoneyModel(system: System, options: ModelRunOptions): Promise<{ figures: Figures; seeds: number[]; failure?: string }> {
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
    const result = await fc.check(property, { seed, numRuns: 10, endOnFailure: true, ...(options.path ? { path: options.path } : {}) });
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
