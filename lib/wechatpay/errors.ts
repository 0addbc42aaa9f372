/**
 * The errors WeChat Pay code can raise. Every one carries a `code` (WeChat Pay's own `err_code` or
 * `return_code` where there is one), whether trying again with the same parameters can help
 * (`retryable`), and the underlying `cause`. Messages never contain the API key or a string-to-sign.
 */
export interface WechatPayErrorOptions {
  code: string;
  retryable?: boolean;
  cause?: unknown;
}

export class WechatPayError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(message: string, options: WechatPayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.retryable = options.retryable ?? false;
  }
}

/** The XML could not be read: malformed, not flat, too large, not UTF-8, or carrying a DOCTYPE. */
export class XmlFormatError extends WechatPayError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'XML_FORMAT_ERROR', cause });
  }
}

/** The settings given to a WeChat Pay component are missing or malformed. */
export class WechatPayConfigError extends WechatPayError {
  constructor(message: string) {
    super(message, { code: 'CONFIG_ERROR' });
  }
}

/** The request never got a readable answer: network failure, timeout or an HTTP error status. */
export class WechatPayNetworkError extends WechatPayError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { code: options.code ?? 'NETWORK_ERROR', retryable: true, cause: options.cause });
  }
}

/** WeChat Pay answered `return_code=FAIL`: the call itself was refused (bad signature, bad XML, ...). */
export class WechatPayCommunicationError extends WechatPayError {
  readonly returnMsg: string;

  constructor(returnMsg: string) {
    super(`WeChat Pay refused the call (return_code=FAIL): ${returnMsg || 'no reason given'}`, {
      code: 'FAIL',
    });
    this.returnMsg = returnMsg;
  }
}

/** An answer that cannot be trusted: unsigned, wrongly signed, or for another app id or merchant. */
export class WechatPayResponseError extends WechatPayError {
  constructor(message: string, code = 'INVALID_RESPONSE') {
    super(message, { code });
  }
}

/** Error codes after which the same request may succeed (WeChat Pay: "retry with the same parameters"). */
const RETRYABLE_BUSINESS_CODES = new Set(['SYSTEMERROR', 'BIZERR_NEED_RETRY', 'FREQUENCY_LIMITED']);

/** WeChat Pay answered `result_code=FAIL`: the business operation was refused, `code` is its `err_code`. */
export class WechatPayBusinessError extends WechatPayError {
  readonly errCodeDes: string;

  constructor(errCode: string, errCodeDes: string, endpoint: string) {
    super(`WeChat Pay ${endpoint} failed with ${errCode}${errCodeDes ? `: ${errCodeDes}` : ''}`, {
      code: errCode,
      retryable: RETRYABLE_BUSINESS_CODES.has(errCode),
    });
    this.errCodeDes = errCodeDes;
  }
}
