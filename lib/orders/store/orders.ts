import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GuardedPut } from '../../store/guarded-update';
import { shardItems, shardPages, type ShardPage } from '../../store/sharded-index';
import type { Table } from '../../store/table';
import type { Transition, TransitionListener } from '../events';
import { reviewFlagOf, type Order, type OrderStatus, type PaymentReport, type ReviewFlag } from '../model';
import { OrderItems, orderOf, STATUS } from './order-item';
import { DAY_SHARDS, dayPartition, dayShard, PAID_DAY_INDEX, PENDING_INDEX, PENDING_SHARDS, randomShard } from './schema';

/** What reconciliation reads of a day's payments (a projection: the index holds whole orders). */
export type PaymentOfDay = Pick<Order, 'outTradeNo' | 'transactionId' | 'totalFee'>;

/** Leaves the sparse pending index: recovery never reads a settled order again. */
const LEAVE_PENDING = ['pendingShard', 'nextCheckAt', 'checkCount'];

/** How a batch read of orders asks again for the keys DynamoDB left unprocessed. */
const BATCH_RETRY = { retries: 8, baseMs: 50, maxMs: 2_000 };

/**
 * The orders, and nothing else of the table: reads, and the writes of an order's life (created,
 * prepaid, paid, failed, closed, flagged), each holding only under a condition. Every transition
 * writes its events into the order's outbox in the same conditional write (order-item.ts). What a
 * refused write means for a payment is decided by the caller (settle.ts). Refunds are refunds.ts's.
 */
export class OrderStore {
  readonly #items: OrderItems;
  readonly #table: Table;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    table: string,
    /** Told of each transition once it is written, with its events (the publisher); none in some tests. */
    onTransition?: TransitionListener,
  ) {
    this.#items = new OrderItems(db, table, onTransition);
    this.#table = this.#items.table;
  }

  async get(outTradeNo: string): Promise<Order | undefined> {
    const item = await this.#table.get({ pk: outTradeNo });
    // The table also holds other records (claims, reports, tokens): only an order has a status.
    return item?.status ? orderOf(item) : undefined;
  }

  /**
   * The orders of these out_trade_nos that exist (at most BATCH_GET_MAX_KEYS, none repeated), read
   * consistently by one BatchGetItem, and more while DynamoDB leaves keys unprocessed.
   */
  async getMany(outTradeNos: readonly string[]): Promise<Map<string, Order>> {
    const found = new Map<string, Order>();
    for (const item of await this.#table.getMany(
      outTradeNos.map((pk) => ({ pk })),
      BATCH_RETRY,
    )) {
      if (item.status) found.set(item.pk as string, orderOf(item));
    }
    return found;
  }

  /** Stores a new PENDING order, in the pending index from `firstCheckAt`; false when the out_trade_no already exists. */
  createPending(order: Order, firstCheckAt: number): Promise<boolean> {
    return new GuardedPut(
      this.#table,
      { pk: order.outTradeNo },
      { ...order, pendingShard: randomShard(), nextCheckAt: firstCheckAt, checkCount: 0 },
    )
      .when('orderIsNew', 'attribute_not_exists(pk)')
      .run();
  }

  /** Notes the prepay WeChat Pay issued; false when the order is no longer PENDING. */
  recordPrepay(outTradeNo: string, prepay: { prepayId: string; codeUrl?: string; mwebUrl?: string; issuedAt: string }): Promise<boolean> {
    const update = this.#items
      .whileStatus(outTradeNo, 'PENDING')
      .set('prepayId = :prepayId, prepayIssuedAt = :issuedAt', { ':prepayId': prepay.prepayId, ':issuedAt': prepay.issuedAt });
    if (prepay.codeUrl) update.set('codeUrl = :codeUrl', { ':codeUrl': prepay.codeUrl });
    if (prepay.mwebUrl) update.set('mwebUrl = :mwebUrl', { ':mwebUrl': prepay.mwebUrl });
    return update.applied();
  }

  /** PENDING → FAILED: WeChat Pay refused the unified order for good. Event: Order Failed. */
  async markFailed(outTradeNo: string, failure: { code: string; message: string; at: string }): Promise<boolean> {
    const update = this.#items
      .whileStatus(outTradeNo, 'PENDING')
      .set(
        '#status = :failed, failedAt = :at, failureCode = :code, failureMessage = :message',
        { ':failed': 'FAILED', ':at': failure.at, ':code': failure.code, ':message': failure.message },
        STATUS,
      )
      .remove(...LEAVE_PENDING);
    const event: Transition = {
      type: 'Order Failed',
      outTradeNo,
      failedAt: failure.at,
      failureCode: failure.code,
      failureMessage: failure.message,
    };
    return (await this.#items.transition(update, [event])) !== undefined;
  }

  /** PENDING → CLOSED: expired and confirmed unpaid. Event: Order Closed. */
  async markClosed(outTradeNo: string, close: { reason: string; at: string }): Promise<boolean> {
    const update = this.#items
      .whileStatus(outTradeNo, 'PENDING')
      .set(
        '#status = :closed, closedAt = :at, closeReason = :reason',
        { ':closed': 'CLOSED', ':at': close.at, ':reason': close.reason },
        STATUS,
      )
      .remove(...LEAVE_PENDING);
    const event: Transition = { type: 'Order Closed', outTradeNo, closedAt: close.at, closeReason: close.reason };
    return (await this.#items.transition(update, [event])) !== undefined;
  }

  /**
   * `from` → PAID in one conditional write that also checks the amount (and, for a callback, the
   * sign type and the app). From PENDING this is the payment (event: Order Paid); from CLOSED or FAILED
   * it records money that came anyway, with its review flag (event: Payment Needs Review, for a person
   * to decide whether to fulfil or refund). The order as it now is, or undefined when a condition did not hold.
   */
  markPaid(report: PaymentReport, from: OrderStatus = 'PENDING', flag?: ReviewFlag): Promise<Order | undefined> {
    const update = this.#items
      .whileStatus(report.outTradeNo, from)
      .when('amountMatches', 'totalFee = :fee', { ':fee': report.totalFee })
      .set('#status = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, paidDayShard = :paidDay', {
        ':paid': 'PAID',
        ':tx': report.transactionId,
        ':paidAt': report.paidAt,
        ':via': report.source,
        ':paidDay': dayShard(report.paidAt),
      })
      .remove(...LEAVE_PENDING);
    if (report.signType) update.when('signTypeMatches', 'signType = :signType', { ':signType': report.signType });
    if (report.appId) {
      // Orders made before apps were recorded carry no appId: they were made under the default app.
      const sameApp = report.defaultApp ? '#appId = :appId OR attribute_not_exists(#appId)' : '#appId = :appId';
      update.when('appMatches', sameApp, { ':appId': report.appId }, { '#appId': 'appId' });
    }
    if (flag) update.set('review.#flag = :flag', { ':flag': flag }, { '#flag': flag.transactionId });
    const event: Transition = flag
      ? { type: 'Payment Needs Review', outTradeNo: report.outTradeNo, status: 'PAID', review: flag }
      : {
          type: 'Order Paid',
          outTradeNo: report.outTradeNo,
          transactionId: report.transactionId,
          paidAt: report.paidAt,
          paidVia: report.source,
        };
    return this.#items.transition(update, [event]);
  }

  /**
   * Adds a review flag once per key, by default its transaction id (event: Payment Needs Review,
   * written with the flag, so a flag repeated changes nothing and publishes nothing); answers the
   * order with it.
   */
  async addReviewFlag(order: Order, flag: ReviewFlag, key: string = flag.transactionId): Promise<Order> {
    const update = this.#items
      .update(order.outTradeNo)
      .when('flagIsNew', 'attribute_not_exists(review.#flag)', undefined, { '#flag': key })
      .set('review.#flag = :flag', { ':flag': flag });
    const flagged = await this.#items.transition(update, [
      { type: 'Payment Needs Review', outTradeNo: order.outTradeNo, status: order.status, review: flag },
    ]);
    return flagged ?? { ...order, review: { ...order.review, [key]: reviewFlagOf(order, key) ?? flag } };
  }

  /**
   * Takes the right to ask WeChat Pay about a pending order now: at most one caller per interval,
   * however many clients poll at once (a conditional write, shared by every container).
   */
  claimQuerySlot(outTradeNo: string, now: number, minIntervalMs: number): Promise<boolean> {
    return this.#items
      .whileStatus(outTradeNo, 'PENDING')
      .when('intervalPassed', 'attribute_not_exists(lastQueriedAt) OR lastQueriedAt <= :before', { ':before': now - minIntervalMs })
      .set('lastQueriedAt = :now', { ':now': now })
      .applied();
  }

  /** Moves a pending order's next recovery check; false when it is no longer pending or was moved. */
  scheduleNextCheck(outTradeNo: string, expectedCheckAt: number, nextCheckAt: number, checkCount: number): Promise<boolean> {
    return this.#items
      .whileStatus(outTradeNo, 'PENDING')
      .when('checkIsAsSeen', 'nextCheckAt = :expectedCheckAt', { ':expectedCheckAt': expectedCheckAt })
      .set('nextCheckAt = :next, checkCount = :count', { ':next': nextCheckAt, ':count': checkCount })
      .applied();
  }

  /** The pending orders whose next check is due at `now`, shard by shard (pages of `pageSize`), oldest first in each. */
  duePending(now: number, pageSize: number): AsyncGenerator<ShardPage<Order>> {
    const query = {
      index: PENDING_INDEX,
      shards: PENDING_SHARDS,
      partition: { attribute: 'pendingShard', valueIn: String },
      atMost: { attribute: 'nextCheckAt', value: now },
      pageSize,
    };
    return shardPages(this.#table, query, orderOf);
  }

  /** The orders paid on one Beijing day (`yyyyMMdd`), every shard of the paid-by-day index. */
  async paidOnDay(day: string): Promise<Order[]> {
    const orders: Order[] = [];
    for await (const order of shardItems(
      this.#table,
      { index: PAID_DAY_INDEX, shards: DAY_SHARDS, partition: dayPartition('paidDayShard', day) },
      orderOf,
    ))
      orders.push(order);
    return orders;
  }

  /** The payments of one Beijing day, as each page of the paid-by-day index comes: only what reconciliation compares. */
  paymentsOnDay(day: string): AsyncGenerator<PaymentOfDay> {
    const query = {
      index: PAID_DAY_INDEX,
      shards: DAY_SHARDS,
      partition: dayPartition('paidDayShard', day),
      projection: 'outTradeNo, transactionId, totalFee',
    };
    return shardItems(this.#table, query, (item) => item as PaymentOfDay);
  }
}
