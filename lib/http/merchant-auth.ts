/**
 * `Authorization: Bearer <merchant API token>` on every `/merchant/...` route, checked before the
 * route does anything. Checked here rather than by an API Gateway authorizer: an HTTP API's
 * authorizer answers a wrong token with a bare 403 that cannot carry `WWW-Authenticate` (HTTP APIs
 * have no gateway responses), and it would add a second Lambda invocation on every cache miss.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError, required, secureParameter, type Env } from '../config';
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
    if (sent.reason === 'ABSENT')
      throw new MerchantUnauthorizedError('send the merchant API token as "Authorization: Bearer <token>"', false);
    if (sent.reason === 'TOO_LONG') throw new MerchantUnauthorizedError('the Authorization header is too long', true);
    throw new MerchantUnauthorizedError('the Authorization header must be "Bearer <token>"', true);
  }
  const presented = digest(sent.token);
  let matched = false;
  for (const token of tokens) matched = timingSafeEqual(presented, digest(token)) || matched;
  if (!matched) throw new MerchantUnauthorizedError('the merchant API token is not valid', true);
}

const MERCHANT_TOKEN = /^[\x21-\x2B\x2D-\x7E]{16,256}$/;

function checkMerchantTokens(text: string, source: string): string[] {
  const tokens = text
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '');
  if (tokens.length === 0) throw new ConfigError(`${source} holds no merchant API token`);
  // Never quote a token: name its position only.
  tokens.forEach((token, i) => {
    if (!MERCHANT_TOKEN.test(token)) {
      throw new ConfigError(`merchant API token ${i + 1} in ${source} must be 16 to 256 visible ASCII characters without commas`);
    }
  });
  return tokens;
}

/**
 * The bearer tokens of the merchant's server, from the SSM SecureString named by
 * MERCHANT_API_TOKENS_PARAM (comma-separated: two while rotating; a rotation reaches every container
 * within SECRET_MAX_AGE_SECONDS, five minutes), else MERCHANT_API_TOKEN (local).
 */
export async function loadMerchantTokens(env: Env = process.env): Promise<string[]> {
  const parameterName = env.MERCHANT_API_TOKENS_PARAM?.trim();
  if (!parameterName) return checkMerchantTokens(required(env, 'MERCHANT_API_TOKEN'), 'MERCHANT_API_TOKEN');
  return checkMerchantTokens(await secureParameter(parameterName, 'the merchant API tokens'), `parameter ${parameterName}`);
}
