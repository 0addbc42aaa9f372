/**
 * `Authorization: Bearer <session token>` on a payer's request (design §10): optional, but when
 * sent it must be a genuine, current session token, else the request is answered 401 and nothing is
 * done. The token never reaches a log or a message.
 */
import { SessionRefusedError } from '../identity/errors';
import { logger } from '../log';
import type { Payer } from '../identity/payer';
import { bearer } from './bearer';
import type { ApiEvent } from './event';

/** Far above a genuine session token (about 300 characters). */
const MAX_AUTHORIZATION_CHARS = 2048;

/** The bearer token sent, if any; a header that is not `Bearer <token>` is refused. */
export function bearerToken(event: ApiEvent): string | undefined {
  const sent = bearer(event, MAX_AUTHORIZATION_CHARS);
  if (sent.ok) return sent.token;
  if (sent.reason === 'ABSENT') return undefined;
  const refuse = (reason: 'MALFORMED' | 'NOT_BEARER', message: string) => {
    logger.info('payer session refused', { reason });
    return new SessionRefusedError(reason, message);
  };
  if (sent.reason === 'TOO_LONG') throw refuse('MALFORMED', 'the Authorization header is too long');
  throw refuse('NOT_BEARER', 'the Authorization header must be "Bearer <session token>"');
}

/**
 * The payer a request's session token proves, for the app its body names (if any); undefined when
 * it sends no token (an anonymous frontend).
 */
export async function authenticatePayer(event: ApiEvent, body: unknown): Promise<Payer | undefined> {
  const token = bearerToken(event);
  if (token === undefined) return undefined;
  const named = typeof body === 'object' && body !== null ? (body as { appId?: unknown }).appId : undefined;
  // Loaded on first use: anonymous orders never load session tokens.
  const [{ verifyPayer }, { identityContext }] = await Promise.all([import('../identity/payer'), import('../identity-runtime')]);
  return verifyPayer(token, typeof named === 'string' ? named : undefined, identityContext());
}
