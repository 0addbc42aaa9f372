import { sweepOutbox, type SweepSummary } from '../events/sweep';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { walkDue } from '../store/sharded-index';
import type { OrdersContext } from './context';
import type { Order } from './model';
import { recoverRefunds, type RefundRecoverySummary } from './refunds';
import { settleWithWechatPay, type Settlement } from './settle';
import { GatewayError } from './gateway';

/**
 * When, counted from an order's creation, recovery asks WeChat Pay about it: WeChat Pay's own guide
 * queries at about 5 s, 30 s, 1, 3, 5, 10 and 30 minutes, then the order is closed at expiry.
 */
const CHECK_OFFSETS_MS = [5_000, 30_000, 60_000, 180_000, 300_000, 600_000, 1_800_000];
const LATER_CHECK_INTERVAL_MS = 1_800_000;
/** After a failed close or an unreadable answer past expiry, try again on the next run. */
const RETRY_AFTER_MS = 60_000;

export interface RecoveryOptions {
  /** Epoch ms after which no new order is taken up, well before the Lambda deadline. */
  deadline: number;
  /** Orders handled at once (orderquery / closeorder calls in flight). */
  concurrency?: number;
  /** Orders read per index query page. */
  pageSize?: number;
}

export interface RecoverySummary {
  /** Due orders this run took up. */
  examined: number;
  /** Payments recorded because recovery learned of them. */
  repaired: number;
  closed: number;
  /** Still pending, checked again later. */
  left: number;
  /** Due orders another run took up first. */
  skipped: number;
  /** WeChat Pay or storage failures; those orders are checked again on a later run. */
  errors: number;
  /** True when the deadline came before every due order was taken up. */
  stoppedEarly: boolean;
  /** The outbox sweep that follows (lib/events/sweep.ts): events published again. */
  events?: SweepSummary;
}

/** The next time to look at an order, after its `checkCount`-th check. */
export function nextCheckTime(order: Pick<Order, 'createdAt' | 'expiresAt'>, checkCount: number, now: number): number {
  const created = Date.parse(order.createdAt);
  const expires = Date.parse(order.expiresAt);
  if (now >= expires) return now + RETRY_AFTER_MS;
  const offset = CHECK_OFFSETS_MS[checkCount];
  const planned = offset === undefined ? now + LATER_CHECK_INTERVAL_MS : Math.max(created + offset, now + 1);
  // Always look again at expiry, when the order is to be closed.
  return Math.min(planned, expires);
}

type Verdict = Settlement | 'errors';

async function recoverOne(order: Order, ctx: OrdersContext): Promise<Verdict | 'skipped'> {
  const now = ctx.now().getTime();
  const checkCount = (order.checkCount ?? 0) + 1;
  // Moving the next check first is the lease: of two runs that read the same due order, only one
  // moves it, and a run that dies mid-way leaves the order due again at the new time.
  const taken = await ctx.store.scheduleNextCheck(
    order.outTradeNo,
    order.nextCheckAt as number,
    nextCheckTime(order, checkCount, now),
    checkCount,
  );
  if (!taken) return 'skipped';
  try {
    return (await settleWithWechatPay(order, 'recovery', ctx)).settlement;
  } catch (error) {
    logger.warn('recovery could not settle an order; it is checked again later', {
      outTradeNo: order.outTradeNo,
      code: error instanceof GatewayError ? error.code : undefined,
      error: error instanceof GatewayError ? undefined : error,
    });
    return 'errors';
  }
}

/**
 * The recovery schedule's run: the pending orders whose check is due, then the PROCESSING refunds
 * whose check is due (lib/orders/refunds/recovery.ts: refundquery, and a resend of a refund WeChat Pay never
 * received), then the events whose publish was never confirmed (the outbox sweep), each reading only
 * its own sparse index, all within the deadline.
 */
export async function recoverOrders(ctx: OrdersContext, options: RecoveryOptions): Promise<RecoverySummary & RefundRecoverySummary> {
  const orders = await recoverPendingOrders(ctx, options);
  const { stoppedEarly, ...refunds } = await recoverRefunds(ctx, { deadline: options.deadline, pageSize: options.pageSize });
  const events = await sweepOutbox(ctx, { deadline: options.deadline, concurrency: options.concurrency });
  return { ...orders, ...refunds, events, stoppedEarly: orders.stoppedEarly || stoppedEarly };
}

/**
 * Finds the pending orders whose next check is due (a query of the sparse pending index per shard:
 * reads grow with pending orders, never with the table) and settles each with WeChat Pay.
 */
async function recoverPendingOrders(ctx: OrdersContext, options: RecoveryOptions): Promise<RecoverySummary> {
  const concurrency = options.concurrency ?? 8;
  const pageSize = options.pageSize ?? 100;
  const summary: RecoverySummary = { examined: 0, repaired: 0, closed: 0, left: 0, skipped: 0, errors: 0, stoppedEarly: false };
  const now = ctx.now().getTime();
  summary.stoppedEarly = await walkDue(ctx.store.duePending(now, pageSize), {
    deadline: options.deadline,
    concurrency,
    handle: async (order) => {
      const verdict = await recoverOne(order, ctx);
      if (verdict !== 'skipped') summary.examined += 1;
      summary[verdict] += 1;
      if (verdict === 'repaired') countMetric('RecoveryRepaired');
      if (verdict === 'closed') countMetric('RecoveryClosed');
    },
  });
  return summary;
}
