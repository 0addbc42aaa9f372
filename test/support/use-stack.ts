import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { OrdersContext } from '../../lib/orders/context';
import { ordersContext } from '../../lib/runtime';
import { startTestStack, type TestStack } from './stack';

export interface StartedStack {
  stack: TestStack;
  /** The orders context the handlers use (same store, same client), for tests that go below them. */
  ctx: OrdersContext;
}

/**
 * The test stack for one test file: started before its tests, handed to `started` (to keep in the
 * file's own variables), closed after them. With `reset`, the emulator forgets everything before each
 * test.
 */
export function useTestStack(
  started: (stack: StartedStack) => unknown,
  options: Parameters<typeof startTestStack>[0] & { reset?: boolean } = {},
): void {
  let stack: TestStack | undefined;
  beforeAll(async () => {
    stack = await startTestStack(options);
    await started({ stack, ctx: await ordersContext() });
  });
  afterAll(async () => {
    await stack?.close();
  });
  if (options.reset) {
    beforeEach(async () => {
      await stack?.sim.reset();
    });
  }
}
