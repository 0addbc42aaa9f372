import { privateJson, queryParameters } from '../lib/http/api';
import { apiRoute } from '../lib/http/routes';
import { jssdkConfigFor } from '../lib/identity/jssdk-config';
import { identityContext } from '../lib/identity-runtime';

/** GET /auth/jssdk-config?url=&appId=: what `wx.config` needs on a page of the stage's own origins. */
export const handler = apiRoute(async (event) => privateJson(200, await jssdkConfigFor(queryParameters(event, ['url', 'appId']), identityContext())));
