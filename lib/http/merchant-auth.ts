/**
 * `Authorization: Bearer <merchant API token>` on every `/merchant/...` route, checked before the
 * route does anything. Checked here rather than by an API Gateway authorizer: an HTTP API's
 * authorizer answers a wrong token with a bare 403 that cannot carry `WWW-Authenticate` (HTTP APIs
 * have no gateway responses), and it would add a second Lambda invocation on every cache miss.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { bearer } from './bearer';
import { MerchantUnauthorizedError } from './errors';
import type { ApiEvent } from './event';

/** Far above any token the merchant would set; a longer header is refused before it is hashed. */
const MAX_AUTHORIZATION_CHARS = 1024;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Throws MerchantUnauthorizedError unless the request carries one of `tokens`. Every token is
 * compared, through SHA-256 digests of equal length and in constant time, so neither the time taken
 * nor a prefix tells anything about a token. Messages never contain what was sent.
 */
export function authenticateMerchant(event: ApiEvent, tokens: readonly string[]): void {
  const sent = bearer(event, MAX_AUTHORIZATION_CHARS);
  if (!sent.ok) {
    if (sent.reason === 'ABSENT') throw new MerchantUnauthorizedError('send the merchant API token as "Authorization: Bearer <token>"', false);
    if (sent.reason === 'TOO_LONG') throw new MerchantUnauthorizedError('the Authorization header is too long', true);
    throw new MerchantUnauthorizedError('the Authorization header must be "Bearer <token>"', true);
  }
  const presented = digest(sent.token);
  let matched = false;
  for (const token of tokens) matched = timingSafeEqual(presented, digest(token)) || matched;
  if (!matched) throw new MerchantUnauthorizedError('the merchant API token is not valid', true);
}
