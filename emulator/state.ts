import type { Fields, SignType } from '../lib/wechatpay/sign';

/** The WeChat Pay endpoints the emulator serves, by the name faults and call records use. */
export const ENDPOINT_PATHS = {
  '/pay/unifiedorder': 'unifiedorder',
  '/pay/orderquery': 'orderquery',
  '/pay/closeorder': 'closeorder',
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

export interface Faults {
  dropNotifies: number;
  duplicateNotifies: number;
  systemError: Record<EndpointName, number>;
  delayMs: number;
}

export function noFaults(): Faults {
  return {
    dropNotifies: 0,
    duplicateNotifies: 1,
    systemError: { unifiedorder: 0, orderquery: 0, closeorder: 0 },
    delayMs: 0,
  };
}

/** Everything the emulator remembers; `POST /__sim/reset` replaces it. */
export interface EmulatorState {
  orders: Map<string, Order>;
  ordersByTransactionId: Map<string, Order>;
  /** Kept apart from orders so that calls refused before an order existed can be seen too. */
  calls: Map<string, CallRecord[]>;
  faults: Faults;
}

export function emptyState(): EmulatorState {
  return { orders: new Map(), ordersByTransactionId: new Map(), calls: new Map(), faults: noFaults() };
}

export function recordCall(state: EmulatorState, outTradeNo: string, call: CallRecord): void {
  const calls = state.calls.get(outTradeNo);
  if (calls) calls.push(call);
  else state.calls.set(outTradeNo, [call]);
}
