import { afterAll, describe, expect, it } from 'vitest';
import { serveDemo, type RunningDemo } from '../../../dev/demo/server';
import { callback, create } from '../../support/api';
import { paidCallback } from '../../support/callbacks';
import { eventually } from '../../support/eventually';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';

/**
 * Security review 3, finding 4: docs/internals/guarantees.md promises "Frontends never see the openid". The demo server
 * (standing for the merchant's web server) forwarded `GET /events?outTradeNo=` from the events service
 * unchanged, to anyone, with no session: every event's detail carries the payer's openid (and attach,
 * items, review flags), so any browser that knows or is shown an order number read the payer's openid.
 */
let stack: TestStack;
let demo: RunningDemo | undefined;
useTestStack((started) => ({ stack } = started));
afterAll(async () => {
  await demo?.close();
});

describe("the demo server's GET /events", () => {
  it("never hands a browser the payer's openid, nor anything of the event's detail but the status", async () => {
    const openid = 'oAuditPayerOpenid000000000001';
    const made = await create({ tradeType: 'JSAPI', totalFee: 100, description: 'demo leak', openid, attach: 'merchant-only note' });
    expect(made.status, made.raw).toBe(201);
    const id = made.body.outTradeNo;
    await stack.sim.pay(id);
    const { transaction_id } = await stack.sim.order(id);
    expect((await callback(paidCallback(id, 100, { transaction_id }))).returnCode).toBe('SUCCESS');
    demo = await serveDemo({
      apiUrl: 'http://127.0.0.1:9',
      emulatorUrl: 'http://127.0.0.1:9',
      eventsUrl: stack.events.url,
      merchantToken: 'demo-audit-token-0123456789',
    });
    const text = await eventually(async () => {
      const body = await (await fetch(new URL(`/events?outTradeNo=${id}`, demo!.url))).text();
      return body.includes('Order Paid') ? body : undefined;
    });
    expect(text).not.toContain(openid);
    expect(text).not.toContain('merchant-only note');
    const { events } = JSON.parse(text) as { events: Array<Record<string, unknown>> };
    for (const event of events) expect(Object.keys(event).sort()).toEqual(['detail-type', 'id', 'status', 'time']);
  });
});
