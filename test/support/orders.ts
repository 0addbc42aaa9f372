import { expect } from 'vitest';
import { create } from './api';

/** Orders a test starts from, made through the real handlers (each step asserted). */

/** A NATIVE merchant order of `totalFee` fen, created (201): its outTradeNo. */
export async function pendingOrder(totalFee: number, description: string): Promise<string> {
  const created = await create({ tradeType: 'NATIVE', totalFee, description });
  expect(created.status, created.raw).toBe(201);
  return created.body.outTradeNo;
}
