import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { localEndpointOptions } from '../core/aws';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { loadEventBridge } from './eventbridge-client';
import type { EventSchema, OutboxEntry, OutboxItem } from './outbox';

/**
 * Publishes outbox entries to the stage's EventBridge bus (PutEvents), with the `source` and the
 * `detail` their schema gives. The EventBridge client is loaded and built on the first publish, not
 * when the function starts: most invocations (polls of a settled order, duplicate callbacks) publish
 * nothing, and the client's code would otherwise add to every cold start. Publishing never throws:
 * an event that is not accepted stays in its item's outbox, and the recovery schedule's sweep
 * publishes it later.
 */

export interface PublisherOptions {
  /** The bus (name or ARN); unset, nothing is published and every event waits in its outbox. */
  busName?: string;
  /** EventBridge endpoint override, local only (EVENTBRIDGE_ENDPOINT: the local stand-in). */
  endpoint?: string;
  /** Per attempt. The inline publish sits on the callback's path: a slow EventBridge is left to the sweep. */
  timeoutMs?: number;
  maxAttempts?: number;
}

/** One event to publish: an outbox entry and the item (the order) it belongs to. */
export interface PendingEvent<Item extends OutboxItem> {
  item: Item;
  entry: OutboxEntry;
}

export interface EventPublisher<Item extends OutboxItem> {
  readonly busName?: string;
  /** Publishes the events; answers the event ids EventBridge accepted. Never throws. */
  publish(events: PendingEvent<Item>[]): Promise<Set<string>>;
  /** The EventBridge client, built on first use: tests and benchmarks add SDK middleware to it. */
  client(): Promise<EventBridgeClient>;
}

/** PutEvents takes at most 10 entries and 256 KB a call; batches stay under both. */
const MAX_ENTRIES = 10;
const MAX_BATCH_BYTES = 200 * 1024;

interface Entry {
  eventId: string;
  request: { Source: string; DetailType: string; Detail: string; EventBusName: string; Time: Date };
  bytes: number;
}

function batches(entries: Entry[]): Entry[][] {
  const out: Entry[][] = [];
  let current: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length === MAX_ENTRIES || (current.length > 0 && bytes + entry.bytes > MAX_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function createEventPublisher<Item extends OutboxItem>(schema: EventSchema<Item>, options: PublisherOptions): EventPublisher<Item> {
  const { busName, endpoint } = options;
  let client: Promise<EventBridgeClient> | undefined;
  let warnedUnconfigured = false;

  const buildClient = async (): Promise<EventBridgeClient> => {
    // Only the client and the one command (eventbridge-client.ts): the rest of the API stays out of the bundle.
    const { EventBridgeClient } = await loadEventBridge();
    return new EventBridgeClient({
      ...localEndpointOptions(endpoint),
      maxAttempts: options.maxAttempts ?? 2,
      requestHandler: { requestTimeout: options.timeoutMs ?? 1_000, connectionTimeout: options.timeoutMs ?? 1_000 },
    });
  };

  const getClient = () => {
    client ??= buildClient();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };

  async function send(batch: Entry[], accepted: Set<string>): Promise<void> {
    const ids = batch.map((entry) => entry.eventId);
    try {
      const { PutEventsCommand } = await loadEventBridge();
      const answer = await (await getClient()).send(new PutEventsCommand({ Entries: batch.map((entry) => entry.request) }));
      const refused: Array<{ eventId: string; code?: string }> = [];
      batch.forEach((entry, i) => {
        const result = answer.Entries?.[i];
        if (result?.EventId && !result.ErrorCode) accepted.add(entry.eventId);
        else refused.push({ eventId: entry.eventId, code: result?.ErrorCode ?? 'NO_ANSWER' });
      });
      if (refused.length > 0) {
        logger.warn('EventBridge refused events; they stay in their outbox for the sweep', { refused });
        countMetric('EventsNotPublished', refused.length);
      }
    } catch (error) {
      logger.warn('events could not be published; they stay in their outbox for the sweep', {
        eventIds: ids,
        error: error instanceof Error ? { name: error.name, message: error.message } : String(error),
      });
      countMetric('EventsNotPublished', batch.length);
    }
  }

  return {
    busName,
    client: getClient,
    async publish(events) {
      const accepted = new Set<string>();
      if (events.length === 0) return accepted;
      if (!busName) {
        if (!warnedUnconfigured) logger.warn('EVENT_BUS_NAME is not set: events stay in their orders\' outbox');
        warnedUnconfigured = true;
        return accepted;
      }
      const entries: Entry[] = events.map(({ item, entry }) => {
        const request = {
          Source: schema.source,
          DetailType: entry.detailType,
          Detail: JSON.stringify(schema.detail(item, entry)),
          EventBusName: busName,
          Time: new Date(entry.at),
        };
        return { eventId: entry.eventId, request, bytes: Buffer.byteLength(request.Detail) + request.DetailType.length + request.Source.length };
      });
      await Promise.all(batches(entries).map((batch) => send(batch, accepted)));
      if (accepted.size > 0) countMetric('EventsPublished', accepted.size);
      return accepted;
    },
  };
}
