import { queryParameters } from '../lib/http/event';
import { privateJson } from '../lib/http/responses';
import { apiRoute } from '../lib/http/routes';
import { jssdkConfigFor } from '../lib/identity/jssdk-config';
import { identityContext } from '../lib/identity-runtime';

/** GET /auth/jssdk-config?url=&appId=: what `wx.config` needs on a page of the stage's own origins. */
export const handler = apiRoute(async (event) =>
  privateJson(200, await jssdkConfigFor(queryParameters(event, ['url', 'appId']), identityContext())),
);
