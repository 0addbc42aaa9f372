import type { Fields, SignType } from '../../lib/wechatpay/sign';

/** The WeChat Pay endpoints the emulator serves, by the name faults and call records use. */
export const ENDPOINT_PATHS = {
  '/pay/unifiedorder': 'unifiedorder',
  '/pay/orderquery': 'orderquery',
  '/pay/closeorder': 'closeorder',
  '/pay/refundquery': 'refundquery',
  // Served only over mutual TLS (WECHATPAY_SIM_TLS_PORT); the plain port answers an error.
  '/secapi/pay/refund': 'refund',
} as const;

export type EndpointName = (typeof ENDPOINT_PATHS)[keyof typeof ENDPOINT_PATHS];
export const ENDPOINT_NAMES = Object.values(ENDPOINT_PATHS) as EndpointName[];

export type TradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED';

/** One API call the emulator answered, as the control API reports it. */
export interface CallRecord {
  endpoint: EndpointName;
  at: string;
  return_code: 'SUCCESS' | 'FAIL';
  result_code?: 'SUCCESS' | 'FAIL';
  /** For return_code=FAIL this names the communication fault (SIGNERROR, XML_FORMAT_ERROR, ...). */
  err_code?: string;
}

/** One delivery of a payment callback: an HTTP status, or "dropped" (fault) / "error" (no answer). */
export interface NotificationRecord {
  at: string;
  attempt: number;
  status: number | 'dropped' | 'error';
  return_code?: string;
  error?: string;
}

export interface Order {
  outTradeNo: string;
  /** The first call's parameters minus nonce_str and sign: a repeat must match them exactly. */
  params: Fields;
  signType: SignType;
  appId: string;
  tradeType: string;
  totalFee: number;
  body: string;
  attach?: string;
  openid?: string;
  deviceInfo?: string;
  notifyUrl: string;
  prepayId: string;
  codeUrl?: string;
  mwebUrl?: string;
  /** Real epoch milliseconds; age rules compare them on the scaled clock. */
  createdAt: number;
  state: TradeState;
  transactionId?: string;
  timeEnd?: string;
  paidAt?: number;
  closedAt?: number;
  notifications: NotificationRecord[];
}

/** How a refund ends at WeChat Pay: the money reached the payer, could not (a person must act), or closed. */
export const REFUND_OUTCOMES = ['SUCCESS', 'CHANGE', 'REFUNDCLOSE'] as const;
export type RefundOutcome = (typeof REFUND_OUTCOMES)[number];
export type RefundStatus = 'PROCESSING' | RefundOutcome;

/**
 * One refund WeChat Pay accepted. The first fields are those the trade bill reads (dev/emulator/bill.ts,
 * BillRefundRecord): refunds appear there as REFUND lines of the day they were accepted.
 */
export interface Refund {
  outTradeNo: string;
  outRefundNo: string;
  refundId: string;
  /** Fen. */
  refundFee: number;
  /** `yyyyMMddHHmmss` Beijing: when it was accepted. */
  requestedAt: string;
  status: RefundStatus;
  /** `yyyyMMddHHmmss` Beijing, once SUCCESS. */
  succeededAt?: string;
  /** Real epoch milliseconds of the acceptance; the one-minute spacing compares them on the scaled clock. */
  acceptedAt: number;
  /** How it will end (the `refundOutcome` fault in force when it was accepted). */
  outcome: RefundOutcome;
  refundDesc?: string;
  /** Where its callbacks go; none when the request named no notify_url. */
  notifyUrl?: string;
  /** API, or VENDOR_PLATFORM for a refund made by hand in the merchant platform (`POST /__sim/refund`). */
  source: 'API' | 'VENDOR_PLATFORM';
  notifications: NotificationRecord[];
}

export interface Faults {
  dropNotifies: number;
  duplicateNotifies: number;
  systemError: Record<EndpointName, number>;
  delayMs: number;
  /** How the refunds accepted from now on end. */
  refundOutcome: RefundOutcome;
}

export function noFaults(): Faults {
  return {
    dropNotifies: 0,
    duplicateNotifies: 1,
    systemError: { unifiedorder: 0, orderquery: 0, closeorder: 0, refundquery: 0, refund: 0 },
    delayMs: 0,
    refundOutcome: 'SUCCESS',
  };
}

/** Everything the emulator remembers; `POST /__sim/reset` replaces it. */
export interface EmulatorState {
  orders: Map<string, Order>;
  ordersByTransactionId: Map<string, Order>;
  /** Kept apart from orders so that calls refused before an order existed can be seen too. */
  calls: Map<string, CallRecord[]>;
  faults: Faults;
  /** Every refund, by out_refund_no (unique per merchant); the trade bill reads them too. */
  refunds: Map<string, Refund>;
}

export function emptyState(): EmulatorState {
  return { orders: new Map(), ordersByTransactionId: new Map(), calls: new Map(), faults: noFaults(), refunds: new Map() };
}

/** The refunds of one order, oldest first. */
export function refundsOf(state: EmulatorState, outTradeNo: string): Refund[] {
  return [...state.refunds.values()].filter((refund) => refund.outTradeNo === outTradeNo);
}

export function recordCall(state: EmulatorState, outTradeNo: string, call: CallRecord): void {
  const calls = state.calls.get(outTradeNo);
  if (calls) calls.push(call);
  else state.calls.set(outTradeNo, [call]);
}
