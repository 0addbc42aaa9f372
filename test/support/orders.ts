import { expect } from 'vitest';
import { callback, create } from './api';
import { paidCallback } from './callbacks';
import type { TestStack } from './stack';

/** Orders a test starts from, made through the real handlers (each step asserted). */

/** A NATIVE merchant order of `totalFee` fen, created (201): its outTradeNo. */
export async function pendingOrder(totalFee: number, description: string): Promise<string> {
  const created = await create({ tradeType: 'NATIVE', totalFee, description });
  expect(created.status, created.raw).toBe(201);
  return created.body.outTradeNo;
}

/** The same, paid at the emulator and its callback delivered (SUCCESS): its outTradeNo. */
export async function paidOrder(sim: TestStack['sim'], totalFee: number, description = 'paid'): Promise<string> {
  const id = await pendingOrder(totalFee, description);
  await sim.pay(id);
  const { transaction_id } = await sim.order(id);
  expect((await callback(paidCallback(id, totalFee, { transaction_id }))).returnCode).toBe('SUCCESS');
  return id;
}
