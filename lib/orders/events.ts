import { createHash } from 'node:crypto';
import type { EventSchema, OutboxEntry } from '../events/outbox';
import { OUT_TRADE_NO_PATTERN } from '../wechatpay/ids';
import { openidOf, type Order, type OrderLine, type PaymentSource, type ReviewFlag } from './model';

/**
 * Order events for fulfilment (docs/reference/events.md): the event types, their ids, the facts of each
 * transition and the `detail` every consumer reads. The store adds each transition's outbox entry in
 * the transition's own write (lib/orders/store/order-item.ts); lib/events publishes, sweeps and clears them,
 * told of orders by `ORDER_EVENTS`.
 */

/** `source` of every event the product publishes. */
export const EVENT_SOURCE = 'wechatpay.orders';

export const ORDER_EVENT_TYPES = [
  'Order Paid',
  'Order Closed',
  'Order Failed',
  'Payment Needs Review',
  'Refund Succeeded',
  'Refund Failed',
  'Order Refunded',
] as const;
/** The `detail-type` of an event. */
export type OrderEventType = (typeof ORDER_EVENT_TYPES)[number];

/** The version of the `detail` schema below; a change that removes or retypes a field raises it. */
export const DETAIL_SCHEMA_VERSION = 1;

/** A refund as its events tell it (the refund code fills it in). */
export interface RefundFacts {
  outRefundNo: string;
  refundFee: number;
  /** PROCESSING, SUCCESS, CHANGE, REFUNDCLOSE or FAILED. */
  status: string;
  refundId?: string;
  reason?: string;
  /** WeChat Pay's code, for a refusal. */
  code?: string;
  /** When WeChat Pay says the money reached the payer. */
  succeededAt?: string;
}

/**
 * The facts of one transition, as the code that makes it knows them: what `outboxEntry` turns into
 * an outbox entry, and what the event's `detail` carries besides the order's own fields.
 */
export type Transition =
  | { type: 'Order Paid'; outTradeNo: string; transactionId: string; paidAt: string; paidVia: PaymentSource }
  | { type: 'Order Closed'; outTradeNo: string; closedAt: string; closeReason: string }
  | { type: 'Order Failed'; outTradeNo: string; failedAt: string; failureCode: string; failureMessage: string }
  /** Money that arrived where the order did not expect it; `status` is the order's once flagged. */
  | { type: 'Payment Needs Review'; outTradeNo: string; status: string; review: ReviewFlag }
  /** A refund settled; `status` is the order's once the refund was recorded (PAID, or REFUNDED). */
  | { type: 'Refund Succeeded' | 'Refund Failed'; outTradeNo: string; status: string; refund: RefundFacts }
  /** Refunds add up to the whole amount: the order is REFUNDED. */
  | { type: 'Order Refunded'; outTradeNo: string; refundedFee: number; refundedAt: string };

/**
 * What every event's `detail` carries (pinned by test/lib/events/outbox.test.ts, documented in
 * docs/reference/events.md). Fields of the order are always present (null when the order has none); the transition's
 * facts are present for the types that have them.
 */
export interface OrderEventDetail {
  schemaVersion: number;
  /** The same for every delivery of one transition: deduplicate on it. */
  eventId: string;
  outTradeNo: string;
  /** The order's status once the transition was made. */
  status: string;
  totalFee: number;
  description: string;
  /** The catalog lines the order was priced from; [] for an order of the merchant's server. */
  items: OrderLine[];
  attach: string | null;
  appId: string | null;
  openid: string | null;
  /** When the transition was written. */
  occurredAt: string;
  transactionId?: string;
  paidAt?: string;
  paidVia?: PaymentSource;
  closedAt?: string;
  closeReason?: string;
  failedAt?: string;
  failureCode?: string;
  failureMessage?: string;
  review?: ReviewFlag;
  refund?: RefundFacts;
  refundedFee?: number;
  refundedAt?: string;
}

/** What tells two transitions of one order of one type apart: a payment, a refund; nothing for a close. */
function transitionKey(transition: Transition): string {
  switch (transition.type) {
    case 'Order Paid':
      return transition.transactionId;
    case 'Payment Needs Review':
      // A refund's flag names its refund: two refunds of one payment are two transitions.
      return `${transition.review.transactionId}:${transition.review.reason}${transition.review.outRefundNo === undefined ? '' : `:${transition.review.outRefundNo}`}`;
    case 'Refund Succeeded':
    case 'Refund Failed':
      return transition.refund.outRefundNo;
    default:
      return '';
  }
}

/**
 * The event id of a transition: 32 hex digits of SHA-256 over the order, the event type and what
 * tells that order's transitions of that type apart. Derived, never drawn: every write, publish and
 * re-publish of one transition carries the same id, whichever path made it.
 */
export function eventId(outTradeNo: string, type: OrderEventType, key = ''): string {
  return createHash('sha256').update(`${outTradeNo}\n${type}\n${key}`).digest('hex').slice(0, 32);
}

/** The facts `detail` carries for a transition: all but its type and its order. */
function factsOf(transition: Transition): Record<string, unknown> {
  const { type, outTradeNo, ...rest } = transition;
  void outTradeNo;
  switch (type) {
    case 'Order Paid':
      return { status: 'PAID', ...rest };
    case 'Order Closed':
      return { status: 'CLOSED', ...rest };
    case 'Order Failed':
      return { status: 'FAILED', ...rest };
    case 'Order Refunded':
      return { status: 'REFUNDED', ...rest };
    default:
      return rest;
  }
}

/**
 * The entry point for every transition's event: given its facts, the outbox entry to add in the
 * same conditional write as the transition (lib/orders/store/order-item.ts adds it with `outboxUpdate`).
 */
export function outboxEntry(transition: Transition, at: Date): OutboxEntry<OrderEventType> {
  return {
    eventId: eventId(transition.outTradeNo, transition.type, transitionKey(transition)),
    detailType: transition.type,
    at: at.toISOString(),
    facts: factsOf(transition),
  };
}

/** The `detail` of an entry's event: the order's own fields, then the transition's facts. */
export function eventDetail(order: Order, entry: OutboxEntry): OrderEventDetail {
  return {
    schemaVersion: DETAIL_SCHEMA_VERSION,
    eventId: entry.eventId,
    outTradeNo: order.outTradeNo,
    status: order.status,
    totalFee: order.totalFee,
    description: order.description,
    items: order.items ?? [],
    attach: order.attach ?? null,
    appId: order.appId ?? null,
    openid: openidOf(order) ?? null,
    occurredAt: entry.at,
    ...entry.facts,
  };
}

/** Orders, as the outbox machinery (lib/events) is told of them. */
export const ORDER_EVENTS: EventSchema<Order> = {
  source: EVENT_SOURCE,
  keyName: 'outTradeNo',
  keyOf: (order) => order.outTradeNo,
  isKey: (key) => OUT_TRADE_NO_PATTERN.test(key),
  detail: eventDetail,
};

/** Told of every transition the store wrote, with the outbox entries that write added. Never throws. */
export type TransitionListener = (order: Order, entries: OutboxEntry[]) => Promise<void>;
