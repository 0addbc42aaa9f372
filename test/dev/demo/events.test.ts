import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../dev/emulator/http-server';
import { serveDemo, type RunningDemo } from '../../../dev/demo/server';
import { startEventBridge, type RunningEventBridge } from '../../../dev/local/eventbridge';

/**
 * The demo page's server reads `GET /events?outTradeNo=` from the local events service (the
 * EventBridge stand-in), so the page can show the events of its order from its own origin: only what
 * the page shows of them.
 */

let bridge: RunningEventBridge;
let demo: RunningDemo;
let withoutEvents: RunningDemo;

beforeAll(async () => {
  bridge = await startEventBridge({ busName: 'wechatpay-local', log: () => {} });
  const client = new EventBridgeClient({
    endpoint: bridge.url,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const entry = (outTradeNo: string, type: string) => ({
    Source: 'wechatpay.orders',
    DetailType: type,
    Detail: JSON.stringify({ eventId: `${outTradeNo}-${type}`, outTradeNo, status: 'PAID' }),
    EventBusName: 'wechatpay-local',
  });
  await client.send(
    new PutEventsCommand({
      Entries: [entry('20261123demoA', 'Order Paid'), entry('20261123demoB', 'Order Paid'), entry('20261123demoA', 'Payment Needs Review')],
    }),
  );
  client.destroy();
  // Options built apart from the call: the demo server's options grow on other branches too.
  const options = {
    apiUrl: 'http://127.0.0.1:9',
    emulatorUrl: 'http://127.0.0.1:9',
    eventsUrl: `${bridge.url}/`,
    merchantToken: 'demo-events-test-token',
  };
  demo = await serveDemo(options);
  const noEvents = { apiUrl: 'http://127.0.0.1:9', emulatorUrl: 'http://127.0.0.1:9', merchantToken: 'demo-events-test-token' };
  withoutEvents = await serveDemo(noEvents);
});

afterAll(async () => {
  await demo?.close();
  await withoutEvents?.close();
  await bridge?.close();
});

const at = (server: RunningDemo, path: string, init?: RequestInit) => fetch(new URL(path, server.url), init);

describe('GET /events on the demo server', () => {
  it("answers one order's events, in order, as the events service lists them", async () => {
    const response = await at(demo, '/events?outTradeNo=20261123demoA');
    expect(response.status).toBe(200);
    const { events } = (await response.json()) as { events: Array<Record<string, unknown>> };
    expect(events.map((event) => event['detail-type'])).toEqual(['Order Paid', 'Payment Needs Review']);
    const [published] = bridge.events({ outTradeNo: '20261123demoA' });
    expect(events[0]).toEqual({ id: published!.id, 'detail-type': 'Order Paid', time: published!.time, status: 'PAID' });
    expect((await (await at(demo, '/events?outTradeNo=20261123none')).json()) as unknown).toEqual({ events: [] });
  });

  it("never answers every order's events: an outTradeNo is required, and checked", async () => {
    for (const query of ['', '?outTradeNo=', '?outTradeNo=a%26b', `?outTradeNo=${'x'.repeat(65)}`]) {
      const response = await at(demo, `/events${query}`);
      expect(response.status, query).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', field: 'outTradeNo' } });
    }
  });

  it('refuses other methods', async () => {
    expect((await at(demo, '/events?outTradeNo=20261123demoA', { method: 'POST', body: '{}' })).status).toBe(405);
  });

  it('says so when it has no events service, or the service does not answer', async () => {
    const none = await at(withoutEvents, '/events?outTradeNo=20261123demoA');
    expect(none.status).toBe(503);
    expect(await none.json()).toMatchObject({ error: { code: 'EVENTS_UNAVAILABLE' } });
    const port = await freePort();
    const unreachable = await serveDemo({
      ...{ apiUrl: 'http://127.0.0.1:9', emulatorUrl: 'http://127.0.0.1:9', merchantToken: 'demo-events-test-token' },
      eventsUrl: `http://127.0.0.1:${port}`,
    });
    try {
      const response = await at(unreachable, '/events?outTradeNo=20261123demoA');
      expect(response.status).toBe(502);
    } finally {
      await unreachable.close();
    }
  });
});
