import { logger } from '../log';
import type { IdentityContext } from './context';
import { SessionRefusedError } from './errors';

/** A payer proven by a session token: the app it logged in to and its openid under that app. */
export interface Payer {
  appId: string;
  openid: string;
}

/**
 * The payer a session token proves, for the app a request names, else for any of the merchant's
 * apps. Anything but a genuine, current token of that app (tampered, expired, signed with another
 * key, of another app, `alg: none`, cut short) is a SessionRefusedError saying why.
 */
export async function verifyPayer(
  token: string,
  appId: string | undefined,
  ctx: Pick<IdentityContext, 'apps' | 'sessions'>,
): Promise<Payer> {
  const expected = appId ?? ctx.apps.map((app) => app.appId);
  const check = await (await ctx.sessions()).verify(token, { appId: expected });
  if (!check.ok) {
    // The reason only: never the token.
    logger.info('payer session refused', { reason: check.reason, appId });
    throw new SessionRefusedError(check.reason, check.message);
  }
  return { appId: check.appId, openid: check.openid };
}
