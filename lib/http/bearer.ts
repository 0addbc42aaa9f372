import { header, type ApiEvent } from './event';

/** RFC 6750's `Bearer <token>`, the token of visible ASCII. */
const BEARER = /^Bearer ([\x21-\x7E]+)$/i;

/** What a request's `Authorization` header holds: a bearer token, or why there is none. */
export type BearerToken = { ok: true; token: string } | { ok: false; reason: 'ABSENT' | 'TOO_LONG' | 'NOT_BEARER' };

/**
 * The bearer token of a request's `Authorization` header. A header longer than `maxChars` is
 * refused before it is matched (each caller's limit is far above a genuine token); the caller says
 * what each refusal means for its route.
 */
export function bearer(event: ApiEvent, maxChars: number): BearerToken {
  const value = header(event, 'authorization');
  if (value === undefined || value === '') return { ok: false, reason: 'ABSENT' };
  if (value.length > maxChars) return { ok: false, reason: 'TOO_LONG' };
  const match = BEARER.exec(value);
  return match ? { ok: true, token: match[1] as string } : { ok: false, reason: 'NOT_BEARER' };
}
