import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { randomInt } from 'node:crypto';
import type { SignType } from '../wechatpay/sign';
import type { Order, PaymentSource, ReviewFlag } from './model';

/**
 * Pending orders are spread over this many index partitions so that no single partition key takes
 * every write at high order rates; recovery queries each shard.
 */
export const PENDING_SHARDS = 16;
export const PENDING_INDEX = 'pendingByShard';

/**
 * How long DynamoDB keeps an idempotency record (its `ttl` attribute): past the longest order expiry
 * (7 days) with a day to spare, so a key is never forgotten while its order can still be paid.
 */
const IDEMPOTENCY_TTL_SECONDS = 8 * 24 * 60 * 60;

/** A DynamoDB call failed for a reason other than a condition: the caller answers so it is retried. */
export class OrderStoreError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'OrderStoreError';
  }
}

export function createDocumentClient(endpoint?: string): DynamoDBDocumentClient {
  const local = endpoint
    ? {
        endpoint,
        region: process.env.AWS_REGION ?? 'us-east-1',
        // A local DynamoDB accepts any credentials; a developer's machine may have none.
        credentials: {
          accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
          secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
        },
      }
    : {};
  return DynamoDBDocumentClient.from(new DynamoDBClient(local), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

export interface PaymentReport {
  outTradeNo: string;
  transactionId: string;
  totalFee: number;
  paidAt: string;
  source: PaymentSource;
  /** For a callback: the sign type it was verified with, which must be the order's. */
  signType?: SignType;
}

export type PaymentOutcome =
  /** This report made the order PAID. */
  | { outcome: 'PAID'; order: Order }
  /** Already PAID with this transaction: nothing to do. */
  | { outcome: 'ALREADY_PAID'; order: Order }
  /** Money arrived for an order that was CLOSED/FAILED, or a second transaction: recorded, flagged. */
  | { outcome: 'FLAGGED'; order: Order; flag: ReviewFlag }
  /** The amount differs from the order's: flagged for review, never marked paid. */
  | { outcome: 'AMOUNT_MISMATCH'; order: Order; flag: ReviewFlag }
  /** Signed with another sign type than the order was made with: refused. */
  | { outcome: 'SIGN_TYPE_MISMATCH'; order: Order }
  | { outcome: 'UNKNOWN_ORDER' };

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

const LEAVE_PENDING = 'REMOVE pendingShard, nextCheckAt, checkCount';

export class OrderStore {
  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    private readonly table: string,
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
      return result.Attributes as Order;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private async updated(input: Omit<UpdateCommand['input'], 'TableName'>): Promise<boolean> {
    return (await this.conditionalUpdate(input)) !== undefined;
  }

  async get(outTradeNo: string): Promise<Order | undefined> {
    const result = await this.send('GetItem', () =>
      this.db.send(new GetCommand({ TableName: this.table, Key: { pk: outTradeNo }, ConsistentRead: true })),
    );
    // The table also holds idempotency records (pk `idempotency#...`): only an order has a status.
    return result.Item?.status ? (result.Item as Order) : undefined;
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
   * reach into another's scope) for a new order. When the key is taken, answers the order it names and
   * the fingerprint of the request that took it.
   */
  async claimIdempotencyKey(
    key: string,
    outTradeNo: string,
    fingerprint: string,
    createdAt: string,
  ): Promise<{ claimed: true } | { claimed: false; outTradeNo: string; fingerprint: string }> {
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
      return { claimed: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.send('GetItem', () =>
      this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true })),
    );
    const item = existing.Item as { outTradeNo: string; fingerprint: string };
    return { claimed: false, outTradeNo: item.outTradeNo, fingerprint: item.fingerprint };
  }

  async recordPrepay(
    outTradeNo: string,
    prepay: { prepayId: string; codeUrl?: string; mwebUrl?: string; issuedAt: string },
  ): Promise<boolean> {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':pending': 'PENDING', ':prepayId': prepay.prepayId, ':issuedAt': prepay.issuedAt };
    let set = 'SET prepayId = :prepayId, prepayIssuedAt = :issuedAt';
    if (prepay.codeUrl) {
      set += ', codeUrl = :codeUrl';
      values[':codeUrl'] = prepay.codeUrl;
    }
    if (prepay.mwebUrl) {
      set += ', mwebUrl = :mwebUrl';
      values[':mwebUrl'] = prepay.mwebUrl;
    }
    return this.updated({
      Key: { pk: outTradeNo },
      UpdateExpression: set,
      ConditionExpression: '#status = :pending',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  /** PENDING → FAILED: WeChat Pay refused the unified order for good. */
  async markFailed(outTradeNo: string, failure: { code: string; message: string; at: string }): Promise<boolean> {
    return this.updated({
      Key: { pk: outTradeNo },
      UpdateExpression: `SET #status = :failed, failedAt = :at, failureCode = :code, failureMessage = :message ${LEAVE_PENDING}`,
      ConditionExpression: '#status = :pending',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':failed': 'FAILED',
        ':pending': 'PENDING',
        ':at': failure.at,
        ':code': failure.code,
        ':message': failure.message,
      },
    });
  }

  /** PENDING → CLOSED: expired and confirmed unpaid. */
  async markClosed(outTradeNo: string, close: { reason: string; at: string }): Promise<boolean> {
    return this.updated({
      Key: { pk: outTradeNo },
      UpdateExpression: `SET #status = :closed, closedAt = :at, closeReason = :reason ${LEAVE_PENDING}`,
      ConditionExpression: '#status = :pending',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':closed': 'CLOSED', ':pending': 'PENDING', ':at': close.at, ':reason': close.reason },
    });
  }

  /**
   * Takes the right to ask WeChat Pay about a pending order now: at most one caller per interval,
   * however many clients poll at once (a conditional write, shared by every container).
   */
  async claimQuerySlot(outTradeNo: string, now: number, minIntervalMs: number): Promise<boolean> {
    return this.updated({
      Key: { pk: outTradeNo },
      UpdateExpression: 'SET lastQueriedAt = :now',
      ConditionExpression: '#status = :pending AND (attribute_not_exists(lastQueriedAt) OR lastQueriedAt <= :before)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':pending': 'PENDING', ':now': now, ':before': now - minIntervalMs },
    });
  }

  /** Moves a pending order's next recovery check; false when it is no longer pending or was moved. */
  async scheduleNextCheck(outTradeNo: string, expectedCheckAt: number, nextCheckAt: number, checkCount: number): Promise<boolean> {
    return this.updated({
      Key: { pk: outTradeNo },
      UpdateExpression: 'SET nextCheckAt = :next, checkCount = :count',
      ConditionExpression: '#status = :pending AND nextCheckAt = :expected',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':pending': 'PENDING', ':next': nextCheckAt, ':count': checkCount, ':expected': expectedCheckAt },
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
    return { orders: (result.Items ?? []) as Order[], nextKey: result.LastEvaluatedKey };
  }

  /**
   * Records a payment exactly once. The first report costs one conditional UpdateItem whose condition
   * also checks the amount (and the sign type, for a callback); when it fails, a consistent read
   * tells a duplicate from a mismatch. Money received always wins: a genuine payment for an order
   * that is no longer pending is recorded and flagged for review, never dropped.
   */
  async recordPayment(report: PaymentReport): Promise<PaymentOutcome> {
    const values: Record<string, unknown> = {
      ':pending': 'PENDING',
      ':paid': 'PAID',
      ':fee': report.totalFee,
      ':tx': report.transactionId,
      ':paidAt': report.paidAt,
      ':via': report.source,
    };
    let condition = '#status = :pending AND totalFee = :fee';
    if (report.signType) {
      condition += ' AND signType = :signType';
      values[':signType'] = report.signType;
    }
    const paid = await this.conditionalUpdate({
      Key: { pk: report.outTradeNo },
      UpdateExpression: `SET #status = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via ${LEAVE_PENDING}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: values,
    });
    if (paid) return { outcome: 'PAID', order: paid };
    return this.explainRefusedPayment(report);
  }

  private async explainRefusedPayment(report: PaymentReport, attempt = 0): Promise<PaymentOutcome> {
    const order = await this.get(report.outTradeNo);
    if (!order) return { outcome: 'UNKNOWN_ORDER' };
    if (report.signType && order.signType !== report.signType) return { outcome: 'SIGN_TYPE_MISMATCH', order };
    if (order.status === 'PAID' && order.transactionId === report.transactionId) {
      return { outcome: 'ALREADY_PAID', order };
    }
    const flagFor = (reason: ReviewFlag['reason']): ReviewFlag => ({
      reason,
      at: report.paidAt,
      source: report.source,
      transactionId: report.transactionId,
      totalFee: report.totalFee,
    });
    if (order.totalFee !== report.totalFee) {
      const flag = flagFor('AMOUNT_MISMATCH');
      return { outcome: 'AMOUNT_MISMATCH', order: await this.flag(order, flag), flag };
    }
    if (order.status === 'PAID') {
      const flag = flagFor('SECOND_PAYMENT');
      return { outcome: 'FLAGGED', order: await this.flag(order, flag), flag };
    }
    if (order.status === 'CLOSED' || order.status === 'FAILED') {
      const flag = flagFor(order.status === 'CLOSED' ? 'PAID_AFTER_CLOSE' : 'PAID_AFTER_FAILURE');
      const moved = await this.conditionalUpdate({
        Key: { pk: report.outTradeNo },
        UpdateExpression: `SET #status = :paid, transactionId = :tx, paidAt = :paidAt, paidVia = :via, review.#flag = :flag ${LEAVE_PENDING}`,
        ConditionExpression: '#status = :was AND totalFee = :fee',
        ExpressionAttributeNames: { '#status': 'status', '#flag': report.transactionId },
        ExpressionAttributeValues: {
          ':paid': 'PAID',
          ':was': order.status,
          ':fee': report.totalFee,
          ':tx': report.transactionId,
          ':paidAt': report.paidAt,
          ':via': report.source,
          ':flag': flag,
        },
      });
      if (moved) return { outcome: 'FLAGGED', order: moved, flag };
    }
    // The order changed between the write and the read (another path got there first): look again.
    if (attempt >= 3) throw new OrderStoreError(`order ${report.outTradeNo} kept changing while recording a payment`, undefined);
    return this.explainRefusedPayment(report, attempt + 1);
  }

  /** Adds a review flag once per transaction id. */
  private async flag(order: Order, flag: ReviewFlag): Promise<Order> {
    await this.send('UpdateItem', () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: order.outTradeNo },
          UpdateExpression: 'SET review.#flag = if_not_exists(review.#flag, :flag)',
          ExpressionAttributeNames: { '#flag': flag.transactionId },
          ExpressionAttributeValues: { ':flag': flag },
        }),
      ),
    );
    return { ...order, review: { ...order.review, [flag.transactionId]: order.review[flag.transactionId] ?? flag } };
  }
}

