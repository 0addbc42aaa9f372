import type { OutboxItem } from './outbox';
import type { OutboxStore } from './outbox-store';

/** An event as EventBridge delivers it to a Lambda target (the fields read here). */
export interface DeliveredEvent {
  source?: string;
  'detail-type'?: string;
  /** `eventId`, and the item's key under the schema's `keyName` (`outTradeNo`). */
  detail?: Record<string, unknown>;
}

const EVENT_ID = /^[0-9a-f]{32}$/;

/**
 * The confirmation of one published event: EventBridge delivers every event of the bus's own source
 * back to the clearOutbox function (a rule in serverless.yml), which removes it from its item's
 * outbox. Delivered means published: the sweep leaves it alone. Usually one conditional write (the
 * event is its outbox's only entry); anything else costs a read too.
 */
export async function clearDelivered<Item extends OutboxItem>(event: DeliveredEvent, outbox: OutboxStore<Item>): Promise<'cleared' | 'gone' | 'ignored'> {
  const { source, keyName, isKey } = outbox.schema;
  const eventId = event.detail?.eventId;
  const key = event.detail?.[keyName];
  if (event.source !== source || typeof eventId !== 'string' || typeof key !== 'string') return 'ignored';
  if (!EVENT_ID.test(eventId) || !isKey(key)) return 'ignored';
  const removed = await outbox.remove(key, [eventId], [{ eventId }]);
  return removed > 0 ? 'cleared' : 'gone';
}
