import { describe, expect, it } from 'vitest';
import { create, get } from '../support/api';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true });

describe('following an order', () => {
  it('a lost callback: GET asks WeChat Pay and records the payment', async () => {
    await stack.sim.faults({ dropNotifies: 1000 });
    const { body } = await create({ tradeType: 'NATIVE', totalFee: 88, description: 'lost callback' });
    await stack.sim.pay(body.outTradeNo);
    const order = await eventually(async () => {
      const current = (await get(body.outTradeNo)).body;
      return current.status === 'PAID' ? current : undefined;
    }, 10_000);
    expect(order.transactionId).toMatch(/^42000/);
  });

  it('1000 polls of one pending order cause at most a handful of orderquery calls', async () => {
    const { body } = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'polling' });
    const started = Date.now();
    for (let batch = 0; batch < 10; batch += 1) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => get(body.outTradeNo)));
      for (const answer of answers) expect(answer.body.status).toBe('PENDING');
    }
    const elapsed = Date.now() - started;
    const queries = (await stack.sim.order(body.outTradeNo)).calls.filter((c) => c.endpoint === 'orderquery');
    // One query per 3-second interval, however many clients poll.
    expect(queries.length).toBeGreaterThanOrEqual(1);
    expect(queries.length).toBeLessThanOrEqual(Math.ceil(elapsed / 3_000) + 1);
  });

  it('an unknown order is 404; a malformed id is 400', async () => {
    expect((await get('20990101doesnotexist00001')).status).toBe(404);
    const bad = await get('../etc');
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('outTradeNo');
  });

  it('the answer carries nothing personal', async () => {
    const { body } = await create({ tradeType: 'JSAPI', totalFee: 1, description: 'privacy', openid: 'o-private-openid' });
    const answer = (await get(body.outTradeNo)).body;
    expect(JSON.stringify(answer)).not.toContain('o-private-openid');
    expect(Object.keys(answer).sort()).toEqual(['createdAt', 'expiresAt', 'outTradeNo', 'status', 'totalFee', 'tradeType']);
  });
});
