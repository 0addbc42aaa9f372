import { WechatApiError, type WechatApiErrorCode } from './errors';

/**
 * A small client for WeChat's platform API (`https://api.weixin.qq.com`, JSON; not WeChat Pay):
 * mini-program login, official-account web authorization, access_token and the JS-SDK jsapi_ticket.
 * One attempt per call, within a timeout: a login code works once, so retrying is the caller's
 * decision (`retryable` says when it can help). It knows nothing of orders, token caches or HTTP
 * handlers, and it never puts an AppSecret, a code, an access_token or a ticket in an error.
 */

export interface AppCredentials {
  appId: string;
  /** The app's AppSecret. */
  secret: string;
}

export interface PlatformClientOptions {
  /** Default `https://api.weixin.qq.com`; the emulator's URL locally. */
  baseUrl?: string;
  /** For the whole call, reading the answer included. Default 5000. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface MiniProgramSession {
  openid: string;
  /** Only for an app bound to an Open Platform account. */
  unionid?: string;
  // session_key is dropped here on purpose: nothing uses it, so it can neither be stored nor leak.
}

export interface WebAuthorization {
  openid: string;
  scope: string;
  /** True for the virtual user of a snapshot page (朋友圈快照页): nobody real, who cannot pay. */
  snapshotUser: boolean;
  unionid?: string;
  // The user's access_token and refresh_token of snsapi_base serve nothing here and are dropped.
}

export interface IssuedAccessToken {
  accessToken: string;
  /** Seconds, as WeChat answered (at most 7200). */
  expiresIn: number;
}

export interface IssuedTicket {
  ticket: string;
  expiresIn: number;
}

export interface PlatformClient {
  /** `GET /sns/jscode2session`: the code from a mini-program's `wx.login()`. */
  code2Session(app: AppCredentials, jsCode: string): Promise<MiniProgramSession>;
  /** `GET /sns/oauth2/access_token`: the code WeChat's web authorization put on the page's URL. */
  webAuthorization(app: AppCredentials, code: string): Promise<WebAuthorization>;
  /** `GET /cgi-bin/token`: a new token each call, which retires the previous one after 5 minutes. */
  accessToken(app: AppCredentials): Promise<IssuedAccessToken>;
  /** `POST /cgi-bin/stable_token`: the current token while it is valid; the secret travels in the body. */
  stableAccessToken(app: AppCredentials, options?: { forceRefresh?: boolean }): Promise<IssuedAccessToken>;
  /** `GET /cgi-bin/ticket/getticket?type=jsapi`. */
  jsapiTicket(accessToken: string): Promise<IssuedTicket>;
}

const DEFAULT_BASE_URL = 'https://api.weixin.qq.com';
const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;
const OPENID = /^[A-Za-z0-9_-]{1,64}$/;
/** Login codes are 32 characters; anything else WeChat would refuse anyway, so it is not sent. */
const CODE = /^[A-Za-z0-9_-]{1,128}$/;
/** WeChat's answers here are well under a kilobyte. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_ERRMSG = 200;

function configError(message: string): never {
  throw new TypeError(`WeChat platform client: ${message}`);
}

function resolveBaseUrl(baseUrl: string | undefined): string {
  const value = baseUrl ?? DEFAULT_BASE_URL;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username || url.password) {
    configError(`baseUrl "${String(value).slice(0, 100)}" is not an http(s) URL without query (e.g. ${DEFAULT_BASE_URL})`);
  }
  return value.replace(/\/+$/, '');
}

function describeNetworkCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, ...) in its cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? code : cause.name;
  }
  return 'unknown error';
}

/** Replaces every secret of the call in a text WeChat sent back, in case it ever echoes one. */
function mask(text: string, secrets: readonly unknown[]): string {
  let out = text;
  for (const secret of secrets) if (typeof secret === 'string' && secret.length >= 4) out = out.split(secret).join('***');
  return out;
}

/** The error to keep as a cause: itself, unless its message holds a secret of the call (then a masked copy). */
function safeCause(error: unknown, secrets: readonly unknown[]): unknown {
  if (!(error instanceof Error)) return error;
  const masked = mask(error.message, secrets);
  if (masked === error.message) return error;
  const copy = new Error(masked);
  copy.name = error.name;
  return copy;
}

type Answer = Record<string, unknown>;

interface Call {
  endpoint: string;
  path: string;
  query?: Record<string, string>;
  json?: Record<string, unknown>;
  /** Values that must never appear in an error: masked in WeChat's errmsg and in causes too. */
  secrets: unknown[];
}

export function createPlatformClient(options: PlatformClientOptions = {}): PlatformClient {
  const baseUrl = resolveBaseUrl(options.baseUrl);
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) configError(`timeoutMs must be a positive whole number, got ${timeoutMs}`);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') configError('fetch must be a function');

  function fail(call: Call, code: WechatApiErrorCode, message: string, extra: Partial<{ retryable: boolean; cause: unknown }> = {}): never {
    throw new WechatApiError(`WeChat ${call.endpoint} ${message}`, { code, endpoint: call.endpoint, ...extra });
  }

  function checkApp(call: Call, app: AppCredentials): void {
    if (typeof app?.appId !== 'string' || !APP_ID.test(app.appId)) {
      fail(call, 'INVALID_ARGUMENT', 'was not called: the app id must be 1 to 32 of [A-Za-z0-9_-]');
    }
    if (typeof app.secret !== 'string' || app.secret === '' || app.secret.length > 256 || /\s/.test(app.secret)) {
      fail(call, 'INVALID_ARGUMENT', `was not called: the AppSecret of ${app.appId} is empty, too long or has whitespace`);
    }
  }

  async function send(call: Call): Promise<Answer> {
    const url = `${baseUrl}${call.path}${call.query ? `?${new URLSearchParams(call.query)}` : ''}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let status: number;
    let text: string;
    try {
      const response = await fetchImpl(url, {
        method: call.json ? 'POST' : 'GET',
        headers: call.json ? { 'content-type': 'application/json' } : {},
        ...(call.json ? { body: JSON.stringify(call.json) } : {}),
        signal: controller.signal,
        redirect: 'error',
      });
      status = response.status;
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length > MAX_ANSWER_BYTES) fail(call, 'INVALID_RESPONSE', `answered ${bytes.length} bytes, more than WeChat ever sends`);
      text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    } catch (error) {
      if (error instanceof WechatApiError) throw error;
      // The cause is kept for debugging, masked should it ever quote the URL and so the query's secret.
      const cause = safeCause(error, call.secrets);
      if (controller.signal.aborted) fail(call, 'TIMEOUT', `did not answer within ${timeoutMs} ms`, { retryable: true, cause });
      fail(call, 'NETWORK_ERROR', `could not be reached at ${baseUrl} (${describeNetworkCause(error)})`, { retryable: true, cause });
    } finally {
      clearTimeout(timer);
    }
    if (status < 200 || status >= 300) fail(call, 'HTTP_ERROR', `answered HTTP ${status}`, { retryable: status >= 500 });
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch (error) {
      // JSON.parse quotes the text it failed on: masked, should a proxy's page echo the query.
      fail(call, 'INVALID_RESPONSE', `answered something that is not JSON (${text.length} characters)`, {
        cause: safeCause(error, call.secrets),
      });
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      fail(call, 'INVALID_RESPONSE', 'answered JSON that is not an object');
    }
    const fields = answer as Answer;
    // A success may carry no errcode at all, or errcode 0.
    if (fields.errcode !== undefined && fields.errcode !== 0) {
      const errcode = typeof fields.errcode === 'number' ? fields.errcode : Number(fields.errcode);
      if (!Number.isInteger(errcode)) fail(call, 'INVALID_RESPONSE', 'answered an errcode that is not a number');
      const errmsg = mask(typeof fields.errmsg === 'string' ? fields.errmsg : '', call.secrets).slice(0, MAX_ERRMSG);
      throw new WechatApiError(`WeChat ${call.endpoint} answered errcode ${errcode}${errmsg ? `: ${errmsg}` : ''}`, {
        code: 'ERRCODE',
        endpoint: call.endpoint,
        errcode,
        errmsg,
      });
    }
    return fields;
  }

  function text(call: Call, fields: Answer, name: string, pattern?: RegExp): string {
    const value = fields[name];
    if (typeof value !== 'string' || value === '' || value.length > 2048 || (pattern && !pattern.test(value))) {
      fail(call, 'INVALID_RESPONSE', `answered without a valid ${name}`);
    }
    return value;
  }

  function seconds(call: Call, fields: Answer): number {
    const value = fields.expires_in;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
      fail(call, 'INVALID_RESPONSE', 'answered without a valid expires_in');
    return value;
  }

  function checkCode(call: Call, code: string): void {
    if (typeof code !== 'string' || !CODE.test(code))
      fail(call, 'INVALID_ARGUMENT', 'was not called: the code must be 1 to 128 of [A-Za-z0-9_-]');
  }

  function unionid(call: Call, fields: Answer): { unionid?: string } {
    return fields.unionid === undefined ? {} : { unionid: text(call, fields, 'unionid', OPENID) };
  }

  return {
    async code2Session(app, jsCode) {
      const call: Call = { endpoint: 'jscode2session', path: '/sns/jscode2session', secrets: [app?.secret, jsCode] };
      checkApp(call, app);
      checkCode(call, jsCode);
      call.query = { appid: app.appId, secret: app.secret, js_code: jsCode, grant_type: 'authorization_code' };
      const fields = await send(call);
      return { openid: text(call, fields, 'openid', OPENID), ...unionid(call, fields) };
    },

    async webAuthorization(app, code) {
      const call: Call = { endpoint: 'oauth2/access_token', path: '/sns/oauth2/access_token', secrets: [app?.secret, code] };
      checkApp(call, app);
      checkCode(call, code);
      call.query = { appid: app.appId, secret: app.secret, code, grant_type: 'authorization_code' };
      const fields = await send(call);
      if (typeof fields.access_token === 'string') call.secrets.push(fields.access_token);
      if (typeof fields.refresh_token === 'string') call.secrets.push(fields.refresh_token);
      return {
        openid: text(call, fields, 'openid', OPENID),
        scope: typeof fields.scope === 'string' ? fields.scope : '',
        snapshotUser: fields.is_snapshotuser === 1 || fields.is_snapshotuser === '1',
        ...unionid(call, fields),
      };
    },

    async accessToken(app) {
      const call: Call = { endpoint: 'token', path: '/cgi-bin/token', secrets: [app?.secret] };
      checkApp(call, app);
      call.query = { grant_type: 'client_credential', appid: app.appId, secret: app.secret };
      const fields = await send(call);
      return { accessToken: text(call, fields, 'access_token'), expiresIn: seconds(call, fields) };
    },

    async stableAccessToken(app, { forceRefresh = false } = {}) {
      const call: Call = { endpoint: 'stable_token', path: '/cgi-bin/stable_token', secrets: [app?.secret] };
      checkApp(call, app);
      call.json = { grant_type: 'client_credential', appid: app.appId, secret: app.secret, force_refresh: forceRefresh };
      const fields = await send(call);
      return { accessToken: text(call, fields, 'access_token'), expiresIn: seconds(call, fields) };
    },

    async jsapiTicket(accessToken) {
      const call: Call = { endpoint: 'getticket', path: '/cgi-bin/ticket/getticket', secrets: [accessToken] };
      if (typeof accessToken !== 'string' || accessToken === '' || accessToken.length > 2048 || /[\s]/.test(accessToken)) {
        fail(call, 'INVALID_ARGUMENT', 'was not called: the access_token is empty, too long or has whitespace');
      }
      call.query = { access_token: accessToken, type: 'jsapi' };
      const fields = await send(call);
      return { ticket: text(call, fields, 'ticket'), expiresIn: seconds(call, fields) };
    },
  };
}
