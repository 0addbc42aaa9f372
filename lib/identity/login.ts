import * as v from 'valibot';
import { logger } from '../log';
import { parseBody } from '../validation';
import { appOfKind, APP_ID } from './apps';
import type { IdentityContext } from './context';
import { identityErrorFrom, LoginCodeRefusedError, PayerNotEligibleError } from './errors';
import type { IssuedSession } from './session-token';

/**
 * A payer's login (design §10): the code WeChat gave the frontend is exchanged for the payer's
 * openid under that app, and the payer gets a session token bound to both. The exchange's other
 * secrets (a mini-program's session_key, a web authorization's access_token) are dropped by the
 * platform client: nothing stores, logs or returns them.
 */

export type LoginKind = 'miniprogram' | 'officialaccount';

const LoginBody = v.strictObject(
  {
    code: v.pipe(
      v.string('must be the code WeChat gave the page'),
      v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be the code WeChat gave the page (1 to 128 of [A-Za-z0-9_-])'),
    ),
    appId: v.optional(v.pipe(v.string(), v.regex(APP_ID, 'must be an app id (1 to 32 of [A-Za-z0-9_-])'))),
  },
  'is not a field of a login (code, appId)',
);

const PURPOSE: Record<LoginKind, string> = {
  miniprogram: 'POST /auth/miniprogram (wx.login())',
  officialaccount: "POST /auth/officialaccount (an official account's web authorization)",
};

/**
 * Logs a payer in with the code of `kind`'s login: `{ code, appId? }`, the app defaulting to the
 * merchant's first app of that kind. Answers the session token and when it expires.
 */
export async function logIn(kind: LoginKind, body: unknown, ctx: IdentityContext): Promise<IssuedSession> {
  const { code, appId } = parseBody(LoginBody, body);
  const app = appOfKind(ctx.apps, appId, [kind], PURPOSE[kind]);
  const credentials = { appId: app.appId, secret: await ctx.secrets.appSecret(app.appId) };
  let openid: string;
  try {
    if (kind === 'miniprogram') {
      ({ openid } = await ctx.platform.code2Session(credentials, code));
    } else {
      const authorization = await ctx.platform.webAuthorization(credentials, code);
      if (authorization.snapshotUser) {
        throw new PayerNotEligibleError(
          'SNAPSHOT_USER',
          'WeChat reports a snapshot-page virtual user (is_snapshotuser): nobody who can pay; the page must be opened in WeChat itself',
        );
      }
      openid = authorization.openid;
    }
  } catch (error) {
    const refusal = identityErrorFrom(error, `the ${kind} login of ${app.appId}`);
    // WeChat's errcode only: never the code.
    if (refusal instanceof LoginCodeRefusedError) logger.info('payer login refused', { appId: app.appId, kind, errcode: refusal.errcode });
    throw refusal;
  }
  const session = await (await ctx.sessions()).issue({ appId: app.appId, openid });
  logger.info('payer logged in', { appId: app.appId, kind });
  return session;
}
