import { signedNotification } from '../lib/wechatpay/testing';
import { parseXml } from '../lib/wechatpay/xml';
import type { EmulatorLog, Merchant } from './api';
import { paymentFields } from './orders';
import type { EmulatorState, NotificationRecord, Order } from './state';

/** WeChat Pay's gaps between callback attempts while none is answered SUCCESS (about 24h4m in all). */
export const NOTIFY_RETRY_DELAYS_MS = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600,
].map((seconds) => seconds * 1000);

/**
 * How long a merchant's server has to answer one callback. Real time, not scaled: it bounds a real
 * HTTP exchange with the merchant's real server, and scaling 5 s down to 5 ms at a time scale of
 * 0.001 would fail every callback for reasons that have nothing to do with the merchant.
 */
export const DEFAULT_NOTIFY_TIMEOUT_MS = 5000;

export interface NotifierOptions {
  merchant: Merchant;
  state: EmulatorState;
  timeScale: number;
  timeoutMs: number;
  log: EmulatorLog;
}

/** Delivers payment callbacks on WeChat Pay's schedule; `stop` cancels every pending one. */
export class Notifier {
  private readonly timers = new Set<NodeJS.Timeout>();
  private aborter = new AbortController();

  constructor(private readonly options: NotifierOptions) {}

  /** Starts the callbacks of a just-paid order: the first at once, then on the retry schedule. */
  start(order: Order): void {
    this.schedule(order, 0, 0);
  }

  /** Cancels pending attempts and aborts those in flight (on reset and on close). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.aborter.abort();
    this.aborter = new AbortController();
  }

  private schedule(order: Order, attempt: number, delayMs: number): void {
    const signal = this.aborter.signal;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(order, attempt, signal);
    }, delayMs);
    this.timers.add(timer);
  }

  private async attempt(order: Order, attempt: number, signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const { faults } = this.options.state;
    let acknowledged = false;
    if (faults.dropNotifies > 0) {
      // A dropped attempt is never sent, yet it uses up its place on the schedule, as a callback
      // lost in the network would.
      faults.dropNotifies -= 1;
      this.record(order, { at: new Date().toISOString(), attempt, status: 'dropped' });
    } else {
      const document = this.callback(order);
      const copies = Math.max(1, faults.duplicateNotifies);
      const results = await Promise.all(
        Array.from({ length: copies }, () => this.deliver(order, attempt, document, signal)),
      );
      acknowledged = results.includes(true);
    }
    if (signal.aborted || acknowledged) return;
    const gap = NOTIFY_RETRY_DELAYS_MS[attempt];
    if (gap === undefined) {
      this.options.log({ event: 'notify_gave_up', out_trade_no: order.outTradeNo, attempts: attempt + 1 });
      return;
    }
    // The schedule counts from when an attempt was sent, not from when its answer came back.
    const elapsed = Date.now() - startedAt;
    this.schedule(order, attempt + 1, Math.max(0, gap * this.options.timeScale - elapsed));
  }

  /** Every field WeChat Pay sends, signed with the order's sign type and, as usual, no sign_type. */
  private callback(order: Order): string {
    const { merchant } = this.options;
    return signedNotification({
      apiKey: merchant.apiKey,
      signType: order.signType,
      fields: { appid: order.appId, mch_id: merchant.mchId, ...paymentFields(order) },
    });
  }

  /** One HTTP POST of the callback; true when the merchant answered return_code=SUCCESS. */
  private async deliver(order: Order, attempt: number, document: string, stopped: AbortSignal): Promise<boolean> {
    const at = new Date().toISOString();
    try {
      const response = await fetch(order.notifyUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body: document,
        redirect: 'manual',
        signal: AbortSignal.any([stopped, AbortSignal.timeout(this.options.timeoutMs)]),
      });
      const reply = await response.text();
      if (stopped.aborted) return false;
      const returnCode = returnCodeOf(reply);
      this.record(order, { at, attempt, status: response.status, return_code: returnCode });
      return response.ok && returnCode === 'SUCCESS';
    } catch (error) {
      if (stopped.aborted) return false;
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : describe(error);
      this.record(order, { at, attempt, status: 'error', error: reason });
      return false;
    }
  }

  private record(order: Order, notification: NotificationRecord): void {
    order.notifications.push(notification);
    this.options.log({ event: 'notify_attempt', out_trade_no: order.outTradeNo, ...notification });
  }
}

/** The reply's return_code, or undefined when the reply is not a WeChat Pay XML document. */
function returnCodeOf(reply: string): string | undefined {
  try {
    return parseXml(reply).return_code;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
