import { InvalidRequestError } from '../validation';
import { checkPageUrl, jssdkConfig, type JssdkConfig } from '../wechat/jssdk';
import { appOfKind, APP_ID } from './apps';
import type { IdentityContext } from './context';
import { IdentityUnavailableError, identityErrorFrom, PageNotAllowedError } from './errors';
import { TokenCacheError } from './token-cache';
import { TokenStoreError } from './token-store';

/**
 * `wx.config` for a page in WeChat's browser (design §10): signed with the official account's
 * jsapi_ticket, which the shared cache fetches once for every container. Only pages of the stage's
 * own origins get one, so that the merchant's ticket signs nobody else's pages.
 */

export interface JssdkConfigRequest {
  /** The page's full URL, as `location.href` (its `#` part is not signed). */
  url?: string;
  appId?: string;
}

/** The origin of a page URL fit to sign, or a 400 naming what is wrong with it. */
function pageOrigin(url: string | undefined): string {
  const problem = checkPageUrl(url);
  if (problem) throw new InvalidRequestError(`url: ${problem} (send the page's location.href, encoded with encodeURIComponent)`, 'url');
  let parsed: URL;
  try {
    parsed = new URL(url as string);
  } catch {
    throw new InvalidRequestError('url is not a valid URL', 'url');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new InvalidRequestError('url must be an http(s) page URL', 'url');
  // A page's address never carries credentials; a URL that does would show one host and be another.
  if (parsed.username || parsed.password) throw new InvalidRequestError('url must not carry a user name or password', 'url');
  return parsed.origin;
}

export async function jssdkConfigFor(request: JssdkConfigRequest, ctx: IdentityContext): Promise<JssdkConfig> {
  if (request.appId !== undefined && !APP_ID.test(request.appId))
    throw new InvalidRequestError('appId must be an app id (1 to 32 of [A-Za-z0-9_-])', 'appId');
  const origin = pageOrigin(request.url);
  const allowed = ctx.pageOrigins();
  if (!allowed.any && !allowed.origins.includes(origin)) {
    throw new PageNotAllowedError(
      allowed.origins.length === 0
        ? `the page's origin ${origin} is not allowed: this stage lists no page origins (corsOrigins)`
        : `the page's origin ${origin} is not one of this stage's corsOrigins`,
    );
  }
  const app = appOfKind(ctx.apps, request.appId, ['officialaccount'], 'the JS-SDK (wx.config)');
  let ticket;
  try {
    ticket = await (await ctx.tokens()).jsapiTicket(app.appId);
  } catch (error) {
    if (error instanceof TokenStoreError)
      throw new IdentityUnavailableError('STORAGE_UNAVAILABLE', 'the token cache is unavailable; try again', { cause: error });
    if (error instanceof TokenCacheError)
      throw new IdentityUnavailableError('TRY_AGAIN', 'WeChat credentials are being refreshed; try again', { cause: error });
    throw identityErrorFrom(error, `getting the jsapi_ticket of ${app.appId}`);
  }
  return jssdkConfig({ appId: app.appId, jsapiTicket: ticket.value, url: request.url as string, now: ctx.now() });
}
