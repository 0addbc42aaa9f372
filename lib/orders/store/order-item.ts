import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { outboxUpdate, type OutboxEntry } from '../../events/outbox';
import { GuardedUpdate } from '../../store/guarded-update';
import { Table } from '../../store/table';
import { OrderStoreError } from '../errors';
import { outboxEntry, type Transition, type TransitionListener } from '../events';
import type { Order, OrderStatus, ReviewFlag } from '../model';

/** The name of the order's `status` (a word DynamoDB reserves) in expressions. */
export const STATUS = { '#status': 'status' };

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
export function orderOf(item: Record<string, unknown>): Order {
  const order = item as unknown as Order;
  if (order.refunds !== undefined) order.refunds = withProtoEntry(order.refunds);
  if (order.review !== undefined) order.review = withProtoEntry(order.review) as Record<string, ReviewFlag>;
  return order;
}

/** `orderIsPending`, `orderIsPaid`, …: the name of the condition that an order's status is `status`. */
const statusCondition = (status: OrderStatus) => `orderIs${status.charAt(0)}${status.slice(1).toLowerCase()}`;

/**
 * The order items of the orders table, as the order store (orders.ts) and the refund store
 * (refunds.ts) write them: guarded updates of one order, and transitions, whose events go into the
 * order's outbox in the same conditional write.
 */
export class OrderItems {
  readonly table: Table;

  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    /** Told of each transition once it is written, with its events (the publisher); none in some tests. */
    private readonly onTransition?: TransitionListener,
  ) {
    this.table = new Table(db, tableName, OrderStoreError);
  }

  /** An update of one order, guarded by the conditions the caller adds. */
  update(outTradeNo: string): GuardedUpdate {
    return new GuardedUpdate(this.table, { pk: outTradeNo });
  }

  /** An update of one order that holds only while its status is `status` (and what the caller adds). */
  whileStatus(outTradeNo: string, status: OrderStatus): GuardedUpdate {
    return this.update(outTradeNo).when(statusCondition(status), '#status = :expected', { ':expected': status }, STATUS);
  }

  /** Runs an update of an order: the order as it now is, or undefined when a condition did not hold. */
  async write(update: GuardedUpdate): Promise<Order | undefined> {
    const item = await update.run();
    return item && orderOf(item);
  }

  /**
   * A transition: `update` with its events added to the order's outbox by the same conditional write
   * (so no transition is ever stored without them, nor its events without it). Once the write
   * succeeded, the listener is told (it publishes them). The order as it now is, or undefined when a
   * condition did not hold (nothing written, nothing published).
   */
  async transition(update: GuardedUpdate, transitions: Transition[]): Promise<Order | undefined> {
    if (transitions.length === 0) return this.write(update);
    const entries = transitions.map((transition) => outboxEntry(transition, new Date()));
    const outbox = outboxUpdate(entries);
    const order = await this.write(update.set(outbox.set, outbox.values));
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
}
