import type { OrdersContext } from '../../lib/orders/context';
import type { StoredEvent } from '../../dev/local/eventbridge';
import type { TestStack } from './stack';

/** The events of the test stack's bus, and faults injected at the product's EventBridge client. */

/** Events the bus holds for one order (or all), in the order they were put. */
export function eventsOf(stack: TestStack, outTradeNo?: string): StoredEvent[] {
  return stack.events.events(outTradeNo === undefined ? {} : { outTradeNo });
}

/** Deliveries per event id, among the given events. */
export function deliveriesById(events: StoredEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const event of events) {
    const id = event.detail.eventId as string;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export type PutEventsFault =
  /** The call fails before reaching EventBridge (a network error, a throttle that outlasted the retries). */
  | 'error'
  /** EventBridge answers, refusing every entry (FailedEntryCount). */
  | 'refused'
  /** EventBridge accepts the events, but the answer is lost (a timeout after the request went out). */
  | 'lost answer'
  /** The call never ends: the function dies there (Lambda's timeout). `release()` ends it with an error. */
  | 'hang';

function sdkError(name: string): Error {
  const error = new Error(`injected ${name}`) as Error & { $fault: string; $metadata: Record<string, unknown> };
  error.name = name;
  error.$fault = 'server';
  error.$metadata = { httpStatusCode: 500, attempts: 1 };
  return error;
}

let sequence = 0;

/**
 * Makes the next `times` PutEvents calls of the product's EventBridge client fail as `kind` says. It
 * sits before the SDK's retries (step initialize), so the product sees what outlasted them.
 */
export async function faultPutEvents(ctx: OrdersContext, kind: PutEventsFault, times = 1) {
  const client = await ctx.events.client();
  const name = `put-events-fault-${sequence++}`;
  const state = { fired: 0, hanging: [] as Array<() => void> };
  client.middlewareStack.add(
    (next) => async (args) => {
      if (state.fired >= times) return next(args);
      state.fired += 1;
      switch (kind) {
        case 'error':
          throw sdkError('InternalException');
        case 'refused': {
          const entries = (args.input as { Entries?: unknown[] }).Entries ?? [];
          const output = {
            FailedEntryCount: entries.length,
            Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'injected' })),
            $metadata: {},
          };
          return { output } as never;
        }
        case 'lost answer':
          await next(args);
          throw sdkError('TimeoutError');
        case 'hang':
          await new Promise<void>((resolve) => state.hanging.push(resolve));
          throw sdkError('FunctionTimedOut');
      }
    },
    { step: 'initialize', name },
  );
  return {
    state,
    /** Ends the hanging calls (with an error, as nothing answered them). */
    release: () => state.hanging.splice(0).forEach((resolve) => resolve()),
    stop: () => client.middlewareStack.remove(name),
  };
}

/** Counts the PutEvents calls of the product's EventBridge client and the entries they carried. */
export async function countPutEvents(ctx: OrdersContext) {
  const client = await ctx.events.client();
  const name = `put-events-count-${sequence++}`;
  const counts = { calls: 0, entries: 0 };
  client.middlewareStack.add(
    (next) => async (args) => {
      counts.calls += 1;
      counts.entries += ((args.input as { Entries?: unknown[] }).Entries ?? []).length;
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { counts, stop: () => client.middlewareStack.remove(name) };
}
