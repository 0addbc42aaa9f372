import { jsonBody } from '../lib/http/event';
import { privateJson } from '../lib/http/responses';
import { apiRoute } from '../lib/http/routes';
import { logIn } from '../lib/identity/login';
import { identityContext } from '../lib/identity-runtime';

/** POST /auth/officialaccount: the code of an official account's web authorization for a payer's session token. */
export const handler = apiRoute(async (event) => privateJson(200, await logIn('officialaccount', jsonBody(event), identityContext())));
