import { createHash, randomInt } from 'node:crypto';
import { openidOf, type Order, type OrderLine, type PaymentSource, type ReviewFlag } from '../orders/model';

/**
 * Events for fulfilment (README: Events). Every transition of an order writes its event into the
 * order's `outbox` in the same conditional write as the transition itself, so no transition is ever
 * recorded without its event. Once the write succeeded, the event is published to EventBridge
 * (publisher.ts); EventBridge hands it back to the clearOutbox function, which removes it from the
 * outbox (clear.ts); whatever is still in an outbox a minute later is published again by the
 * recovery schedule's sweep (sweep.ts). This file is the data: the event types, their ids, the
 * outbox entries and the `detail` every consumer reads. No AWS here.
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

/**
 * How long an entry is left to its inline publish and its confirmation before the sweep publishes
 * it again. Confirmation normally comes within a second; the sweep runs every minute.
 */
export const OUTBOX_GRACE_MS = 60_000;
/** Orders with unpublished events are spread over this many index partitions, as pending orders are. */
export const OUTBOX_SHARDS = 16;
/** The sparse index of orders whose outbox holds events (only they carry outboxShard/outboxDue). */
export const OUTBOX_INDEX = 'outboxByShard';

/** A refund as its events tell it (the refund code fills it in; design §11). */
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

/** One unpublished event, as the order item stores it in its `outbox` list. */
export interface OutboxEntry {
  eventId: string;
  detailType: OrderEventType;
  /** When the transition was written (ISO 8601): the event's `time`. */
  at: string;
  /** The transition's own fields of `detail`, `status` among them. */
  facts: Record<string, unknown>;
}

/**
 * What every event's `detail` carries (pinned by test/lib/events/outbox.test.ts, documented in the
 * README). Fields of the order are always present (null when the order has none); the transition's
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
 * same conditional write as the transition (lib/orders/store.ts adds it; see `outboxUpdate`).
 */
export function outboxEntry(transition: Transition, at: Date): OutboxEntry {
  return {
    eventId: eventId(transition.outTradeNo, transition.type, transitionKey(transition)),
    detailType: transition.type,
    at: at.toISOString(),
    facts: factsOf(transition),
  };
}

/**
 * The part of an UpdateExpression that appends entries to an order's outbox and puts the order in
 * the sparse outbox index (a random shard, due once the grace period is over), to be ANDed into the
 * SET clause of the transition's own conditional write. Works on orders stored before the outbox
 * existed: the list is created when missing.
 */
export function outboxUpdate(entries: OutboxEntry[]): { set: string; values: Record<string, unknown> } {
  const due = Math.min(...entries.map((entry) => Date.parse(entry.at))) + OUTBOX_GRACE_MS;
  return {
    set:
      'outbox = list_append(if_not_exists(outbox, :outboxNone), :outboxNew), ' +
      'outboxShard = if_not_exists(outboxShard, :outboxShard), outboxDue = if_not_exists(outboxDue, :outboxDue)',
    values: { ':outboxNone': [], ':outboxNew': entries, ':outboxShard': String(randomInt(OUTBOX_SHARDS)), ':outboxDue': due },
  };
}

/** When an entry is left to the sweep (epoch ms). */
export function entryDue(entry: OutboxEntry): number {
  return Date.parse(entry.at) + OUTBOX_GRACE_MS;
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

/** Told of every transition the store wrote, with the outbox entries that write added. Never throws. */
export type TransitionListener = (order: Order, entries: OutboxEntry[]) => Promise<void>;
