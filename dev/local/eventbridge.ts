import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen, readBody } from '../emulator/http-server';

/**
 * A small local stand-in for EventBridge, for the local stack and the tests: the product's
 * EventBridge client is pointed at it (EVENTBRIDGE_ENDPOINT), exactly as its DynamoDB client is
 * pointed at dynalite. It speaks the part of EventBridge's JSON protocol the product uses,
 * `AWSEvents.PutEvents` (`application/x-amz-json-1.1`), keeps every event put on its bus, in order,
 * hands each to the targets it was given (as a rule would), and serves them:
 *
 *   GET /events[?outTradeNo=...]  →  { "events": [{ "id", "detail-type", "source", "time", "detail" }] }
 */

export interface StoredEvent {
  id: string;
  'detail-type': string;
  source: string;
  /** ISO 8601 to the second, as EventBridge writes it. */
  time: string;
  detail: Record<string, unknown>;
}

/** An event as EventBridge hands it to a target (a Lambda function). */
export interface DeliveredEvent extends StoredEvent {
  version: '0';
  account: string;
  region: string;
  resources: string[];
}

export interface EventBridgeOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** The bus this stand-in has (a name). Events put on another bus are accepted and dropped, as AWS does. */
  busName: string;
  region?: string;
  /** Called with each event put on the bus, as an EventBridge rule's target would be. */
  targets?: Array<(event: DeliveredEvent) => Promise<unknown> | unknown>;
  /**
   * Answer PutEvents only once the targets are done with its events. EventBridge answers at once
   * and delivers later; a test that compares stored state before and after a request wants every
   * delivery its request caused to have landed when it returns. Default false.
   */
  awaitTargets?: boolean;
  /** One line per event (and per problem); default console.log. */
  log?: (line: string) => void;
}

export interface RunningEventBridge {
  /** `http://host:port`: the EVENTBRIDGE_ENDPOINT, and the base of GET /events. */
  url: string;
  port: number;
  /** Every event put on the bus so far, in order. */
  events(filter?: { outTradeNo?: string }): StoredEvent[];
  /** Resolves once every delivery to the targets started so far has ended. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const JSON_11 = 'application/x-amz-json-1.1';
/** PutEvents: at most 10 entries, 256 KB in all (EventBridge's limits). */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;
const ACCOUNT = '000000000000';

interface RequestEntry {
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  EventBusName?: unknown;
  Time?: unknown;
  Resources?: unknown;
}

type EntryResult = { EventId: string } | { ErrorCode: string; ErrorMessage: string };

/** `Time` as the SDK sends it (epoch seconds) or an ISO string; now when absent. */
function eventTime(value: unknown): string {
  const date = typeof value === 'number' ? new Date(value * 1000) : typeof value === 'string' ? new Date(value) : new Date();
  const valid = Number.isNaN(date.getTime()) ? new Date() : date;
  return `${valid.toISOString().slice(0, 19)}Z`;
}

function busOf(value: unknown): string {
  const name = typeof value === 'string' && value !== '' ? value : 'default';
  // An ARN names its bus after `event-bus/`.
  return name.startsWith('arn:') ? name.slice(name.indexOf('event-bus/') + 'event-bus/'.length) : name;
}

export async function startEventBridge(options: EventBridgeOptions): Promise<RunningEventBridge> {
  const stored: StoredEvent[] = [];
  const region = options.region ?? 'local';
  const log = options.log ?? ((line: string) => console.log(line));
  const deliveries = new Set<Promise<unknown>>();

  function deliver(event: StoredEvent): Array<Promise<unknown>> {
    const delivered: DeliveredEvent = { version: '0', account: ACCOUNT, region, resources: [], ...event };
    const started: Array<Promise<unknown>> = [];
    for (const target of options.targets ?? []) {
      const delivery = Promise.resolve()
        .then(() => target(delivered))
        .catch((error: unknown) =>
          log(
            JSON.stringify({
              time: new Date().toISOString(),
              source: 'eventbridge',
              event: 'delivery_failed',
              id: event.id,
              message: String(error),
            }),
          ),
        )
        .finally(() => deliveries.delete(delivery));
      deliveries.add(delivery);
      started.push(delivery);
    }
    return started;
  }

  function putEntry(entry: RequestEntry, started: Array<Promise<unknown>>): EntryResult {
    for (const field of ['Source', 'DetailType', 'Detail'] as const) {
      if (typeof entry[field] !== 'string' || entry[field] === '') {
        return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
      }
    }
    let detail: unknown;
    try {
      detail = JSON.parse(entry.Detail as string);
    } catch {
      detail = undefined;
    }
    if (!detail || typeof detail !== 'object' || Array.isArray(detail))
      return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
    const id = randomUUID();
    const bus = busOf(entry.EventBusName);
    if (bus !== options.busName) {
      // EventBridge accepts an event for a bus that does not exist, and drops it: say so here.
      log(
        JSON.stringify({
          time: new Date().toISOString(),
          source: 'eventbridge',
          event: 'dropped',
          id,
          bus,
          reason: `no event bus ${bus}; this stand-in has ${options.busName}`,
        }),
      );
      return { EventId: id };
    }
    const event: StoredEvent = {
      id,
      'detail-type': entry.DetailType as string,
      source: entry.Source as string,
      time: eventTime(entry.Time),
      detail: detail as Record<string, unknown>,
    };
    stored.push(event);
    const { outTradeNo, status, eventId } = event.detail;
    log(
      JSON.stringify({
        time: new Date().toISOString(),
        source: 'eventbridge',
        event: event['detail-type'],
        outTradeNo,
        status,
        eventId,
        id,
      }),
    );
    started.push(...deliver(event));
    return { EventId: id };
  }

  function sendJson(response: ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8'): void {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(JSON.stringify(body));
  }

  function awsError(response: ServerResponse, status: number, type: string, message: string): void {
    sendJson(response, status, { __type: type, message }, JSON_11);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://eventbridge');
    if (url.pathname === '/events') {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendJson(response, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed here` } });
        return;
      }
      const outTradeNo = url.searchParams.get('outTradeNo') ?? undefined;
      sendJson(response, 200, { events: events(outTradeNo === undefined ? {} : { outTradeNo }) });
      return;
    }
    if (url.pathname !== '/' || request.method !== 'POST') {
      sendJson(response, 404, { error: { code: 'NOT_FOUND', message: 'POST / (AWSEvents.PutEvents) and GET /events only' } });
      return;
    }
    const body = await readBody(request, MAX_REQUEST_BYTES + 64 * 1024);
    const target = request.headers['x-amz-target'];
    if (target !== 'AWSEvents.PutEvents') {
      awsError(
        response,
        400,
        'UnknownOperationException',
        `this local EventBridge answers AWSEvents.PutEvents only, not ${String(target)}`,
      );
      return;
    }
    if (body === undefined || body.length > MAX_REQUEST_BYTES) {
      awsError(response, 400, 'ValidationException', 'Total size of the entries in the request is over the limit.');
      return;
    }
    let input: { Entries?: unknown };
    try {
      input = JSON.parse(body.toString('utf8')) as { Entries?: unknown };
    } catch {
      awsError(response, 400, 'SerializationException', 'the request body is not JSON');
      return;
    }
    const entries = input?.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_ENTRIES) {
      awsError(
        response,
        400,
        'ValidationException',
        `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${MAX_ENTRIES}`,
      );
      return;
    }
    const started: Array<Promise<unknown>> = [];
    const results = entries.map((entry) => putEntry((entry ?? {}) as RequestEntry, started));
    if (options.awaitTargets) await Promise.all(started);
    sendJson(response, 200, { FailedEntryCount: results.filter((result) => 'ErrorCode' in result).length, Entries: results }, JSON_11);
  }

  function events(filter: { outTradeNo?: string } = {}): StoredEvent[] {
    return stored.filter((event) => filter.outTradeNo === undefined || event.detail.outTradeNo === filter.outTradeNo);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) awsError(response, 500, 'InternalException', String(error));
      else response.destroy();
    });
  });
  const listening = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url: listening.origin,
    port: listening.port,
    events,
    async settled() {
      while (deliveries.size > 0) await Promise.all([...deliveries]);
    },
    async close() {
      await listening.close();
      while (deliveries.size > 0) await Promise.all([...deliveries]);
    },
  };
}
