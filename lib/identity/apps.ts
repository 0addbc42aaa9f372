import type { AppKind, WechatApp } from '../config';
import { InvalidRequestError } from '../validation';

/** An app id as WeChat writes them; the same rule as WECHAT_APPS and session tokens. */
export const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;

const KIND_NAMES: Record<AppKind, string> = {
  miniprogram: 'a mini-program',
  officialaccount: 'an official account',
  app: 'a mobile app',
  web: 'a website',
};

/**
 * The app a request names, or (when it names none) the merchant's first app of one of `kinds`;
 * refused with a 400 naming `appId` when the merchant has no such app, or when it is of another kind.
 */
export function appOfKind(apps: readonly WechatApp[], appId: string | undefined, kinds: readonly AppKind[], purpose: string): WechatApp {
  const wanted = kinds.map((kind) => KIND_NAMES[kind]).join(' or ');
  if (appId === undefined) {
    const first = apps.find((app) => kinds.includes(app.kind));
    if (!first) throw new InvalidRequestError(`none of this merchant's apps is ${wanted}, which ${purpose} needs`, 'appId');
    return first;
  }
  const app = apps.find((candidate) => candidate.appId === appId);
  if (!app) throw new InvalidRequestError(`appId ${appId} is not one of this merchant's apps`, 'appId');
  if (!kinds.includes(app.kind))
    throw new InvalidRequestError(`app ${appId} is ${KIND_NAMES[app.kind]}; ${purpose} needs ${wanted}`, 'appId');
  return app;
}
