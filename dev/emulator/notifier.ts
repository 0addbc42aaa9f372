import { encryptedRefundNotification, toBeijingDateTime } from '../wechatpay-documents/refund-notification';
import { signedNotification } from '../wechatpay-documents/payment-notification';
import { fromBeijingTimestamp } from '../../lib/wechatpay/time';
import { parseXml } from '../../lib/wechatpay/xml';
import type { EmulatorLog, Merchant } from './api';
import { paymentFields } from './orders';
import type { EmulatorState, NotificationRecord, Order, Refund } from './state';

/** WeChat Pay's gaps between callback attempts while none is answered SUCCESS (about 24h4m in all). */
export const NOTIFY_RETRY_DELAYS_MS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600].map(
  (seconds) => seconds * 1000,
);

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

/** What one series of callbacks is about: a paid order, or a refund that ended. */
interface CallbackTarget {
  /** For the log: `out_trade_no` and, for a refund, `out_refund_no`. */
  ids: Record<string, string>;
  notifyUrl: string;
  notifications: NotificationRecord[];
  /** The document to send; made again for each attempt, as WeChat Pay does (a fresh nonce_str). */
  document(): string;
}

/** Delivers payment and refund callbacks on WeChat Pay's schedule; `stop` cancels every pending one. */
export class Notifier {
  private readonly timers = new Set<NodeJS.Timeout>();
  private aborter = new AbortController();

  constructor(private readonly options: NotifierOptions) {}

  /** Starts the callbacks of a just-paid order: the first at once, then on the retry schedule. */
  start(order: Order): void {
    this.schedule(
      {
        ids: { out_trade_no: order.outTradeNo },
        notifyUrl: order.notifyUrl,
        notifications: order.notifications,
        document: () => this.callback(order),
      },
      0,
      0,
    );
  }

  /**
   * Starts the callbacks of a refund that ended (to its notify_url, with `req_info` encrypted with
   * the merchant's key), on the same schedule as the payment callbacks.
   */
  startRefund(refund: Refund, order: Order): void {
    if (!refund.notifyUrl) return;
    this.schedule(
      {
        ids: { out_trade_no: refund.outTradeNo, out_refund_no: refund.outRefundNo },
        notifyUrl: refund.notifyUrl,
        notifications: refund.notifications,
        document: () => this.refundCallback(refund, order),
      },
      0,
      0,
    );
  }

  /** Runs `task` after `delayMs` unless the emulator is reset or closed first. */
  later(delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      task();
    }, delayMs);
    this.timers.add(timer);
  }

  /** Cancels pending attempts and aborts those in flight (on reset and on close). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.aborter.abort();
    this.aborter = new AbortController();
  }

  private schedule(target: CallbackTarget, attempt: number, delayMs: number): void {
    const signal = this.aborter.signal;
    this.later(delayMs, () => void this.attempt(target, attempt, signal));
  }

  private async attempt(target: CallbackTarget, attempt: number, signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const { faults } = this.options.state;
    let acknowledged = false;
    if (faults.dropNotifies > 0) {
      // A dropped attempt is never sent, yet it uses up its place on the schedule, as a callback
      // lost in the network would.
      faults.dropNotifies -= 1;
      this.record(target, { at: new Date().toISOString(), attempt, status: 'dropped' });
    } else {
      const document = target.document();
      const copies = Math.max(1, faults.duplicateNotifies);
      const results = await Promise.all(Array.from({ length: copies }, () => this.deliver(target, attempt, document, signal)));
      acknowledged = results.includes(true);
    }
    if (signal.aborted || acknowledged) return;
    const gap = NOTIFY_RETRY_DELAYS_MS[attempt];
    if (gap === undefined) {
      this.options.log({ event: 'notify_gave_up', ...target.ids, attempts: attempt + 1 });
      return;
    }
    // The schedule counts from when an attempt was sent, not from when its answer came back.
    const elapsed = Date.now() - startedAt;
    this.schedule(target, attempt + 1, Math.max(0, gap * this.options.timeScale - elapsed));
  }

  /** A refund callback: no sign; the refund's details in `req_info`, AES-256-ECB with the merchant's key. */
  private refundCallback(refund: Refund, order: Order): string {
    const { merchant } = this.options;
    const succeeded = refund.succeededAt ? fromBeijingTimestamp(refund.succeededAt) : undefined;
    return encryptedRefundNotification({
      apiKey: merchant.apiKey,
      appid: order.appId,
      mch_id: merchant.mchId,
      fields: {
        transaction_id: order.transactionId,
        out_trade_no: refund.outTradeNo,
        refund_id: refund.refundId,
        out_refund_no: refund.outRefundNo,
        total_fee: String(order.totalFee),
        refund_fee: String(refund.refundFee),
        refund_status: refund.status,
        success_time: succeeded ? toBeijingDateTime(succeeded) : undefined,
        refund_request_source: refund.source,
      },
    });
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
  private async deliver(target: CallbackTarget, attempt: number, document: string, stopped: AbortSignal): Promise<boolean> {
    const at = new Date().toISOString();
    try {
      const response = await fetch(target.notifyUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body: document,
        redirect: 'manual',
        signal: AbortSignal.any([stopped, AbortSignal.timeout(this.options.timeoutMs)]),
      });
      const reply = await response.text();
      if (stopped.aborted) return false;
      const returnCode = returnCodeOf(reply);
      this.record(target, { at, attempt, status: response.status, return_code: returnCode });
      return response.ok && returnCode === 'SUCCESS';
    } catch (error) {
      if (stopped.aborted) return false;
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : describe(error);
      this.record(target, { at, attempt, status: 'error', error: reason });
      return false;
    }
  }

  private record(target: CallbackTarget, notification: NotificationRecord): void {
    target.notifications.push(notification);
    this.options.log({ event: 'notify_attempt', ...target.ids, ...notification });
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
