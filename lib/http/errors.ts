import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ConfigError } from '../config';
import { WechatPayConfigError } from '../wechatpay/errors';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { CatalogStoreError } from '../catalog/store';
import {
  InvalidOrderRequestError,
  OrderConflictError,
  OrderError,
  OrderNotFoundError,
  OrderStoreError,
  PaymentProviderError,
} from '../orders/errors';
import { InvalidRequestError } from '../validation';
import {
  IdentityError,
  IdentityUnavailableError,
  LoginCodeRefusedError,
  PageNotAllowedError,
  PayerNotEligibleError,
  SessionRefusedError,
  TooManyLoginsError,
  WechatPlatformError,
} from '../identity/errors';
import { RequestTooLargeError } from './event';
import { json } from './responses';

/**
 * The HTTP layer's own errors, and how every error a route lets through is answered: its status and
 * the JSON API error `{ error: { code, message, field?, outTradeNo? } }`.
 */

/** The request did not prove it comes from the merchant's server: answered 401, nothing done. */
export class MerchantUnauthorizedError extends Error {
  constructor(
    message: string,
    /** Whether a token was presented at all (RFC 6750: `error="invalid_token"` only then). */
    readonly tokenPresented: boolean,
  ) {
    super(message);
    this.name = 'MerchantUnauthorizedError';
  }
}

function apiError(statusCode: number, code: string, message: string, details: { field?: string; outTradeNo?: string } = {}) {
  return json(statusCode, { error: { code, message, ...details } });
}

/** A payer's login or session refused (401), not allowed (403, 429), or WeChat failing (502). */
function identityErrorResponse(error: IdentityError): APIGatewayProxyStructuredResultV2 {
  if (error instanceof SessionRefusedError) {
    const answer = apiError(401, error.code, error.message);
    const challenge =
      error.reason === 'NOT_BEARER' ? 'Bearer realm="payer", error="invalid_request"' : 'Bearer realm="payer", error="invalid_token"';
    return { ...answer, headers: { ...answer.headers, 'www-authenticate': challenge } };
  }
  if (error instanceof LoginCodeRefusedError) return apiError(401, error.code, error.message);
  if (error instanceof PayerNotEligibleError || error instanceof PageNotAllowedError) return apiError(403, error.code, error.message);
  if (error instanceof TooManyLoginsError) return apiError(429, error.code, error.message);
  if (error instanceof WechatPlatformError) {
    // A refusal that is not the payer's doing (a wrong AppSecret, an IP not whitelisted) needs the merchant.
    if (error.code === 'WECHAT_REFUSED')
      logger.error('WeChat refused a platform call', { code: error.code, errcode: error.errcode, message: error.message });
    else logger.warn('WeChat platform call failed', { code: error.code, errcode: error.errcode, message: error.message });
    return apiError(502, error.code, error.message);
  }
  if (error instanceof IdentityUnavailableError) {
    logger.warn('identity temporarily unavailable', { code: error.code, error: error.cause });
    if (error.code === 'STORAGE_UNAVAILABLE') countMetric('StorageErrors');
    return apiError(503, error.code, error.message);
  }
  return apiError(400, error.code, error.message);
}

/** 4xx for the caller's mistakes, 502 for WeChat Pay, 503 for storage and configuration. */
export function errorResponse(error: unknown): APIGatewayProxyStructuredResultV2 {
  if (error instanceof IdentityError) return identityErrorResponse(error);
  if (error instanceof MerchantUnauthorizedError) {
    const answer = apiError(401, 'UNAUTHORIZED', error.message);
    // RFC 6750: the scheme to use, and `invalid_token` when a token was sent and refused.
    const challenge = error.tokenPresented ? 'Bearer realm="merchant", error="invalid_token"' : 'Bearer realm="merchant"';
    return { ...answer, headers: { ...answer.headers, 'www-authenticate': challenge } };
  }
  if (error instanceof RequestTooLargeError) return apiError(413, 'BODY_TOO_LARGE', error.message);
  if (error instanceof InvalidOrderRequestError || error instanceof InvalidRequestError) {
    return apiError(400, error.code, error.message, error.field ? { field: error.field } : {});
  }
  if (error instanceof OrderNotFoundError) return apiError(404, error.code, error.message);
  if (error instanceof OrderConflictError) return apiError(409, error.code, error.message);
  if (error instanceof PaymentProviderError) {
    const message = error.retryable ? `${error.message} (temporary; try again with the same idempotencyKey)` : error.message;
    return apiError(502, error.code, message, error.outTradeNo ? { outTradeNo: error.outTradeNo } : {});
  }
  if (error instanceof OrderStoreError || error instanceof CatalogStoreError) {
    logger.error('storage failure', { error });
    countMetric('StorageErrors');
    return apiError(503, 'STORAGE_UNAVAILABLE', 'the order store is unavailable; try again');
  }
  if (error instanceof ConfigError || error instanceof WechatPayConfigError) {
    logger.error('configuration error', { error });
    return apiError(503, 'NOT_CONFIGURED', 'the payment service is not configured correctly');
  }
  if (error instanceof OrderError) return apiError(400, error.code, error.message);
  logger.error('unexpected failure', { error });
  return apiError(500, 'INTERNAL', 'unexpected failure');
}
