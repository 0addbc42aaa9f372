import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { outboxUpdate, type OutboxEntry } from '../events/outbox';
import { failure, type Failure } from '../result';
import { isConditionFailure } from '../store/dynamo';
import { toBeijingTimestamp } from '../wechatpay/time';
import { OrderStoreError } from './errors';
import { outboxEntry, type RefundFacts, type Transition, type TransitionListener } from './events';
import { refundOf, reviewFlagOf, type Order, type OrderRefund, type OrderStatus, type PaymentReport, type RefundStatus, type ReviewFlag } from './model';

/**
 * Pending orders are spread over this many index partitions so that no single partition key takes
 * every write at high order rates; recovery queries each shard.
 */
export const PENDING_SHARDS = 16;
export const PENDING_INDEX = 'pendingByShard';

/**
 * Orders with PROCESSING refunds carry `refundShard` and `refundCheckAt`, the keys of this sparse
 * index, and only while they have one: recovery reads the open refunds, never the table.
 */
export const OPEN_REFUNDS_INDEX = 'openRefundsByShard';
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

/** BatchGetItem reads at most this many keys in one request. */
export const BATCH_GET_MAX_KEYS = 100;

/** What reconciliation reads of a day's payments (a projection: the index holds whole orders). */
export type PaymentOfDay = Pick<Order, 'outTradeNo' | 'transactionId' | 'totalFee'>;

/** The shards of each by-day index: one day's writes spread over as many partition keys as the pending index's. */
export const DAY_SHARDS = 16;

/**
 * Paid orders by the Beijing day of their payment (the day of WeChat Pay's bill), for the daily
 * reconciliation: `paidDayShard` is `<yyyyMMdd>#<shard>`, and reading a day reads that day's payments
 * and nothing else.
 */
export const PAID_DAY_INDEX = 'paidByDay';

/**
 * Refunds requested through this backend by the Beijing day of their request, for the daily
 * reconciliation to find the refunds recorded SUCCESS that the bill lacks, with 16 queries a day and
 * no scan. WeChat Pay's bill lists a refund on the day it accepted it (交易时间 of a refund line is
 * when the refund was accepted, not when it succeeded), with its status of that moment, and this
 * backend sends a refund the moment it is requested.
 *
 * The key is on the refund's claim (`refund#<claim>`, `requestedDayShard` =
 * `<yyyyMMdd>#<shard>`), not on the order: an order holds up to 50 refunds, made on different days,
 * but an item stands under one key of an index, so a day attribute on the order would move with
 * each refund and lose the earlier days'. The claim is one item per refund, written once (a
 * conditional put) before anything else of the refund: the day costs no write of its own, only the
 * index's, and the index projects nothing but the order's key. Refunds made outside this backend
 * have no claim; WeChat Pay itself told of them (their callback or the bill).
 */
export const REFUND_DAY_INDEX = 'refundsByRequestDay';

/** The by-day index key of something that happened at `at` (ISO time): its Beijing day and a shard. */
export function dayShard(at: string, shard: number = randomInt(DAY_SHARDS)): string {
  return `${toBeijingTimestamp(new Date(at)).slice(0, 8)}#${shard}`;
}

/**
 * How long DynamoDB keeps an idempotency record (its `ttl` attribute): past the longest order expiry
 * (7 days) with a day to spare, so a key is never forgotten while its order can still be paid.
 */
const IDEMPOTENCY_TTL_SECONDS = 8 * 24 * 60 * 60;

/**
 * lib-dynamodb builds a map by assigning its entries, so an entry named `__proto__` (a valid
 * out_refund_no, and so a key of `refunds` and `review`) becomes the map's prototype instead of an
 * entry, and the refund would vanish from every read: it is put back as an own entry.
 */
function withProtoEntry<T>(map: Record<string, T> | undefined): Record<string, T> | undefined {
  if (map === undefined) return map;
  const prototype: unknown = Object.getPrototypeOf(map);
  if (prototype === Object.prototype || prototype === null) return map;
  const own: Record<string, T> = { ...map };
  Object.defineProperty(own, '__proto__', { value: prototype, enumerable: true, writable: true, configurable: true });
  return own;
}

/** An order item as read from the table. */
function orderOf(item: Record<string, unknown> | undefined): Order {
  const order = item as unknown as Order;
  if (order.refunds !== undefined) order.refunds = withProtoEntry(order.refunds);
  if (order.review !== undefined) order.review = withProtoEntry(order.review) as Record<string, ReviewFlag>;
  return order;
}

/** Leaves the sparse pending index: recovery never reads a settled order again. */
const LEAVE_PENDING = 'REMOVE pendingShard, nextCheckAt, checkCount';

/** Adds `set` (assignments) to the SET clause of an UpdateExpression that begins with SET. */
function withSet(update: string, set: string): string {
  const remove = update.search(/\sREMOVE\s/);
  return remove < 0 ? `${update}, ${set}` : `${update.slice(0, remove)}, ${set}${update.slice(remove)}`;
}

/**
 * The events of a refund that ended (lib/events/outbox.ts): `Refund Succeeded` for SUCCESS,
 * `Refund Failed` for any other end (FAILED, REFUNDCLOSE, CHANGE), and `Order Refunded` when this
 * refund makes the order REFUNDED. `status` is the order's once the refund is recorded.
 */
function refundTransitions(outTradeNo: string, refund: OrderRefund, status: OrderStatus, refundedAt?: { fee: number; at: string }): Transition[] {
  const facts: RefundFacts = {
    outRefundNo: refund.outRefundNo,
    refundFee: refund.refundFee,
    status: refund.status,
    ...(refund.refundId !== undefined ? { refundId: refund.refundId } : {}),
    ...(refund.failureMessage !== undefined ? { reason: refund.failureMessage } : refund.reason !== undefined ? { reason: refund.reason } : {}),
    ...(refund.failureCode !== undefined ? { code: refund.failureCode } : {}),
    ...(refund.succeededAt !== undefined ? { succeededAt: refund.succeededAt } : {}),
  };
  const events: Transition[] = [{ type: refund.status === 'SUCCESS' ? 'Refund Succeeded' : 'Refund Failed', outTradeNo, status, refund: facts }];
  if (refundedAt) events.push({ type: 'Order Refunded', outTradeNo, refundedFee: refundedAt.fee, refundedAt: refundedAt.at });
  return events;
}

/**
 * What a refund's SUCCESS changes on its order: `refundedFee` (the write holds only if it is still the
 * value read), and the order REFUNDED, with `refundedAt`, once its refunds cover its amount. `whole`
 * is set when this refund makes the order REFUNDED.
 */
function refundSucceeded(order: Order, refundFee: number, at: string): { sets: string[]; condition: string; values: Record<string, unknown>; whole?: { fee: number; at: string } } {
  const refunded = (order.refundedFee ?? 0) + refundFee;
  const sets = ['refundedFee = :refunded'];
  const values: Record<string, unknown> = { ':refunded': refunded };
  let condition = 'attribute_not_exists(refundedFee)';
  if (order.refundedFee !== undefined) {
    condition = 'refundedFee = :seenRefunded';
    values[':seenRefunded'] = order.refundedFee;
  }
  if (refunded < order.totalFee || order.status !== 'PAID') return { sets, condition, values };
  sets.push('#status = :refundedStatus', 'refundedAt = :refundedAt');
  values[':refundedStatus'] = 'REFUNDED';
  values[':refundedAt'] = at;
  return { sets, condition, values, whole: { fee: refunded, at } };
}

/** The optional facts of a refund's end, as `refunds.<no>.<attribute>` assignments of an update. */
function settlementFacts(settlement: RefundSettlement, sets: string[], values: Record<string, unknown>): void {
  const optional: Array<keyof RefundSettlement> = ['refundId', 'succeededAt', 'failureCode', 'failureMessage', 'receivedBy'];
  for (const key of optional) {
    if (settlement[key] === undefined) continue;
    sets.push(`refunds.#no.${key} = :${key}`);
    values[`:${key}`] = settlement[key];
  }
}

/** An update of one order, applied only while its status is the expected one. */
interface GuardedUpdate {
  /** The UpdateExpression; `#status` names the status attribute. */
  update: string;
  /** Further conditions, ANDed to the status check. */
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/**
 * The orders table, and nothing else: reads, and writes that hold only under a condition. What a
 * refused write means for a payment is decided by the caller (settle.ts).
 */
export class OrderStore {
  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** Told of each transition once it is written, with its events (the publisher); none in some tests. */
    private readonly onTransition?: TransitionListener,
  ) {}

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isConditionFailure(error)) throw error;
      throw new OrderStoreError(`DynamoDB ${what} failed`, error);
    }
  }

  /** Runs a conditional update; the order as it now is, or undefined when the condition did not hold. */
  private async conditionalUpdate(input: Omit<UpdateCommand['input'], 'TableName'>): Promise<Order | undefined> {
    try {
      const result = await this.send('UpdateItem', () =>
        this.db.send(new UpdateCommand({ TableName: this.table, ReturnValues: 'ALL_NEW', ...input })),
      );
      return orderOf(result.Attributes);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** Updates an order only while its status is `status`: the order as it now is, or undefined. */
  private updateIfStatus(outTradeNo: string, status: OrderStatus, guarded: GuardedUpdate): Promise<Order | undefined> {
    return this.conditionalUpdate({
      Key: { pk: outTradeNo },
      UpdateExpression: guarded.update,
      ConditionExpression: guarded.condition ? `#status = :expected AND ${guarded.condition}` : '#status = :expected',
      ExpressionAttributeNames: { '#status': 'status', ...guarded.names },
      ExpressionAttributeValues: { ':expected': status, ...guarded.values },
    });
  }

  /** Updates an order only while it is still PENDING; false when it has moved on (or the condition failed). */
  private async updateIfPending(outTradeNo: string, guarded: GuardedUpdate): Promise<boolean> {
    return (await this.updateIfStatus(outTradeNo, 'PENDING', guarded)) !== undefined;
  }

  /**
   * A transition: `guarded` applied only while the order's status is `from`, its events added to the
   * order's outbox by the same conditional write (so no transition is ever stored without them).
   * Once the write succeeded, the listener is told (it publishes them). The order as it now is, or
   * undefined when the condition did not hold (nothing written, nothing published).
   */
  private async transition(outTradeNo: string, from: OrderStatus, guarded: GuardedUpdate, transitions: Transition[]): Promise<Order | undefined> {
    if (transitions.length === 0) return this.updateIfStatus(outTradeNo, from, guarded);
    const entries = transitions.map((transition) => outboxEntry(transition, new Date()));
    const outbox = outboxUpdate(entries);
    const order = await this.updateIfStatus(outTradeNo, from, {
      ...guarded,
      update: withSet(guarded.update, outbox.set),
      values: { ...guarded.values, ...outbox.values },
    });
    if (order) await this.published(order, entries);
    return order;
  }

  /** Hands a written transition's events to the listener; a failure there never undoes the transition. */
  private async published(order: Order, entries: OutboxEntry[]): Promise<void> {
    try {
      await this.onTransition?.(order, entries);
    } catch {
      // The events stay in the outbox: the sweep publishes them.
    }
  }

  async get(outTradeNo: string): Promise<Order | undefined> {
    const result = await this.send('GetItem', () =>
      this.db.send(new GetCommand({ TableName: this.table, Key: { pk: outTradeNo }, ConsistentRead: true })),
    );
    // The table also holds idempotency records (pk `idempotency#...`): only an order has a status.
    return result.Item?.status ? orderOf(result.Item) : undefined;
  }

  /** Stores a new PENDING order; false when the out_trade_no already exists. */
  async createPending(order: Order, firstCheckAt: number): Promise<boolean> {
    const item = {
      pk: order.outTradeNo,
      ...order,
      pendingShard: String(randomInt(PENDING_SHARDS)),
      nextCheckAt: firstCheckAt,
      checkCount: 0,
    };
    try {
      await this.send('PutItem', () =>
        this.db.send(
          new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Claims an idempotency key (`<caller scope>#<key>`; the scope holds no `#`, so no caller's key can
   * reach into another's scope) for a new order. When the key is taken (reason `KEY_TAKEN`), answers
   * the order it names and the fingerprint of the request that took it.
   */
  async claimIdempotencyKey(
    key: string,
    outTradeNo: string,
    fingerprint: string,
    createdAt: string,
  ): Promise<{ ok: true } | (Failure<'KEY_TAKEN'> & { outTradeNo: string; fingerprint: string })> {
    const pk = `idempotency#${key}`;
    try {
      await this.send('PutItem', () =>
        this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk, outTradeNo, fingerprint, createdAt, ttl: Math.floor(Date.parse(createdAt) / 1000) + IDEMPOTENCY_TTL_SECONDS },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return { ok: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.send('GetItem', () =>
      this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true })),
    );
    const item = existing.Item as { outTradeNo: string; fingerprint: string };
    const taken = failure('KEY_TAKEN', `idempotency key already names order ${item.outTradeNo}`);
    return { ...taken, outTradeNo: item.outTradeNo, fingerprint: item.fingerprint };
  }

  async recordPrepay(
    outTradeNo: string,
    prepay: { prepayId: string; codeUrl?: string; mwebUrl?: string; issuedAt: string },
  ): Promise<boolean> {
    const values: Record<string, unknown> = { ':prepayId': prepay.prepayId, ':issuedAt': prepay.issuedAt };
    let update = 'SET prepayId = :prepayId, prepayIssuedAt = :issuedAt';
    if (prepay.codeUrl) {
      update += ', codeUrl = :codeUrl';
      values[':codeUrl'] = prepay.codeUrl;
    }
    if (prepay.mwebUrl) {
      update += ', mwebUrl = :mwebUrl';
      values[':mwebUrl'] = prepay.mwebUrl;
    }
    return this.updateIfPending(outTradeNo, { update, values });
  }

  /** PENDING → FAILED: WeChat Pay refused the unified order for good. Event: Order Failed. */
  async markFailed(outTradeNo: string, failure: { code: string; message: string; at: string }): Promise<boolean> {
    const event: Transition = { type: 'Order Failed', outTradeNo, failedAt: failure.at, failureCode: failure.code, failureMessage: failure.message };
    const failed = await this.transition(outTradeNo, 'PENDING', {
      update: `SET #status = :failed, failedAt = :at, failureCode = :code, failureMessage = :message ${LEAVE_PENDING}`,
      values: { ':failed': 'FAILED', ':at': failure.at, ':code': failure.code, ':message': failure.message },
    }, [event]);
    return failed !== undefined;
  }

  /** PENDING → CLOSED: expired and confirmed unpaid. Event: Order Closed. */
  async markClosed(outTradeNo: string, close: { reason: string; at: string }): Promise<boolean> {
    const event: Transition = { type: 'Order Closed', outTradeNo, closedAt: close.at, closeReason: close.reason };
    const closed = await this.transition(outTradeNo, 'PENDING', {
      update: `SET #status = :closed, closedAt = :at, closeReason = :reason ${LEAVE_PENDING}`,
      values: { ':closed': 'CLOSED', ':at': close.at, ':reason': close.reason },
    }, [event]);
    return closed !== undefined;
  }

  /**
   * Takes the right to ask WeChat Pay about a pending order now: at most one caller per interval,
   * however many clients poll at once (a conditional write, shared by every container).
   */
  async claimQuerySlot(outTradeNo: string, now: number, minIntervalMs: number): Promise<boolean> {
    return this.updateIfPending(outTradeNo, {
      update: 'SET lastQueriedAt = :now',
      condition: '(attribute_not_exists(lastQueriedAt) OR lastQueriedAt <= :before)',
      values: { ':now': now, ':before': now - minIntervalMs },
    });
  }

  /** Moves a pending order's next recovery check; false when it is no longer pending or was moved. */
  async scheduleNextCheck(outTradeNo: string, expectedCheckAt: number, nextCheckAt: number, checkCount: number): Promise<boolean> {
    return this.updateIfPending(outTradeNo, {
      update: 'SET nextCheckAt = :next, checkCount = :count',
      condition: 'nextCheckAt = :expectedCheckAt',
      values: { ':next': nextCheckAt, ':count': checkCount, ':expectedCheckAt': expectedCheckAt },
    });
  }

  /** Pending orders of one shard whose next check is due, oldest first. */
  async duePending(shard: number, now: number, limit: number, startKey?: Record<string, unknown>) {
    const result = await this.send('Query', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: PENDING_INDEX,
          KeyConditionExpression: 'pendingShard = :shard AND nextCheckAt <= :now',
          ExpressionAttributeValues: { ':shard': String(shard), ':now': now },
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    return { orders: (result.Items ?? []).map(orderOf), nextKey: result.LastEvaluatedKey };
  }

  /** The orders paid on one Beijing day (`yyyyMMdd`), every shard of the paid-by-day index. */
  async paidOnDay(day: string): Promise<Order[]> {
    const orders: Order[] = [];
    for await (const order of this.onDay<Record<string, unknown>>(PAID_DAY_INDEX, 'paidDayShard', day)) orders.push(orderOf(order));
    return orders;
  }

  /** The payments of one Beijing day, as each page of the paid-by-day index comes: only what reconciliation compares. */
  paymentsOnDay(day: string): AsyncGenerator<PaymentOfDay> {
    return this.onDay<PaymentOfDay>(PAID_DAY_INDEX, 'paidDayShard', day, 'outTradeNo, transactionId, totalFee');
  }

  /**
   * The refunds requested through this backend on one Beijing day (`yyyyMMdd`), as their claims
   * (the index projects the claim's key and order; refunds/numbers.ts refundNumbersOfClaim names the refund).
   */
  async refundsRequestedOnDay(day: string): Promise<Array<{ claim: string; outTradeNo: string }>> {
    const claims: Array<{ claim: string; outTradeNo: string }> = [];
    for await (const claim of this.onDay<{ pk: string; outTradeNo: string }>(REFUND_DAY_INDEX, 'requestedDayShard', day)) {
      claims.push({ claim: claim.pk.slice('refund#'.length), outTradeNo: claim.outTradeNo });
    }
    return claims;
  }

  /** Every item of one day of a by-day index (`<attribute>` = `<day>#<shard>`), shard by shard. */
  private async *onDay<Item>(index: string, attribute: string, day: string, projection?: string): AsyncGenerator<Item> {
    for (let shard = 0; shard < DAY_SHARDS; shard++) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await this.send('Query', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: index,
              KeyConditionExpression: '#day = :key',
              ExpressionAttributeNames: { '#day': attribute },
              ExpressionAttributeValues: { ':key': `${day}#${shard}` },
              ProjectionExpression: projection,
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        yield* (page.Items ?? []) as Item[];
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }
  }

  /**
   * The orders of these out_trade_nos that exist (at most BATCH_GET_MAX_KEYS, none repeated), read
   * consistently by one BatchGetItem, and more while DynamoDB leaves keys unprocessed (it may, for
   * throughput), backing off in between.
   */
  async getMany(outTradeNos: readonly string[]): Promise<Map<string, Order>> {
    const found = new Map<string, Order>();
    let keys: Array<Record<string, unknown>> = outTradeNos.map((pk) => ({ pk }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 8) throw new OrderStoreError(`DynamoDB BatchGetItem left ${keys.length} keys unprocessed after ${attempt} requests`, undefined);
        await sleep(Math.min(50 * 2 ** attempt, 2_000));
      }
      const request = keys;
      const result = await this.send('BatchGetItem', () =>
        this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: request, ConsistentRead: true } } })),
      );
      // The table also holds records that are not orders: only an order has a status.
      for (const item of result.Responses?.[this.table] ?? []) if (item.status) found.set(item.pk as string, orderOf(item));
      keys = result.UnprocessedKeys?.[this.table]?.Keys ?? [];
    }
    return found;
  }

  /** A stored document that is not an order (a page or the head of a reconciliation report). */
  async getRecord(pk: string): Promise<Record<string, unknown> | undefined> {
    const result = await this.send('GetItem', () => this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true })));
    return result.Item;
  }

  /** Writes a record under a key nothing has used (a report's page: its key names its run); false when the key is taken. */
  async putNewRecord(pk: string, record: Record<string, unknown>): Promise<boolean> {
    try {
      await this.send('PutItem', () =>
        this.db.send(new PutCommand({ TableName: this.table, Item: { ...record, pk }, ConditionExpression: 'attribute_not_exists(pk)' })),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Writes a record in place of the one under `pk` unless that one holds a later `ranAt` (ISO times
   * compare as text): `{ replaced }`, the record it replaced if any, or undefined when a later one
   * stands (nothing written).
   */
  async replaceRecordUnlessLater(pk: string, record: Record<string, unknown> & { ranAt: string }): Promise<{ replaced?: Record<string, unknown> } | undefined> {
    try {
      const result = await this.send('PutItem', () =>
        this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...record, pk },
            ConditionExpression: 'attribute_not_exists(pk) OR ranAt <= :ranAt',
            ExpressionAttributeValues: { ':ranAt': record.ranAt },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      return result.Attributes ? { replaced: result.Attributes } : {};
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** Deletes a record that still belongs to `runId` (a replaced report's page); false when it is gone already. */
  async deleteRunRecord(pk: string, runId: string): Promise<boolean> {
    try {
      await this.send('DeleteItem', () =>
        this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk }, ConditionExpression: 'runId = :runId', ExpressionAttributeValues: { ':runId': runId } })),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * `from` → PAID in one conditional write that also checks the amount (and, for a callback, the
   * sign type and the app). From PENDING this is the payment (event: Order Paid); from CLOSED or FAILED
   * it records money that came anyway, with its review flag (event: Payment Needs Review, for a person
   * to decide whether to fulfil or refund). The order as it now is, or undefined when the condition did not hold.
   */
  async markPaid(report: PaymentReport, from: OrderStatus = 'PENDING', flag?: ReviewFlag): Promise<Order | undefined> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {
      ':paid': 'PAID',
      ':fee': report.totalFee,
      ':tx': report.transactionId,
      ':paidAt': report.paidAt,
      ':via': report.source,
      ':paidDay': dayShard(report.paidAt),
    };
    let update = 'SET #status = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, paidDayShard = :paidDay';
    let condition = 'totalFee = :fee';
    if (report.signType) {
      condition += ' AND signType = :signType';
      values[':signType'] = report.signType;
    }
    if (report.appId) {
      // Orders made before apps were recorded carry no appId: they were made under the default app.
      condition += report.defaultApp ? ' AND (#appId = :appId OR attribute_not_exists(#appId))' : ' AND #appId = :appId';
      names['#appId'] = 'appId';
      values[':appId'] = report.appId;
    }
    if (flag) {
      update += ', review.#flag = :flag';
      names['#flag'] = flag.transactionId;
      values[':flag'] = flag;
    }
    const event: Transition = flag
      ? { type: 'Payment Needs Review', outTradeNo: report.outTradeNo, status: 'PAID', review: flag }
      : { type: 'Order Paid', outTradeNo: report.outTradeNo, transactionId: report.transactionId, paidAt: report.paidAt, paidVia: report.source };
    return this.transition(report.outTradeNo, from, { update: `${update} ${LEAVE_PENDING}`, condition, names, values }, [event]);
  }

  /**
   * Adds a review flag once per key, by default its transaction id (event: Payment Needs Review,
   * written with the flag, so a flag repeated changes nothing and publishes nothing); answers the
   * order with it.
   */
  async addReviewFlag(order: Order, flag: ReviewFlag, key: string = flag.transactionId): Promise<Order> {
    const entries = [outboxEntry({ type: 'Payment Needs Review', outTradeNo: order.outTradeNo, status: order.status, review: flag }, new Date())];
    const outbox = outboxUpdate(entries);
    const flagged = await this.conditionalUpdate({
      Key: { pk: order.outTradeNo },
      UpdateExpression: `SET review.#flag = :flag, ${outbox.set}`,
      ConditionExpression: 'attribute_not_exists(review.#flag)',
      ExpressionAttributeNames: { '#flag': key },
      ExpressionAttributeValues: { ':flag': flag, ...outbox.values },
    });
    if (flagged) {
      await this.published(flagged, entries);
      return flagged;
    }
    return { ...order, review: { ...order.review, [key]: reviewFlagOf(order, key) ?? flag } };
  }

  // -------------------------------------------------------------------------------------------------
  // Refunds. They live in the order's `refunds` map, beside the totals they change, so that every
  // change of a refund and of the order's amounts is one conditional write of one item.

  /**
   * Claims a refund request's idempotency key (`refund#<claim>`, refunds/numbers.ts refundClaimFor) for the
   * refund `outRefundNo` of an order: the first request that derives it owns it. The claim is
   * indexed by the Beijing day of `createdAt` (REFUND_DAY_INDEX). Answers the claim's refund number;
   * when it was taken, what took it (its order, request fingerprint and refund number).
   */
  async claimRefund(
    claimKey: string,
    claim: { outRefundNo: string; outTradeNo: string; fingerprint: string; createdAt: string },
  ): Promise<{ ok: true; outRefundNo: string } | (Failure<'KEY_TAKEN'> & { outTradeNo: string; fingerprint: string; outRefundNo: string })> {
    const pk = `refund#${claimKey}`;
    try {
      await this.send('PutItem', () =>
        this.db.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk, ...claim, requestedDayShard: dayShard(claim.createdAt) },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return { ok: true, outRefundNo: claim.outRefundNo };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.send('GetItem', () => this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true })));
    const item = existing.Item as { outTradeNo: string; fingerprint: string; outRefundNo: string };
    return { ...failure('KEY_TAKEN', `refund claim ${claimKey} is taken`), outTradeNo: item.outTradeNo, fingerprint: item.fingerprint, outRefundNo: item.outRefundNo };
  }

  /**
   * Reserves a refund's amount on a PAID order and stores the refund PROCESSING, in ONE conditional
   * write: only while the order is PAID, the refund new, the amounts held by refunds stay within the
   * order's amount and the order has fewer than 50 refunds. It also puts the order in the sparse
   * open-refunds index (first check at `checkAt`). The order as it now is, or undefined when a
   * condition did not hold (the caller reads the order to tell which).
   */
  async reserveRefund(order: Order, refund: OrderRefund, checkAt: number): Promise<Order | undefined> {
    const hasMap = order.refunds !== undefined;
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = {
      ':paid': 'PAID',
      ':fee': refund.refundFee,
      ':room': order.totalFee - refund.refundFee,
      ':max': MAX_REFUNDS_PER_ORDER,
      ':zero': 0,
      ':one': 1,
      ':shard': String(randomInt(PENDING_SHARDS)),
      ':checkAt': checkAt,
    };
    let set: string;
    let fresh: string;
    if (hasMap) {
      names['#no'] = refund.outRefundNo;
      values[':refund'] = refund;
      set = 'refunds.#no = :refund';
      fresh = 'attribute_not_exists(refunds.#no)';
    } else {
      values[':refunds'] = { [refund.outRefundNo]: refund };
      set = 'refunds = :refunds';
      fresh = 'attribute_not_exists(refunds)';
    }
    return this.conditionalUpdate({
      Key: { pk: order.outTradeNo },
      UpdateExpression:
        `SET ${set}, refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee, refundCount = if_not_exists(refundCount, :zero) + :one, ` +
        'openRefunds = if_not_exists(openRefunds, :zero) + :one, refundShard = if_not_exists(refundShard, :shard), refundCheckAt = :checkAt, refundCheckCount = :zero',
      ConditionExpression:
        `#status = :paid AND ${fresh} AND (attribute_not_exists(refundHeldFee) OR refundHeldFee <= :room) ` +
        'AND (attribute_not_exists(refundCount) OR refundCount < :max)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  /** Notes WeChat Pay's refund id on a PROCESSING refund; false when it is no longer processing. */
  async markRefundAccepted(outTradeNo: string, outRefundNo: string, accepted: { refundId: string; at: string }): Promise<boolean> {
    const result = await this.conditionalUpdate({
      Key: { pk: outTradeNo },
      UpdateExpression: 'SET refunds.#no.refundId = :refundId, refunds.#no.acceptedAt = if_not_exists(refunds.#no.acceptedAt, :at)',
      ConditionExpression: 'refunds.#no.#refundStatus = :processing',
      ExpressionAttributeNames: { '#no': outRefundNo, '#refundStatus': 'status' },
      ExpressionAttributeValues: { ':refundId': accepted.refundId, ':at': accepted.at, ':processing': 'PROCESSING' },
    });
    return result !== undefined;
  }

  /**
   * Ends a PROCESSING refund, in one conditional write with everything it changes on the order:
   * SUCCESS adds to refundedFee (and makes the order REFUNDED once refunds cover its amount);
   * REFUNDCLOSE and FAILED give back the held amount (FAILED also its place among the 50); the
   * order leaves the open-refunds index with its last PROCESSING refund. The write holds only if the
   * refund is still PROCESSING and the order's totals are those of `order` (read just before), so
   * two settlements never race. The order as it now is, or undefined (read again, then retry).
   */
  async settleRefund(order: Order, outRefundNo: string, settlement: RefundSettlement): Promise<Order | undefined> {
    const refund = refundOf(order, outRefundNo);
    if (!refund) throw new Error(`order ${order.outTradeNo} has no refund ${outRefundNo}`);
    const names: Record<string, string> = { '#status': 'status', '#no': outRefundNo, '#refundStatus': 'status' };
    const values: Record<string, unknown> = {
      ':processing': 'PROCESSING',
      ':final': settlement.status,
      ':at': settlement.at,
      ':one': 1,
      ':seenOpen': order.openRefunds ?? 0,
    };
    const sets = ['refunds.#no.#refundStatus = :final', 'refunds.#no.settledAt = :at', 'openRefunds = openRefunds - :one'];
    settlementFacts(settlement, sets, values);
    let conditionRefunded = '';
    let whole: { fee: number; at: string } | undefined;
    if (settlement.status === 'SUCCESS') {
      const succeeded = refundSucceeded(order, refund.refundFee, settlement.at);
      sets.push(...succeeded.sets);
      Object.assign(values, succeeded.values);
      conditionRefunded = ` AND ${succeeded.condition}`;
      whole = succeeded.whole;
    }
    if (settlement.status === 'REFUNDCLOSE' || settlement.status === 'FAILED') {
      sets.push('refundHeldFee = refundHeldFee - :fee');
      values[':fee'] = refund.refundFee;
    }
    if (settlement.status === 'FAILED') sets.push('refundCount = refundCount - :one');
    const leave = (order.openRefunds ?? 0) <= 1 ? ' REMOVE refundShard, refundCheckAt, refundCheckCount' : '';
    // The order's status as read is the transition's `from`; the refund's events go in the same write.
    const settled: OrderRefund = { ...refund, ...settlement, settledAt: settlement.at };
    const events = refundTransitions(order.outTradeNo, settled, whole ? 'REFUNDED' : order.status, whole);
    return this.transition(
      order.outTradeNo,
      order.status,
      {
        update: `SET ${sets.join(', ')}${leave}`,
        condition: `refunds.#no.#refundStatus = :processing AND openRefunds = :seenOpen${conditionRefunded}`,
        names,
        values,
      },
      events,
    );
  }

  /**
   * Records a refund made outside this backend (the merchant platform) that WeChat Pay reports as
   * ended, with its review flag: money that moved is always recorded. Holds only if the refund is new
   * and the order's totals are those of `order`. The order as it now is, or undefined.
   */
  async recordExternalRefund(order: Order, refund: OrderRefund, flag: ReviewFlag): Promise<Order | undefined> {
    const hasMap = order.refunds !== undefined;
    if (!hasMap && refund.outRefundNo === '__proto__') {
      // lib-dynamodb writes a map by assigning its entries, which makes a `__proto__` entry the
      // map's prototype and loses it: the map is made empty first, and the caller, reading the
      // order again, writes the refund by its path.
      await this.conditionalUpdate({
        Key: { pk: order.outTradeNo },
        UpdateExpression: 'SET refunds = :empty',
        ConditionExpression: 'attribute_not_exists(refunds)',
        ExpressionAttributeValues: { ':empty': {} },
      });
      return undefined;
    }
    const names: Record<string, string> = { '#status': 'status', '#flag': `refund:${refund.outRefundNo}` };
    const values: Record<string, unknown> = { ':flag': flag, ':zero': 0, ':one': 1 };
    const sets = ['review.#flag = :flag', 'refundCount = if_not_exists(refundCount, :zero) + :one'];
    let fresh: string;
    if (hasMap) {
      names['#no'] = refund.outRefundNo;
      values[':refund'] = refund;
      sets.push('refunds.#no = :refund');
      fresh = 'attribute_not_exists(refunds.#no)';
    } else {
      values[':refunds'] = { [refund.outRefundNo]: refund };
      sets.push('refunds = :refunds');
      fresh = 'attribute_not_exists(refunds)';
    }
    if (refund.status !== 'REFUNDCLOSE' && refund.status !== 'FAILED') {
      sets.push('refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee');
      values[':fee'] = refund.refundFee;
    }
    let conditionRefunded = '';
    let whole: { fee: number; at: string } | undefined;
    if (refund.status === 'SUCCESS') {
      const succeeded = refundSucceeded(order, refund.refundFee, refund.settledAt ?? flag.at);
      sets.push(...succeeded.sets);
      Object.assign(values, succeeded.values);
      conditionRefunded = ` AND ${succeeded.condition}`;
      whole = succeeded.whole;
    }
    // An ended refund publishes its events; one still PROCESSING publishes them when it settles. The
    // review flag is written now, so its event goes with it, as every other flag's does.
    const status = whole ? 'REFUNDED' : order.status;
    const events = [
      ...(refund.status === 'PROCESSING' ? [] : refundTransitions(order.outTradeNo, refund, status, whole)),
      { type: 'Payment Needs Review' as const, outTradeNo: order.outTradeNo, status, review: flag },
    ];
    return this.transition(order.outTradeNo, order.status, { update: `SET ${sets.join(', ')}`, condition: `${fresh}${conditionRefunded}`, names, values }, events);
  }

  /**
   * A refund recorded FAILED (WeChat Pay refused it for good, and its amount was given back) that
   * WeChat Pay reports as SUCCESS after all: the money went back, so it is recorded SUCCESS with its
   * review flag, in one conditional write that holds only while the refund is FAILED and the order's
   * refundedFee is the one of `order`. Its amount is held again and it counts among the 50 again
   * (FAILED had given both back), it is added to refundedFee, and the order becomes REFUNDED once
   * refunds cover its amount. No room is required: if the order's other refunds took the amount back,
   * it is recorded all the same (money that moved is always recorded), and the flag tells a person.
   * The refusal's code and message leave the refund (the flag keeps the code). Events: Refund
   * Succeeded, Order Refunded when whole, and Payment Needs Review. The order as it now is, or
   * undefined when the condition did not hold (read again, then retry).
   */
  async recordRefundSuccessAfterFailure(order: Order, outRefundNo: string, settlement: RefundSettlement & { status: 'SUCCESS' }, flag: ReviewFlag): Promise<Order | undefined> {
    const refund = refundOf(order, outRefundNo);
    if (!refund) throw new Error(`order ${order.outTradeNo} has no refund ${outRefundNo}`);
    const names: Record<string, string> = { '#status': 'status', '#no': outRefundNo, '#refundStatus': 'status', '#flag': `refund:${outRefundNo}` };
    const values: Record<string, unknown> = { ':failed': 'FAILED', ':final': 'SUCCESS', ':at': settlement.at, ':fee': refund.refundFee, ':zero': 0, ':one': 1, ':flag': flag };
    const sets = [
      'refunds.#no.#refundStatus = :final',
      'refunds.#no.settledAt = :at',
      'refundHeldFee = if_not_exists(refundHeldFee, :zero) + :fee',
      'refundCount = if_not_exists(refundCount, :zero) + :one',
      'review.#flag = :flag',
    ];
    settlementFacts(settlement, sets, values);
    const succeeded = refundSucceeded(order, refund.refundFee, settlement.at);
    sets.push(...succeeded.sets);
    Object.assign(values, succeeded.values);
    const settled: OrderRefund = { ...refund, ...settlement, settledAt: settlement.at };
    delete settled.failureCode;
    delete settled.failureMessage;
    const status = succeeded.whole ? 'REFUNDED' : order.status;
    const events: Transition[] = [
      ...refundTransitions(order.outTradeNo, settled, status, succeeded.whole),
      { type: 'Payment Needs Review', outTradeNo: order.outTradeNo, status, review: flag },
    ];
    return this.transition(
      order.outTradeNo,
      order.status,
      {
        update: `SET ${sets.join(', ')} REMOVE refunds.#no.failureCode, refunds.#no.failureMessage`,
        condition: `refunds.#no.#refundStatus = :failed AND ${succeeded.condition}`,
        names,
        values,
      },
      events,
    );
  }

  /** Moves an order's next open-refund check (the lease of one recovery run); false when another moved it. */
  async scheduleRefundCheck(outTradeNo: string, expectedCheckAt: number, nextCheckAt: number, checkCount: number): Promise<boolean> {
    const result = await this.conditionalUpdate({
      Key: { pk: outTradeNo },
      UpdateExpression: 'SET refundCheckAt = :next, refundCheckCount = :count',
      ConditionExpression: 'refundCheckAt = :expected',
      ExpressionAttributeValues: { ':next': nextCheckAt, ':count': checkCount, ':expected': expectedCheckAt },
    });
    return result !== undefined;
  }

  /** Orders of one shard with PROCESSING refunds whose next check is due. */
  async dueRefunds(shard: number, now: number, limit: number, startKey?: Record<string, unknown>) {
    const result = await this.send('Query', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: OPEN_REFUNDS_INDEX,
          KeyConditionExpression: 'refundShard = :shard AND refundCheckAt <= :now',
          ExpressionAttributeValues: { ':shard': String(shard), ':now': now },
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    return { orders: (result.Items ?? []).map(orderOf), nextKey: result.LastEvaluatedKey };
  }
}
