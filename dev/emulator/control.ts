import { fromBeijingTimestamp } from '../../lib/wechatpay/time';
import { orderView, payOrder } from './orders';
import type { Notifier } from './notifier';
import type { PlatformEmulator } from './platform';
import { createRefund, refundView } from './refunds';
import { emptyState, ENDPOINT_NAMES, REFUND_OUTCOMES, refundsOf } from './state';
import type { EmulatorState, EndpointName, Faults, Order, Refund, RefundOutcome } from './state';

/** A control API answer: an HTTP status and a JSON body. */
export interface ControlAnswer {
  status: number;
  body: unknown;
}

export interface ControlContext {
  state: EmulatorState;
  notifier: Notifier;
  /** WeChat's platform API: its `platformErrors` fault, and forgotten on reset. */
  platform?: PlatformEmulator;
  /** Ends an accepted refund later and calls it back (dev/emulator/server.ts). */
  refundAccepted?: (refund: Refund, order: Order) => void;
}

function error(status: number, code: string, message: string, extra: Record<string, unknown> = {}): ControlAnswer {
  return { status, body: { error: { code, message }, ...extra } };
}

const ORDER_PATH = /^\/__sim\/orders\/([^/]+)$/;

/** Routes `/__sim/...`; undefined when the path is not a control path. */
export function answerControlCall(ctx: ControlContext, method: string, path: string, body: string): ControlAnswer | undefined {
  const orderMatch = ORDER_PATH.exec(path);
  const route = orderMatch ? 'orders' : path;
  const expected = route === 'orders' ? 'GET' : 'POST';
  if (!['orders', '/__sim/pay', '/__sim/refund', '/__sim/faults', '/__sim/reset'].includes(route)) return undefined;
  if (method !== expected) return error(405, 'METHOD_NOT_ALLOWED', `${path} takes ${expected}`);
  switch (route) {
    case 'orders':
      return viewOrder(ctx.state, decodeURIComponent(orderMatch?.[1] ?? ''));
    case '/__sim/reset':
      reset(ctx);
      return { status: 200, body: { reset: true } };
    default: {
      const input = parseJson(body);
      if (input === undefined) return error(400, 'INVALID_JSON', 'the body must be a JSON object');
      if (route === '/__sim/refund') return refundByHand(ctx, input);
      return route === '/__sim/pay' ? pay(ctx, input) : setFaults(ctx.state, input, ctx.platform);
    }
  }
}

function parseJson(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body === '' ? '{}' : body);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function viewOrder(state: EmulatorState, outTradeNo: string): ControlAnswer {
  const order = state.orders.get(outTradeNo);
  if (order) return { status: 200, body: { ...orderView(state, order), refunds: refundsOf(state, outTradeNo).map(refundView) } };
  // Calls refused before any order existed (a bad signature, a missing field) are still worth seeing.
  return error(404, 'ORDER_NOT_FOUND', `no order ${outTradeNo}`, { calls: state.calls.get(outTradeNo) ?? [] });
}

/** The user pays: from here on orderquery says SUCCESS and the callbacks start. */
function pay(ctx: ControlContext, input: Record<string, unknown>): ControlAnswer {
  const outTradeNo = input.out_trade_no;
  if (typeof outTradeNo !== 'string' || outTradeNo === '') {
    return error(400, 'INVALID_REQUEST', 'out_trade_no (a string) is required');
  }
  // Optional time_end (yyyyMMddHHmmss, Beijing, not in the future): pay "yesterday" for bill tests.
  const paidAt = input.time_end === undefined ? new Date() : paidAtOf(input.time_end);
  if (!paidAt) return error(400, 'INVALID_REQUEST', 'time_end must be yyyyMMddHHmmss, Beijing time, not in the future');
  const order = ctx.state.orders.get(outTradeNo);
  if (!order) return error(404, 'ORDER_NOT_FOUND', `no order ${outTradeNo}`);
  if (order.state === 'SUCCESS') return error(409, 'ORDER_PAID', `order ${outTradeNo} is already paid`);
  if (order.state === 'CLOSED') return error(409, 'ORDER_CLOSED', `order ${outTradeNo} is closed and cannot be paid`);
  payOrder(ctx.state, order, paidAt);
  ctx.notifier.start(order);
  return {
    status: 200,
    body: {
      out_trade_no: order.outTradeNo,
      trade_state: order.state,
      transaction_id: order.transactionId,
      time_end: order.timeEnd,
    },
  };
}

/**
 * A refund made by hand in the merchant platform, not through the API: `{ out_trade_no, refund_fee,
 * out_refund_no?, notify_url? }`. WeChat Pay's own rules apply except the one-minute spacing; it
 * ends and is called back (to `notify_url`, the refund notify URL set in the platform) like any.
 */
function refundByHand(ctx: ControlContext, input: Record<string, unknown>): ControlAnswer {
  const {
    out_trade_no: outTradeNo,
    refund_fee: refundFee,
    out_refund_no: outRefundNo,
    notify_url: notifyUrl,
    refund_time: refundTime,
  } = input;
  const order = typeof outTradeNo === 'string' ? ctx.state.orders.get(outTradeNo) : undefined;
  if (!order) return error(404, 'ORDER_NOT_FOUND', `no order ${String(outTradeNo)}`);
  if (order.state !== 'SUCCESS') return error(409, 'ORDER_NOT_PAID', `order ${order.outTradeNo} is not paid`);
  if (!isCount(refundFee, 1)) return error(400, 'INVALID_REQUEST', 'refund_fee must be an integer >= 1 (fen)');
  if (outRefundNo !== undefined && (typeof outRefundNo !== 'string' || !/^[0-9A-Za-z_\-|*@]{1,64}$/.test(outRefundNo))) {
    return error(400, 'INVALID_REQUEST', 'out_refund_no must be 1 to 64 of [0-9A-Za-z_-|*@]');
  }
  if (notifyUrl !== undefined && (typeof notifyUrl !== 'string' || !/^https?:\/\//.test(notifyUrl)))
    return error(400, 'INVALID_REQUEST', 'notify_url must be an http(s) URL');
  // A refund made on an earlier day (`yyyyMMddHHmmss`, Beijing), so a test can find it in that day's bill.
  const at = refundTime === undefined ? new Date() : paidAtOf(refundTime);
  if (!at) return error(400, 'INVALID_REQUEST', 'refund_time must be yyyyMMddHHmmss, Beijing time, not in the future');
  const no = (outRefundNo as string | undefined) ?? `platform${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  if (ctx.state.refunds.has(no)) return error(409, 'REFUND_EXISTS', `refund ${no} exists`);
  const held = refundsOf(ctx.state, order.outTradeNo)
    .filter((r) => r.status !== 'REFUNDCLOSE')
    .reduce((sum, r) => sum + r.refundFee, 0);
  if (held + refundFee > order.totalFee) return error(409, 'NOTENOUGH', `only ${order.totalFee - held} fen left to refund`);
  const refund = createRefund(
    ctx.state,
    order,
    { outRefundNo: no, refundFee, source: 'VENDOR_PLATFORM', ...(notifyUrl ? { notifyUrl: notifyUrl as string } : {}) },
    at,
  );
  ctx.refundAccepted?.(refund, order);
  return { status: 200, body: refundView(refund) };
}

function paidAtOf(timeEnd: unknown): Date | undefined {
  const at = typeof timeEnd === 'string' ? fromBeijingTimestamp(timeEnd) : undefined;
  return at && at.getTime() <= Date.now() ? at : undefined;
}

const MAX_DELAY_MS = 10 * 60 * 1000;

function isCount(value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): value is number {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;
}

/**
 * Merges the given faults into the current ones (every key optional); all are checked before any
 * is applied, so a bad request changes nothing. Answers the fault state now in force.
 */
function setFaults(state: EmulatorState, input: Record<string, unknown>, platform?: PlatformEmulator): ControlAnswer {
  const known = ['dropNotifies', 'duplicateNotifies', 'systemError', 'delayMs', 'refundOutcome', ...(platform ? ['platformErrors'] : [])];
  const unknown = Object.keys(input).filter((key) => !known.includes(key));
  if (unknown.length > 0) return error(400, 'INVALID_FAULT', `unknown fault ${unknown.join(', ')}`);
  const { dropNotifies, duplicateNotifies, systemError, delayMs, refundOutcome } = input;
  if (refundOutcome !== undefined && !(REFUND_OUTCOMES as readonly unknown[]).includes(refundOutcome)) {
    return error(400, 'INVALID_FAULT', `refundOutcome must be one of ${REFUND_OUTCOMES.join(', ')}`);
  }
  if (dropNotifies !== undefined && !isCount(dropNotifies)) {
    return error(400, 'INVALID_FAULT', 'dropNotifies must be an integer >= 0');
  }
  if (duplicateNotifies !== undefined && !isCount(duplicateNotifies, 1, 100)) {
    return error(400, 'INVALID_FAULT', 'duplicateNotifies must be an integer from 1 (no duplicates) to 100');
  }
  if (delayMs !== undefined && !isCount(delayMs, 0, MAX_DELAY_MS)) {
    return error(400, 'INVALID_FAULT', `delayMs must be an integer from 0 to ${MAX_DELAY_MS}`);
  }
  const systemErrors: Partial<Faults['systemError']> = {};
  if (systemError !== undefined) {
    if (typeof systemError !== 'object' || systemError === null || Array.isArray(systemError)) {
      return error(400, 'INVALID_FAULT', 'systemError must be an object of endpoint to count');
    }
    for (const [endpoint, count] of Object.entries(systemError)) {
      if (!(ENDPOINT_NAMES as string[]).includes(endpoint) || !isCount(count)) {
        return error(400, 'INVALID_FAULT', `systemError takes ${ENDPOINT_NAMES.join(', ')} with integer counts >= 0`);
      }
      systemErrors[endpoint as EndpointName] = count;
    }
  }
  // WeChat's platform API: the next calls of an endpoint answer the given errcodes (dev/emulator/platform.ts).
  const platformErrors = input.platformErrors === undefined ? undefined : platform?.checkErrors(input.platformErrors);
  if (platformErrors && 'error' in platformErrors) return error(400, 'INVALID_FAULT', platformErrors.error);
  platformErrors?.apply();
  const { faults } = state;
  if (dropNotifies !== undefined) faults.dropNotifies = dropNotifies;
  if (duplicateNotifies !== undefined) faults.duplicateNotifies = duplicateNotifies;
  if (delayMs !== undefined) faults.delayMs = delayMs;
  if (refundOutcome !== undefined) faults.refundOutcome = refundOutcome as RefundOutcome;
  Object.assign(faults.systemError, systemErrors);
  return { status: 200, body: platformErrors ? { ...faults, platformErrors: platform?.errorQueues() } : faults };
}

/** Forgets every order, call and fault, and cancels every pending callback. */
function reset(ctx: ControlContext): void {
  ctx.notifier.stop();
  Object.assign(ctx.state, emptyState());
  ctx.platform?.reset();
}
