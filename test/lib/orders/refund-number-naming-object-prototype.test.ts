import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getMerchantOrder, getRefund, refund } from '../../support/api';
import { eventually } from '../../support/eventually';
import { paidOrder } from '../../support/orders';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';

/**
 * Security review 3, finding 5: refunds were looked up with `order.refunds[outRefundNo]` on a plain
 * object. `__proto__`, `constructor`, `toString`, ... are valid out_refund_nos to WeChat Pay, so they
 * pass the path check and found Object.prototype's members: a refund that does not exist answered
 * 200 with a phantom body. And a refund really made under `__proto__` (in the merchant platform) was
 * read back from DynamoDB as the map's prototype, vanishing from the order.
 */
let stack: TestStack;
useTestStack((started) => ({ stack } = started), { refunds: true });

const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

describe('a refund number that names an Object.prototype member', () => {
  it('is 404, never a 200 phantom refund', async () => {
    const id = await paidOrder(stack.sim, 100);
    // One real refund, so that the order has a `refunds` map.
    const made = await refund(id, { refundFee: 10, idempotencyKey: randomUUID() });
    expect(made.status, made.raw).toBe(202);
    for (const name of PROTOTYPE_NAMES) {
      const answer = await getRefund(id, name);
      expect({ name, status: answer.status, body: answer.body }).toMatchObject({ name, status: 404 });
    }
  });

  it('is a refund like any other when WeChat Pay made one under it (the merchant platform)', async () => {
    const id = await paidOrder(stack.sim, 100);
    for (const [n, name] of ['__proto__', 'constructor'].entries()) {
      expect((await stack.sim.platformRefund(id, 10 + n, name)).status).toBe(200);
      const answer = await eventually(async () => {
        const found = await getRefund(id, name);
        return found.status === 200 ? found : undefined;
      });
      expect(answer.body).toMatchObject({ outRefundNo: name, refundFee: 10 + n, status: 'SUCCESS', origin: 'external' });
    }
    const view = await getMerchantOrder(id);
    expect(view.body).toMatchObject({ refundedFee: 21 });
    expect((view.body.refunds as Array<{ outRefundNo: string }>).map((r) => r.outRefundNo).sort()).toEqual(['__proto__', 'constructor']);
    expect(view.body.review).toEqual(
      expect.arrayContaining([expect.objectContaining({ reason: 'REFUND_NOT_REQUESTED', outRefundNo: '__proto__' })]),
    );
  });
});
