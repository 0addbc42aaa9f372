import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ConfigError } from '../config';
import { WechatPayConfigError } from '../wechatpay/errors';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { CatalogStoreError } from '../catalog/store';
import { InvalidOrderRequestError, OrderConflictError, OrderError, OrderNotFoundError, OrderStoreError, PaymentProviderError } from '../orders/errors';
import { InvalidRequestError } from '../validation';
import { MerchantUnauthorizedError } from './merchant-auth';
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

/** API Gateway HTTP API events, with whatever authorizer the deployment put in front. */
export type ApiEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { jwt?: { claims?: Record<string, unknown> }; lambda?: Record<string, unknown> };
  };
};

export function json(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

/** A JSON answer no cache may keep (a session token, a signed JS-SDK config). */
export function privateJson(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  const answer = json(statusCode, body);
  return { ...answer, headers: { ...answer.headers, 'cache-control': 'no-store' } };
}

function apiError(statusCode: number, code: string, message: string, details: { field?: string; outTradeNo?: string } = {}) {
  return json(statusCode, { error: { code, message, ...details } });
}

/** The raw body text; API Gateway base64-encodes bodies it considers binary. */
export function rawBody(event: ApiEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/** The raw body bytes, for XML whose encoding the parser checks itself. */
export function rawBodyBytes(event: ApiEvent): Uint8Array {
  if (!event.body) return new Uint8Array();
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/**
 * A JSON request of this API is well under 2 KiB; a larger body is refused before it is parsed, so
 * nobody can make a function parse, log or store megabytes.
 */
export const MAX_JSON_BODY_BYTES = 16 * 1024;

export function jsonBody(event: ApiEvent): unknown {
  const text = rawBody(event);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_JSON_BODY_BYTES) throw new RequestTooLargeError(size, MAX_JSON_BODY_BYTES);
  if (text.trim() === '') throw new InvalidOrderRequestError('the request has no body; send a JSON object');
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidOrderRequestError('the body is not valid JSON');
  }
}

/** The caller's IP as API Gateway saw it: never taken from the body, which the caller controls. */
export function clientIp(event: ApiEvent): string {
  return event.requestContext.http.sourceIp;
}

/** A request header's value, whatever the case of its name (API Gateway's payload 2.0 lower-cases them). */
export function header(event: ApiEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * The query parameters of a GET, read from the raw query string: each at most once, and none but
 * `allowed`. (API Gateway's own map joins a repeated parameter with commas, and an unencoded URL in
 * a parameter shows up as stray parameters, which this names.)
 */
export function queryParameters<Name extends string>(event: ApiEvent, allowed: readonly Name[]): Partial<Record<Name, string>> {
  const params = new URLSearchParams(event.rawQueryString ?? '');
  const found: Partial<Record<Name, string>> = {};
  for (const [name, value] of params) {
    if (!(allowed as readonly string[]).includes(name)) {
      throw new InvalidRequestError(`unknown query parameter "${name.slice(0, 40)}" (this route takes ${allowed.join(', ')}; encode a URL parameter with encodeURIComponent)`, name.slice(0, 40));
    }
    if (found[name as Name] !== undefined) throw new InvalidRequestError(`query parameter ${name} is given twice`, name);
    found[name as Name] = value;
  }
  return found;
}

/** The request body is over the API's size limit: answered 413 before anything is parsed. */
export class RequestTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the request body is ${size} bytes; this API accepts at most ${limit}`);
    this.name = 'RequestTooLargeError';
  }
}

/** A payer's login or session refused (401), not allowed (403, 429), or WeChat failing (502). */
function identityErrorResponse(error: IdentityError): APIGatewayProxyStructuredResultV2 {
  if (error instanceof SessionRefusedError) {
    const answer = apiError(401, error.code, error.message);
    const challenge = error.reason === 'NOT_BEARER' ? 'Bearer realm="payer", error="invalid_request"' : 'Bearer realm="payer", error="invalid_token"';
    return { ...answer, headers: { ...answer.headers, 'www-authenticate': challenge } };
  }
  if (error instanceof LoginCodeRefusedError) return apiError(401, error.code, error.message);
  if (error instanceof PayerNotEligibleError || error instanceof PageNotAllowedError) return apiError(403, error.code, error.message);
  if (error instanceof TooManyLoginsError) return apiError(429, error.code, error.message);
  if (error instanceof WechatPlatformError) {
    // A refusal that is not the payer's doing (a wrong AppSecret, an IP not whitelisted) needs the merchant.
    if (error.code === 'WECHAT_REFUSED') logger.error('WeChat refused a platform call', { code: error.code, errcode: error.errcode, message: error.message });
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
