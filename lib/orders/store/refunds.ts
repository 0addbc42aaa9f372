import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { GuardedUpdate } from '../../store/guarded-update';
import { shardPages, type ShardPage } from '../../store/sharded-index';
import type { RefundFacts, Transition, TransitionListener } from '../events';
import { refundOf, type Order, type OrderRefund, type OrderStatus, type RefundStatus, type ReviewFlag } from '../model';
import { OrderItems, orderOf, STATUS } from './order-item';
import { OPEN_REFUNDS_INDEX, PENDING_SHARDS, randomShard } from './schema';

/** WeChat Pay accepts at most 50 refunds of one order. */
export const MAX_REFUNDS_PER_ORDER = 50;

/** How a refund ends, as recorded on its order. */
export interface RefundSettlement {
  status: Exclude<RefundStatus, 'PROCESSING'>;
  at: string;
  refundId?: string;
  succeededAt?: string;
  failureCode?: string;
  failureMessage?: string;
  receivedBy?: string;
}

/** A refund's name and its status attribute's (both words DynamoDB may reserve) in expressions. */
const REFUND = (outRefundNo: string) => ({ '#no': outRefundNo, '#refundStatus': 'status' });

/** Leaves the sparse open-refunds index: recovery reads the order's refunds no more. */
const LEAVE_OPEN_REFUNDS = ['refundShard', 'refundCheckAt', 'refundCheckCount'];

/** The order once refunds cover its amount: REFUNDED, with the fee and time of the refund that made it so. */
type Whole = { fee: number; at: string };

/**
 * Adds a new refund to the order's `refunds` map, on condition that it is new. An order without
 * refunds has no map yet: the map is written whole, on condition that there still is none.
 */
function addRefund(update: GuardedUpdate, order: Order, refund: OrderRefund): void {
  if (order.refunds !== undefined) {
    update
      .set('refunds.#no = :refund', { ':refund': refund }, { '#no': refund.outRefundNo })
      .when('refundIsNew', 'attribute_not_exists(refunds.#no)');
  } else {
    update.set('refunds = :refunds', { ':refunds': { [refund.outRefundNo]: refund } }).when('refundIsNew', 'attribute_not_exists(refunds)');
  }
}

/**
 * What a refund's SUCCESS changes on its order: `refundedFee` (the write holds only if it is still the
 * value read), and the order REFUNDED, with `refundedAt`, once its refunds cover its amount: then
 * answers the order's refunded fee and time.
 */
function addSucceeded(update: GuardedUpdate, order: Order, refundFee: number, at: string): Whole | undefined {
  const refunded = (order.refundedFee ?? 0) + refundFee;
  update.set('refundedFee = :refunded', { ':refunded': refunded });
  if (order.refundedFee === undefined) update.when('refundedFeeAsSeen', 'attribute_not_exists(refundedFee)');
  else update.when('refundedFeeAsSeen', 'refundedFee = :seenRefunded', { ':seenRefunded': order.refundedFee });
  if (refunded < order.totalFee || order.status !== 'PAID') return undefined;
  update.set('#status = :refundedStatus, refundedAt = :refundedAt', { ':refundedStatus': 'REFUNDED', ':refundedAt': at }, STATUS);
  return { fee: refunded, at };
}

/** The optional facts of a refund's end, as `refunds.<no>.<attribute>` assignments. */
function addSettlementFacts(update: GuardedUpdate, settlement: RefundSettlement): void {
  const optional: Array<keyof RefundSettlement> = ['refundId', 'succeededAt', 'failureCode', 'failureMessage', 'receivedBy'];
  for (const key of optional) {
    if (settlement[key] !== undefined) update.set(`refunds.#no.${key} = :${key}`, { [`:${key}`]: settlement[key] });
  }
}

/**
 * The events of a refund that ended (lib/orders/events.ts): `Refund Succeeded` for SUCCESS,
 * `Refund Failed` for any other end (FAILED, REFUNDCLOSE, CHANGE), and `Order Refunded` when this
 * refund makes the order REFUNDED. `status` is the order's once the refund is recorded.
 */
function refundTransitions(outTradeNo: string, refund: OrderRefund, status: OrderStatus, whole?: Whole): Transition[] {
  const facts: RefundFacts = {
    outRefundNo: refund.outRefundNo,
    refundFee: refund.refundFee,
    status: refund.status,
    ...(refund.refundId !== undefined ? { refundId: refund.refundId } : {}),
    ...(refund.failureMessage !== undefined
      ? { reason: refund.failureMessage }
      : refund.reason !== undefined
        ? { reason: refund.reason }
        : {}),
    ...(refund.failureCode !== undefined ? { code: refund.failureCode } : {}),
    ...(refund.succeededAt !== undefined ? { succeededAt: refund.succeededAt } : {}),
  };
  const events: Transition[] = [
    { type: refund.status === 'SUCCESS' ? 'Refund Succeeded' : 'Refund Failed', outTradeNo, status, refund: facts },
  ];
  if (whole) events.push({ type: 'Order Refunded', outTradeNo, refundedFee: whole.fee, refundedAt: whole.at });
  return events;
}

/** The refund `outRefundNo` of an order read just before; an error when it has none (a caller's mistake). */
function refundOfRead(order: Order, outRefundNo: string): OrderRefund {
  const refund = refundOf(order, outRefundNo);
  if (!refund) throw new Error(`order ${order.outTradeNo} has no refund ${outRefundNo}`);
  return refund;
}

/**
 * The refunds of orders. They live in the order's `refunds` map, beside the totals they change
 * (`refundHeldFee`, `refundCount`, `openRefunds`, `refundedFee`), so that every change of a refund
 * and of the order's amounts is one conditional write of one item, with its events. The writes that
 * depend on the order as read hold only while its status and totals are still those: the caller reads
 * the order again and retries. Orders with PROCESSING refunds are in the sparse open-refunds index.
 */
export class RefundStore {
  readonly #items: OrderItems;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware. */
    readonly db: DynamoDBDocumentClient,
    table: string,
    /** Told of each transition once it is written, with its events (the publisher). */
    onTransition?: TransitionListener,
  ) {
    this.#items = new OrderItems(db, table, onTransition);
  }

  /**
   * Reserves a refund's amount on a PAID order and stores the refund PROCESSING, in ONE conditional
   * write: only while the order is PAID, the refund new, the amounts held by refunds stay within the
   * order's amount and the order has fewer than 50 refunds. It also puts the order in the sparse
   * open-refunds index (first check at `checkAt`). The order as it now is, or undefined when a
   * condition did not hold (the caller reads the order to tell which).
   */
  reserve(order: Order, refund: OrderRefund, checkAt: number): Promise<Order | undefined> {
    const update = this.#items
      .update(order.outTradeNo)
      .when('orderIsPaid', '#status = :paid', { ':paid': 'PAID' }, STATUS)
      .when('withinAmount', 'attribute_not_exists(refundHeldFee) OR refundHeldFee <= :room', { ':room': order.totalFee - refund.refundFee })
      .when('underMaxRefunds', 'attribute_not_exists(refundCount) OR refundCount < :max', { ':max': MAX_REFUNDS_PER_ORDER })
      .set('refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee, refundCount = if_not_exists(refundCount, :zero) + :one', {
        ':zero': 0,
        ':one': 1,
        ':fee': refund.refundFee,
      })
      .set('openRefunds = if_not_exists(openRefunds, :zero) + :one, refundShard = if_not_exists(refundShard, :shard)', {
        ':shard': randomShard(),
      })
      .set('refundCheckAt = :checkAt, refundCheckCount = :zero', { ':checkAt': checkAt });
    addRefund(update, order, refund);
    return this.#items.write(update);
  }

  /** Notes WeChat Pay's refund id on a PROCESSING refund; false when it is no longer processing. */
  markAccepted(outTradeNo: string, outRefundNo: string, accepted: { refundId: string; at: string }): Promise<boolean> {
    return this.#items
      .update(outTradeNo)
      .when('refundIsProcessing', 'refunds.#no.#refundStatus = :processing', { ':processing': 'PROCESSING' }, REFUND(outRefundNo))
      .set('refunds.#no.refundId = :refundId, refunds.#no.acceptedAt = if_not_exists(refunds.#no.acceptedAt, :at)', {
        ':refundId': accepted.refundId,
        ':at': accepted.at,
      })
      .applied();
  }

  /**
   * Ends a PROCESSING refund, in one conditional write with everything it changes on the order:
   * SUCCESS adds to refundedFee (and makes the order REFUNDED once refunds cover its amount);
   * REFUNDCLOSE and FAILED give back the held amount (FAILED also its place among the 50); the
   * order leaves the open-refunds index with its last PROCESSING refund. The write holds only if the
   * refund is still PROCESSING and the order's status and totals are those of `order` (read just
   * before), so two settlements never race. The order as it now is, or undefined (read again, then retry).
   */
  settle(order: Order, outRefundNo: string, settlement: RefundSettlement): Promise<Order | undefined> {
    const refund = refundOfRead(order, outRefundNo);
    const update = this.#items
      .whileStatus(order.outTradeNo, order.status)
      .when('refundIsProcessing', 'refunds.#no.#refundStatus = :processing', { ':processing': 'PROCESSING' }, REFUND(outRefundNo))
      .when('openRefundsAsSeen', 'openRefunds = :seenOpen', { ':seenOpen': order.openRefunds ?? 0 })
      .set('refunds.#no.#refundStatus = :final, refunds.#no.settledAt = :at, openRefunds = openRefunds - :one', {
        ':final': settlement.status,
        ':at': settlement.at,
        ':one': 1,
      });
    addSettlementFacts(update, settlement);
    const whole = settlement.status === 'SUCCESS' ? addSucceeded(update, order, refund.refundFee, settlement.at) : undefined;
    if (settlement.status === 'REFUNDCLOSE' || settlement.status === 'FAILED')
      update.set('refundHeldFee = refundHeldFee - :fee', { ':fee': refund.refundFee });
    if (settlement.status === 'FAILED') update.set('refundCount = refundCount - :one');
    if ((order.openRefunds ?? 0) <= 1) update.remove(...LEAVE_OPEN_REFUNDS);
    const settled: OrderRefund = { ...refund, ...settlement, settledAt: settlement.at };
    return this.#items.transition(update, refundTransitions(order.outTradeNo, settled, whole ? 'REFUNDED' : order.status, whole));
  }

  /**
   * Records a refund made outside this backend (the merchant platform) that WeChat Pay reports,
   * with its review flag: money that moved is always recorded. Holds only if the refund is new and
   * the order's status and refundedFee are those of `order`. An ended refund publishes its events;
   * one still PROCESSING publishes them when it settles. The order as it now is, or undefined.
   */
  async recordExternal(order: Order, refund: OrderRefund, flag: ReviewFlag): Promise<Order | undefined> {
    if (order.refunds === undefined && refund.outRefundNo === '__proto__') {
      // lib-dynamodb writes a map by assigning its entries, which makes a `__proto__` entry the
      // map's prototype and loses it: the map is made empty first, and the caller, reading the
      // order again, writes the refund by its path.
      await this.#items
        .update(order.outTradeNo)
        .when('noRefundsYet', 'attribute_not_exists(refunds)')
        .set('refunds = :empty', { ':empty': {} })
        .applied();
      return undefined;
    }
    const update = this.#items
      .whileStatus(order.outTradeNo, order.status)
      .set(
        'review.#flag = :flag, refundCount = if_not_exists(refundCount, :zero) + :one',
        { ':flag': flag, ':zero': 0, ':one': 1 },
        { '#flag': `refund:${refund.outRefundNo}` },
      );
    addRefund(update, order, refund);
    if (refund.status !== 'REFUNDCLOSE' && refund.status !== 'FAILED')
      update.set('refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee', { ':fee': refund.refundFee });
    const whole = refund.status === 'SUCCESS' ? addSucceeded(update, order, refund.refundFee, refund.settledAt ?? flag.at) : undefined;
    const status = whole ? 'REFUNDED' : order.status;
    // The review flag is written now, so its event goes with it, as every other flag's does.
    const events: Transition[] = [
      ...(refund.status === 'PROCESSING' ? [] : refundTransitions(order.outTradeNo, refund, status, whole)),
      { type: 'Payment Needs Review', outTradeNo: order.outTradeNo, status, review: flag },
    ];
    return this.#items.transition(update, events);
  }

  /**
   * A refund recorded FAILED (WeChat Pay refused it for good, and its amount was given back) that
   * WeChat Pay reports as SUCCESS after all: the money went back, so it is recorded SUCCESS with its
   * review flag, in one conditional write that holds only while the refund is FAILED and the order's
   * status and refundedFee are those of `order`. Its amount is held again and it counts among the 50
   * again (FAILED had given both back), it is added to refundedFee, and the order becomes REFUNDED once
   * refunds cover its amount. No room is required: if the order's other refunds took the amount back,
   * it is recorded all the same (money that moved is always recorded), and the flag tells a person.
   * The refusal's code and message leave the refund (the flag keeps the code). Events: Refund
   * Succeeded, Order Refunded when whole, and Payment Needs Review. The order as it now is, or
   * undefined when a condition did not hold (read again, then retry).
   */
  recordSuccessAfterFailure(
    order: Order,
    outRefundNo: string,
    settlement: RefundSettlement & { status: 'SUCCESS' },
    flag: ReviewFlag,
  ): Promise<Order | undefined> {
    const refund = refundOfRead(order, outRefundNo);
    const update = this.#items
      .whileStatus(order.outTradeNo, order.status)
      .when('refundIsFailed', 'refunds.#no.#refundStatus = :failed', { ':failed': 'FAILED' }, REFUND(outRefundNo))
      .set('refunds.#no.#refundStatus = :final, refunds.#no.settledAt = :at', { ':final': 'SUCCESS', ':at': settlement.at })
      .set('refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee, refundCount = if_not_exists(refundCount, :zero) + :one', {
        ':fee': refund.refundFee,
        ':zero': 0,
        ':one': 1,
      })
      .set('review.#flag = :flag', { ':flag': flag }, { '#flag': `refund:${outRefundNo}` })
      .remove('refunds.#no.failureCode', 'refunds.#no.failureMessage');
    addSettlementFacts(update, settlement);
    const whole = addSucceeded(update, order, refund.refundFee, settlement.at);
    const settled: OrderRefund = { ...refund, ...settlement, settledAt: settlement.at };
    delete settled.failureCode;
    delete settled.failureMessage;
    const status = whole ? 'REFUNDED' : order.status;
    const events: Transition[] = [
      ...refundTransitions(order.outTradeNo, settled, status, whole),
      { type: 'Payment Needs Review', outTradeNo: order.outTradeNo, status, review: flag },
    ];
    return this.#items.transition(update, events);
  }

  /** Moves an order's next open-refund check (the lease of one recovery run); false when another moved it. */
  scheduleCheck(outTradeNo: string, expectedCheckAt: number, nextCheckAt: number, checkCount: number): Promise<boolean> {
    return this.#items
      .update(outTradeNo)
      .when('checkIsAsSeen', 'refundCheckAt = :expected', { ':expected': expectedCheckAt })
      .set('refundCheckAt = :next, refundCheckCount = :count', { ':next': nextCheckAt, ':count': checkCount })
      .applied();
  }

  /** The orders with PROCESSING refunds whose next check is due at `now`, shard by shard (pages of `pageSize`). */
  due(now: number, pageSize: number): AsyncGenerator<ShardPage<Order>> {
    const query = {
      index: OPEN_REFUNDS_INDEX,
      shards: PENDING_SHARDS,
      partition: { attribute: 'refundShard', valueIn: String },
      atMost: { attribute: 'refundCheckAt', value: now },
      pageSize,
    };
    return shardPages(this.#items.table, query, orderOf);
  }
}
