import { CodedError } from '../errors';
import { StoreError } from '../store/table';

/**
 * What can go wrong with an order, as the callers of lib/orders see it. lib/http maps each class to
 * an HTTP status; lib/orders itself knows nothing of HTTP.
 */
export class OrderError extends CodedError {}

/** The caller's request is wrong; `field` names the part to fix. */
export class InvalidOrderRequestError extends OrderError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('INVALID_REQUEST', message);
  }
}

export class OrderNotFoundError extends OrderError {
  constructor(outTradeNo: string) {
    super('ORDER_NOT_FOUND', `no order ${outTradeNo}`);
  }
}

/** The idempotency key was used before for a different request, or the order it names has moved on. */
export class OrderConflictError extends OrderError {}

/**
 * WeChat Pay refused or did not answer; `retryable` says whether the same request may succeed later.
 * `outTradeNo` names the order that was stored, for the merchant's support and logs.
 */
export class PaymentProviderError extends OrderError {
  constructor(
    code: string,
    message: string,
    readonly retryable: boolean,
    readonly outTradeNo: string,
    cause: unknown,
  ) {
    super(code, message, { cause });
  }
}

/** A DynamoDB call of the orders table failed for a reason other than a condition: the caller answers so it is retried. */
export class OrderStoreError extends StoreError {
  override readonly name = 'OrderStoreError';
}

export class RefundNotFoundError extends OrderNotFoundError {
  constructor(outTradeNo: string, outRefundNo: string) {
    super(outTradeNo);
    this.message = `no refund ${outRefundNo} of order ${outTradeNo}`;
  }
}
