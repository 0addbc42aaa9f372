import { jsonBody } from '../lib/http/event';
import { privateJson } from '../lib/http/responses';
import { apiRoute } from '../lib/http/routes';
import { logIn } from '../lib/identity/login';
import { identityContext } from '../lib/identity-runtime';

/** POST /auth/miniprogram: the code of a mini-program's `wx.login()` for a payer's session token. */
export const handler = apiRoute(async (event) => privateJson(200, await logIn('miniprogram', jsonBody(event), identityContext())));
