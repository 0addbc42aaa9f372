/**
 * `Authorization: Bearer <merchant API token>` on every `/merchant/...` route, checked before the
 * route does anything. Checked here rather than by an API Gateway authorizer: an HTTP API's
 * authorizer answers a wrong token with a bare 403 that cannot carry `WWW-Authenticate` (HTTP APIs
 * have no gateway responses), and it would add a second Lambda invocation on every cache miss.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiEvent } from './api';

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

/** Far above any token the merchant would set; a longer header is refused before it is hashed. */
const MAX_AUTHORIZATION_CHARS = 1024;
const BEARER = /^Bearer ([\x21-\x7E]+)$/i;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function authorizationHeader(event: ApiEvent): string | undefined {
  // API Gateway's payload 2.0 lower-cases header names; a test event or another front may not.
  for (const [name, value] of Object.entries(event.headers ?? {})) if (name.toLowerCase() === 'authorization') return value;
  return undefined;
}

/**
 * Throws MerchantUnauthorizedError unless the request carries one of `tokens`. Every token is
 * compared, through SHA-256 digests of equal length and in constant time, so neither the time taken
 * nor a prefix tells anything about a token. Messages never contain what was sent.
 */
export function authenticateMerchant(event: ApiEvent, tokens: readonly string[]): void {
  const header = authorizationHeader(event);
  if (header === undefined || header === '') {
    throw new MerchantUnauthorizedError('send the merchant API token as "Authorization: Bearer <token>"', false);
  }
  if (header.length > MAX_AUTHORIZATION_CHARS) throw new MerchantUnauthorizedError('the Authorization header is too long', true);
  const match = BEARER.exec(header);
  if (!match) throw new MerchantUnauthorizedError('the Authorization header must be "Bearer <token>"', true);
  const presented = digest(match[1] as string);
  let matched = false;
  for (const token of tokens) matched = timingSafeEqual(presented, digest(token)) || matched;
  if (!matched) throw new MerchantUnauthorizedError('the merchant API token is not valid', true);
}
