import { OUT_TRADE_NO_PATTERN } from '../wechatpay/ids';
import { EVENT_SOURCE } from './outbox';
import type { OutboxStore } from './outbox-store';

/** An event as EventBridge delivers it to a Lambda target (the fields read here). */
export interface DeliveredEvent {
  source?: string;
  'detail-type'?: string;
  detail?: { eventId?: unknown; outTradeNo?: unknown };
}

const EVENT_ID = /^[0-9a-f]{32}$/;

/**
 * The confirmation of one published event: EventBridge delivers every event of the bus's own source
 * back to the clearOutbox function (a rule in serverless.yml), which removes it from its order's
 * outbox. Delivered means published: the sweep leaves it alone. Usually one conditional write (the
 * event is its outbox's only entry); anything else costs a read too.
 */
export async function clearDelivered(event: DeliveredEvent, outbox: OutboxStore): Promise<'cleared' | 'gone' | 'ignored'> {
  const { eventId, outTradeNo } = event.detail ?? {};
  if (event.source !== EVENT_SOURCE || typeof eventId !== 'string' || typeof outTradeNo !== 'string') return 'ignored';
  if (!EVENT_ID.test(eventId) || !OUT_TRADE_NO_PATTERN.test(outTradeNo)) return 'ignored';
  const removed = await outbox.remove(outTradeNo, [eventId], [{ eventId }]);
  return removed > 0 ? 'cleared' : 'gone';
}
