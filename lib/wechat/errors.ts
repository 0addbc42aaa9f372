/**
 * Errors of WeChat's platform API (login, access_token, jsapi_ticket). Every one carries a `code`
 * (`ERRCODE` when WeChat answered an errcode, which is then in `errcode`), whether trying again can
 * help (`retryable`) and the underlying `cause`. Messages never hold an AppSecret, a login code, an
 * access_token or a ticket.
 */
export type WechatApiErrorCode =
  /** WeChat answered a non-zero errcode: see `errcode` and `errmsg`. */
  | 'ERRCODE'
  /** No answer within the client's timeout. */
  | 'TIMEOUT'
  /** WeChat could not be reached. */
  | 'NETWORK_ERROR'
  /** An HTTP status other than 2xx. */
  | 'HTTP_ERROR'
  /** An answer that is not WeChat's JSON, or lacks what a success always carries. */
  | 'INVALID_RESPONSE'
  /** The call was refused before anything was sent (a malformed code, app id or secret). */
  | 'INVALID_ARGUMENT';

export interface WechatApiErrorOptions {
  code: WechatApiErrorCode;
  endpoint: string;
  errcode?: number;
  errmsg?: string;
  retryable?: boolean;
  cause?: unknown;
}

/** WeChat's errcodes after which the same call may work: -1 "system busy". */
const RETRYABLE_ERRCODES = new Set([-1]);

/** The access_token used is no longer good: invalid or not the latest (40001), malformed (40014), expired (42001). */
const STALE_TOKEN_ERRCODES = new Set([40001, 40014, 42001]);

/** The login code is bad: invalid or expired (40029), already used (40163), expired (42003). */
const BAD_CODE_ERRCODES = new Set([40029, 40163, 42003]);

export class WechatApiError extends Error {
  readonly code: WechatApiErrorCode;
  readonly endpoint: string;
  /** WeChat's errcode, when WeChat answered one. */
  readonly errcode?: number;
  /** WeChat's errmsg, cut short and with any secret of the call masked. */
  readonly errmsg?: string;
  readonly retryable: boolean;

  constructor(message: string, options: WechatApiErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WechatApiError';
    this.code = options.code;
    this.endpoint = options.endpoint;
    if (options.errcode !== undefined) this.errcode = options.errcode;
    if (options.errmsg !== undefined) this.errmsg = options.errmsg;
    this.retryable = options.retryable ?? (options.errcode !== undefined && RETRYABLE_ERRCODES.has(options.errcode));
  }
}

/** True when WeChat refused the access_token itself: get a fresh one and try once more. */
export function isStaleTokenError(error: unknown): error is WechatApiError {
  return error instanceof WechatApiError && error.errcode !== undefined && STALE_TOKEN_ERRCODES.has(error.errcode);
}

/** True when WeChat refused a login code (bad, used or expired): the payer must log in again. */
export function isBadCodeError(error: unknown): error is WechatApiError {
  return error instanceof WechatApiError && error.errcode !== undefined && BAD_CODE_ERRCODES.has(error.errcode);
}
