import { ConfigError } from '../config';
import { CodedError } from '../errors';
import { isBadCodeError, WechatApiError } from '../wechat/errors';
import type { SessionRefusal } from './session-token';

/**
 * What can go wrong with a payer's identity, as the callers of lib/identity see it. lib/http maps
 * each class to an HTTP status; lib/identity itself knows nothing of HTTP. No message ever holds a
 * login code, an AppSecret, an access_token, a ticket, a session key or a session token.
 */
export class IdentityError extends CodedError {}

/** WeChat refused the login code: invalid, already used or expired. The payer logs in again. */
export class LoginCodeRefusedError extends IdentityError {
  constructor(
    message: string,
    readonly errcode: number,
  ) {
    super('INVALID_CODE', message);
  }
}

/** WeChat knows the user, but nobody who can pay: a snapshot page's virtual user, a blocked user. */
export class PayerNotEligibleError extends IdentityError {}

/** WeChat limits logins per user (45011): the payer tries again in a minute. */
export class TooManyLoginsError extends IdentityError {}

/** The session token presented is not a genuine, current token of the app it is used for. */
export class SessionRefusedError extends IdentityError {
  constructor(
    readonly reason: SessionRefusal | 'NOT_BEARER',
    message: string,
  ) {
    super('INVALID_SESSION', message);
  }
}

/** The page may not have a JS-SDK config here: its origin is not one of the stage's. */
export class PageNotAllowedError extends IdentityError {
  constructor(message: string) {
    super('PAGE_NOT_ALLOWED', message);
  }
}

/**
 * WeChat's platform API failed, or refused something that is not the payer's doing (a wrong
 * AppSecret, a server IP not on the app's whitelist, a daily quota). `retryable` when trying again
 * later can help; `errcode` when WeChat answered one.
 */
export class WechatPlatformError extends IdentityError {
  constructor(
    code: 'WECHAT_UNAVAILABLE' | 'WECHAT_REFUSED',
    message: string,
    readonly retryable: boolean,
    readonly errcode: number | undefined,
    cause: unknown,
  ) {
    super(code, message, { cause });
  }
}

/**
 * Something of ours failed for the moment: the token cache's table (`STORAGE_UNAVAILABLE`), or
 * another container's refresh of a WeChat token took too long (`TRY_AGAIN`). The caller tries again.
 */
export class IdentityUnavailableError extends IdentityError {}

/** WeChat's errcode for a user its risk control blocks. */
const HIGH_RISK_USER = 40226;
/** WeChat's per-user login rate limit (100 a minute). */
const LOGIN_RATE_LIMIT = 45011;

/**
 * What a failed platform call means for the payer: their code was bad (401), they cannot pay (403),
 * they log in too often (429), or WeChat failed us (502). A call refused before it was sent for a
 * malformed AppSecret is a configuration error.
 */
export function identityErrorFrom(error: unknown, doing: string): unknown {
  if (!(error instanceof WechatApiError)) return error;
  const said = error.errcode === undefined ? '' : ` (errcode ${error.errcode}${error.errmsg ? `: ${error.errmsg}` : ''})`;
  // Checked on the value as unknown: the guard would otherwise narrow `error` away on its false branch.
  if (isBadCodeError(error as unknown)) {
    return new LoginCodeRefusedError(
      `WeChat refused the login code${said}: it is invalid, used or expired; get a new code and log in again`,
      error.errcode as number,
    );
  }
  if (error.errcode === HIGH_RISK_USER) return new PayerNotEligibleError('HIGH_RISK_USER', `WeChat blocks this user${said}`);
  if (error.errcode === LOGIN_RATE_LIMIT)
    return new TooManyLoginsError('TOO_MANY_LOGINS', `WeChat limits this user's logins${said}; try again in a minute`);
  if (error.code === 'INVALID_ARGUMENT') return new ConfigError(`${doing}: ${error.message}`, { cause: error });
  if (error.code === 'ERRCODE' && !error.retryable) {
    return new WechatPlatformError('WECHAT_REFUSED', `WeChat refused ${doing}${said}`, false, error.errcode, error);
  }
  // No answer, an HTTP error, an unreadable answer, or "system busy" (-1).
  return new WechatPlatformError(
    'WECHAT_UNAVAILABLE',
    `${doing} failed: ${error.message}; try again`,
    error.retryable,
    error.errcode,
    error,
  );
}
