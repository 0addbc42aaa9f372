import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from '../../../dev/local/eventbridge';

/**
 * The local EventBridge stand-in, driven by the AWS SDK's own EventBridge client: what the product
 * sends it (PutEvents, JSON 1.1), what it answers, what it keeps and serves, and what it hands on.
 */

let bridge: RunningEventBridge;
let client: EventBridgeClient;
const lines: string[] = [];
const delivered: DeliveredEvent[] = [];
let failDeliveries = false;

beforeAll(async () => {
  bridge = await startEventBridge({
    busName: 'wechatpay-local',
    region: 'ap-southeast-1',
    log: (line) => lines.push(line),
    targets: [
      (event) => {
        if (failDeliveries) throw new Error('target down');
        delivered.push(event);
      },
    ],
  });
  client = new EventBridgeClient({
    endpoint: bridge.url,
    region: 'ap-southeast-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client?.destroy();
  await bridge?.close();
});
beforeEach(() => {
  lines.length = 0;
  delivered.length = 0;
  failDeliveries = false;
});

let sequence = 0;
function entry(detail: Record<string, unknown> = {}, extra: Partial<PutEventsRequestEntry> = {}): PutEventsRequestEntry {
  sequence += 1;
  return {
    Source: 'wechatpay.orders',
    DetailType: 'Order Paid',
    Detail: JSON.stringify({ eventId: `e${sequence}`, outTradeNo: `order-${sequence}`, status: 'PAID', ...detail }),
    EventBusName: 'wechatpay-local',
    ...extra,
  };
}

async function list(query = ''): Promise<{ status: number; body: { events: Array<Record<string, unknown>> } }> {
  const response = await fetch(`${bridge.url}/events${query}`);
  return { status: response.status, body: (await response.json()) as { events: Array<Record<string, unknown>> } };
}

describe('PutEvents (AWSEvents.PutEvents, x-amz-json-1.1)', () => {
  it('accepts up to 10 entries, answers an EventId for each, and keeps them in order', async () => {
    const before = bridge.events().length;
    const entries = Array.from({ length: 10 }, () => entry());
    const answer = await client.send(new PutEventsCommand({ Entries: entries }));
    expect(answer.FailedEntryCount).toBe(0);
    expect(answer.Entries).toHaveLength(10);
    for (const result of answer.Entries ?? []) expect(result.EventId).toMatch(/^[0-9a-f-]{36}$/);
    const kept = bridge.events().slice(before);
    expect(kept.map((event) => event.id)).toEqual(answer.Entries?.map((result) => result.EventId));
    expect(kept.map((event) => event.detail.outTradeNo)).toEqual(entries.map((e) => JSON.parse(e.Detail as string).outTradeNo));
  });

  it('takes the bus by name or by ARN, and the event time from the entry', async () => {
    const byArn = entry(
      {},
      { EventBusName: 'arn:aws:events:ap-southeast-1:123456789012:event-bus/wechatpay-local', Time: new Date('2026-11-23T01:02:03.456Z') },
    );
    const answer = await client.send(new PutEventsCommand({ Entries: [byArn] }));
    const event = bridge.events().find((e) => e.id === answer.Entries?.[0]?.EventId);
    expect(event?.time).toBe('2026-11-23T01:02:03Z');
  });

  it('refuses an entry without Source, DetailType or a JSON object Detail, entry by entry, as EventBridge does', async () => {
    const answer = await client.send(
      new PutEventsCommand({
        Entries: [
          entry(),
          { ...entry(), Source: undefined },
          { ...entry(), DetailType: undefined },
          { ...entry(), Detail: 'not json' },
          { ...entry(), Detail: '[1]' },
        ],
      }),
    );
    expect(answer.FailedEntryCount).toBe(4);
    expect(answer.Entries?.map((result) => result.ErrorCode ?? 'ok')).toEqual([
      'ok',
      'InvalidArgument',
      'InvalidArgument',
      'MalformedDetail',
      'MalformedDetail',
    ]);
    expect(answer.Entries?.[1]?.ErrorMessage).toBe('Parameter Source is not valid. Reason: Source is a required argument.');
  });

  it('refuses a request of more than 10 entries, or none, as a whole', async () => {
    await expect(client.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry()) }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
    await expect(client.send(new PutEventsCommand({ Entries: [] }))).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('accepts an event for a bus it does not have and drops it, as EventBridge does, saying so in its log', async () => {
    const before = bridge.events().length;
    const answer = await client.send(new PutEventsCommand({ Entries: [entry({}, { EventBusName: 'wechatpay-prod' })] }));
    expect(answer.FailedEntryCount).toBe(0);
    expect(bridge.events()).toHaveLength(before);
    expect(lines.some((line) => JSON.parse(line).event === 'dropped' && /no event bus wechatpay-prod/.test(JSON.parse(line).reason))).toBe(
      true,
    );
  });

  it('answers other operations UnknownOperationException', async () => {
    const response = await fetch(bridge.url, {
      method: 'POST',
      headers: { 'x-amz-target': 'AWSEvents.ListRules', 'content-type': 'application/x-amz-json-1.1' },
      body: '{}',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: 'UnknownOperationException' });
  });
});

describe('GET /events', () => {
  it('lists every event in order, each as { id, detail-type, source, time, detail }', async () => {
    await client.send(new PutEventsCommand({ Entries: [entry({ totalFee: 100 })] }));
    const { status, body } = await list();
    expect(status).toBe(200);
    expect(body.events.length).toBe(bridge.events().length);
    const last = body.events.at(-1)!;
    expect(Object.keys(last).sort()).toEqual(['detail', 'detail-type', 'id', 'source', 'time']);
    expect(last).toMatchObject({ 'detail-type': 'Order Paid', source: 'wechatpay.orders', detail: { totalFee: 100 } });
    expect(last.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('filters by ?outTradeNo=', async () => {
    await client.send(
      new PutEventsCommand({
        Entries: [
          entry({ outTradeNo: 'only-this' }, { DetailType: 'Order Paid' }),
          entry({ outTradeNo: 'only-this' }, { DetailType: 'Payment Needs Review' }),
        ],
      }),
    );
    const { body } = await list('?outTradeNo=only-this');
    expect(body.events.map((event) => event['detail-type'])).toEqual(['Order Paid', 'Payment Needs Review']);
    expect((await list('?outTradeNo=none-such')).body.events).toEqual([]);
  });

  it('prints one line per event', async () => {
    await client.send(
      new PutEventsCommand({ Entries: [entry({ outTradeNo: 'printed', eventId: 'abc' }), entry({ outTradeNo: 'printed' })] }),
    );
    const printed = lines.map((line) => JSON.parse(line)).filter((line) => line.outTradeNo === 'printed');
    expect(printed).toHaveLength(2);
    expect(printed[0]).toMatchObject({ source: 'eventbridge', event: 'Order Paid', outTradeNo: 'printed', status: 'PAID', eventId: 'abc' });
  });
});

describe('targets', () => {
  it('hands each event to the targets as EventBridge hands it to a Lambda function', async () => {
    const answer = await client.send(new PutEventsCommand({ Entries: [entry({ outTradeNo: 'to-target' })] }));
    await bridge.settled();
    expect(delivered).toEqual([
      expect.objectContaining({
        version: '0',
        id: answer.Entries?.[0]?.EventId,
        'detail-type': 'Order Paid',
        source: 'wechatpay.orders',
        account: '000000000000',
        region: 'ap-southeast-1',
        resources: [],
      }),
    ]);
  });

  it('answers PutEvents once the targets are done, when told to', async () => {
    const order: string[] = [];
    const waiting = await startEventBridge({
      busName: 'wechatpay-local',
      log: () => {},
      awaitTargets: true,
      targets: [
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 30));
          order.push('target');
        },
      ],
    });
    const waitingClient = new EventBridgeClient({
      endpoint: waiting.url,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      await waitingClient.send(new PutEventsCommand({ Entries: [entry({}, { EventBusName: 'wechatpay-local' })] }));
      order.push('answer');
      expect(order).toEqual(['target', 'answer']);
    } finally {
      waitingClient.destroy();
      await waiting.close();
    }
  });

  it('answers PutEvents whatever the targets do, and logs a failed delivery', async () => {
    failDeliveries = true;
    const answer = await client.send(new PutEventsCommand({ Entries: [entry()] }));
    expect(answer.FailedEntryCount).toBe(0);
    await bridge.settled();
    expect(lines.some((line) => JSON.parse(line).event === 'delivery_failed')).toBe(true);
  });
});
