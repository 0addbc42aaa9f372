/**
 * WeChat Pay as lib/orders sees it: one port, in the orders' own terms (fen as numbers, times as ISO
 * 8601, WeChat Pay's trade and refund states), whichever protocol generation speaks it. Each
 * protocol is an adapter behind it (lib/gateways/wechatpay-v2 today; v3 and partner mode beside it),
 * so lib/orders never branches on a generation: an order's calls go through the gateway of the app
 * and signing it was made with (OrdersContext.gatewayFor).
 */

/** The trade types: mini-program / official-account page, QR code, mobile browser, native app. */
export const TRADE_TYPES = ['JSAPI', 'NATIVE', 'MWEB', 'APP'] as const;
export type TradeType = (typeof TRADE_TYPES)[number];

/** What an order's gateway is chosen by: the app it was made under and how it was signed. */
export interface GatewayOrder {
  /** Orders made before apps were recorded have none: the default app. */
  appId?: string;
  signType: string;
}

/** A new order's payment, as the gateway is asked to place it. */
export interface NewPayment {
  outTradeNo: string;
  description: string;
  totalFee: number;
  tradeType: TradeType;
  clientIp: string;
  notifyUrl: string;
  createdAt: Date;
  expiresAt: Date;
  openid?: string;
  /** NATIVE: the product the QR code stands for. */
  productId?: string;
  attach?: string;
  sceneInfo?: unknown;
}

/**
 * The request that places an order's payment, as the gateway built it: stored with the order, so
 * that every call sends exactly the same (WeChat Pay refuses a changed repeat). Opaque to lib/orders.
 */
export type PaymentRequest = Record<string, string>;

/** What placing the payment answered: what the frontend pays with. */
export interface Prepay {
  prepayId: string;
  /** NATIVE: the QR code's content. */
  codeUrl?: string;
  /** MWEB: the page that opens WeChat. */
  mwebUrl?: string;
}

/** Where a payment stands, as WeChat Pay's signed answer says. */
export interface PaymentState {
  /** SUCCESS, REFUND (paid, then refunded), NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR or ACCEPT. */
  tradeState: string;
  /** Once paid: WeChat Pay's transaction, the amount paid, and when. */
  transactionId?: string;
  totalFee?: number;
  paidAt?: string;
}

/** A refund to ask WeChat Pay for. */
export interface RefundCall {
  outTradeNo: string;
  outRefundNo: string;
  /** The order's amount. */
  totalFee: number;
  refundFee: number;
  reason?: string;
  notifyUrl: string;
}

/**
 * WeChat Pay accepted a refund. `outTradeNo` and `transactionId` are the order the answer is about,
 * as WeChat Pay said it: whether that is the caller's order is the caller's to check (an
 * out_refund_no is unique per merchant, and a merchant id may serve several systems).
 */
export interface RefundAnswer {
  outTradeNo: string;
  transactionId: string;
  refundId: string;
}

/** One refund as WeChat Pay's refund query reports it. */
export interface QueriedRefund {
  outRefundNo: string;
  refundId: string;
  refundFee: number;
  /** SUCCESS, PROCESSING, CHANGE or REFUNDCLOSE. */
  status: string;
  succeededAt?: string;
}

/** A refund query's answer: the order it is about (RefundAnswer says why the caller checks it) and its refunds. */
export interface RefundQueryAnswer {
  outTradeNo: string;
  transactionId: string;
  refunds: QueriedRefund[];
}

/** What the frontend needs to start paying, by trade type (NATIVE: lib/orders adds the QR code's picture). */
export type PayObject =
  | { appId: string; timeStamp: string; nonceStr: string; package: string; signType: string; paySign: string }
  | { codeUrl: string; qrCode?: string }
  | { mwebUrl: string }
  | { appid: string; partnerid: string; prepayid: string; package: 'Sign=WXPay'; noncestr: string; timestamp: string; sign: string };

/** WeChat Pay for one order: every call lib/orders makes about it. */
export interface PaymentGateway {
  /** Builds the request that places a new order's payment (stored with the order). */
  paymentRequest(payment: NewPayment): PaymentRequest;
  /** Places the payment (again: the stored request, unchanged). */
  prepay(request: PaymentRequest): Promise<Prepay>;
  queryPayment(outTradeNo: string): Promise<PaymentState>;
  /** No payment can be made any more; ORDER_PAID or ORDER_CLOSED (a GatewayError) when it cannot be closed so. */
  closePayment(outTradeNo: string): Promise<void>;
  refund(call: RefundCall): Promise<RefundAnswer>;
  /** The refund of that number; REFUND_NOT_FOUND (a GatewayError) when WeChat Pay never received it. */
  queryRefund(outRefundNo: string): Promise<RefundQueryAnswer>;
  payObject(order: { tradeType: TradeType; prepayId: string; codeUrl?: string; mwebUrl?: string }, now: Date): Promise<PayObject>;
}

/**
 * Why a gateway call failed, in lib/orders' terms:
 * - ORDER_NOT_FOUND, REFUND_NOT_FOUND: WeChat Pay has no such order or refund (never received it);
 * - ORDER_PAID, ORDER_CLOSED: the order can no longer be placed or closed so;
 * - REFUSED: WeChat Pay refused the operation (`retryable` when the same call may succeed later);
 * - REJECTED: WeChat Pay refused the call itself (its signature, its certificate, its form): a
 *   setting or a fault of this side, not an answer about the operation;
 * - UNREACHABLE: no readable answer (network, timeout, an HTTP error): always retryable;
 * - UNTRUSTED: an answer that cannot be trusted (unsigned, wrongly signed, about another merchant).
 */
export type GatewayFailure =
  'ORDER_NOT_FOUND' | 'REFUND_NOT_FOUND' | 'ORDER_PAID' | 'ORDER_CLOSED' | 'REFUSED' | 'REJECTED' | 'UNREACHABLE' | 'UNTRUSTED';

export class GatewayError extends Error {
  /** WeChat Pay's own words for a refusal (v2's err_code_des), when it gave some. */
  readonly description?: string;

  constructor(
    message: string,
    readonly failure: GatewayFailure,
    /** WeChat Pay's own code (err_code, or the protocol's code for the failure), for logs and answers. */
    readonly code: string,
    readonly retryable: boolean,
    options: { cause?: unknown; description?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'GatewayError';
    if (options.description) this.description = options.description;
  }

  /** WeChat Pay refused the operation for good: trying the same call again cannot help. */
  get final(): boolean {
    return !this.retryable && this.failure !== 'REJECTED' && this.failure !== 'UNREACHABLE' && this.failure !== 'UNTRUSTED';
  }
}

/**
 * One line of a day's trade bill, as lib/orders reads it (the names are those of WeChat Pay's bill
 * columns): a payment, a refund (whatever its status that day), or anything else (revoked, ...),
 * which nothing is done with.
 */
export interface BillLine {
  kind: 'payment' | 'refund' | 'other';
  /** 交易时间, `yyyy-MM-dd HH:mm:ss` Beijing, as the bills write it: when it was paid, or when the refund was accepted. */
  tradeTime: string;
  appId: string;
  transactionId: string;
  outTradeNo: string;
  /** The order's amount, fen (0 on a refund line). */
  totalFeeFen: number;
  /** A refund line's: WeChat Pay's refund id and the merchant's refund number. */
  refundId: string;
  outRefundNo: string;
  /** The refund as asked (申请退款金额) and as settled (退款金额), fen. */
  appliedRefundFeeFen: number;
  refundFeeFen: number;
  /** A refund line's status that day: SUCCESS, PROCESSING, ... */
  refundStatus: string;
}

/** A day's trade bill, checked whole before any line is handed out. */
export interface TradeBill {
  /** The lines, in bill order. */
  lines(): AsyncGenerator<BillLine, void, undefined>;
  /** Lets go of what holds the bill; always called once done. */
  close(): Promise<void>;
}

/** The merchant's trade bills: `NO_BILL` when WeChat Pay has none for the day; a GatewayError when it cannot be read. */
export interface BillSource {
  open(billDate: string): Promise<TradeBill | 'NO_BILL'>;
}
