import { randomBytes, randomInt } from 'node:crypto';
import type { AppKind, LocalApp } from './test-apps';
import type { EmulatorLog } from './api';

/**
 * WeChat's platform API (`https://api.weixin.qq.com`, JSON, not WeChat Pay): mini-program login,
 * official-account web authorization, access_token (plain and stable) and the JS-SDK jsapi_ticket,
 * with WeChat's errcodes and clock rules; and the control calls that stand in for the user
 * (`POST /__sim/login`) and report what was issued (`GET /__sim/platform`).
 *
 * Durations are WeChat's, multiplied by the emulator's time scale; `expires_in` is answered in
 * WeChat's own (unscaled) seconds, as WeChat sends it.
 */

/** An app of the merchant, as WeChat knows it: its AppSecret and what kind of app it is. */
export type EmulatorApp = LocalApp;

export const PLATFORM_PATHS = {
  '/sns/jscode2session': 'jscode2session',
  '/sns/oauth2/access_token': 'oauth2_access_token',
  '/cgi-bin/token': 'token',
  '/cgi-bin/stable_token': 'stable_token',
  '/cgi-bin/ticket/getticket': 'getticket',
} as const;

export type PlatformEndpoint = (typeof PLATFORM_PATHS)[keyof typeof PLATFORM_PATHS];
export const PLATFORM_ENDPOINTS = Object.values(PLATFORM_PATHS) as PlatformEndpoint[];

const APP_KINDS: readonly AppKind[] = ['miniprogram', 'officialaccount', 'app', 'web'];

// WeChat's durations, before scaling.
const CODE_LIFETIME_MS = 5 * 60_000;
const TOKEN_LIFETIME_S = 7200;
const TICKET_LIFETIME_S = 7200;
/** A new /cgi-bin/token leaves the previous token usable this long. */
const TOKEN_GRACE_MS = 5 * 60_000;
/** stable_token hands out a new token in the last 5 minutes of the current one. */
const STABLE_RENEW_BEFORE_MS = 5 * 60_000;
/** force_refresh: at most 20 a day and 30 s apart; a closer one does not refresh. */
const FORCE_REFRESH_SPACING_MS = 30_000;
const FORCE_REFRESHES_PER_DAY = 20;
/** /cgi-bin/token: 2,000 a day for an official account. */
const TOKENS_PER_DAY = 2000;
const DAY_MS = 24 * 60 * 60_000;

/** WeChat's errmsg for each errcode the emulator answers (WeChat appends ` rid: ...`). */
export const ERRMSG: Readonly<Record<number, string>> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40013: 'invalid appid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40097: 'invalid args',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40164: 'invalid ip, not in whitelist',
  40226: 'invalid user, high risk user',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  42001: 'access_token expired',
  42003: 'code expired',
  43001: 'require GET method',
  43002: 'require POST method',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit mustslower retry next minute',
  47001: 'data format error',
  89503: 'risky ip, need admin confirm',
};

interface LoginCode {
  appId: string;
  /** jscode2session for a mini-program; the web authorization exchange for every other kind. */
  endpoint: PlatformEndpoint;
  openid: string;
  unionid?: string;
  snapshotUser: boolean;
  issuedAt: number;
  used: boolean;
}

interface AccessToken {
  appId: string;
  expiresAt: number;
  /** From here on WeChat answers 40001: replaced (after the grace period) or force-refreshed. */
  revokedAt?: number;
}

interface AppState {
  app: EmulatorApp;
  accessTokensIssued: number;
  ticketsIssued: number;
  jsapiTicket?: string;
  /** The latest /cgi-bin/token token; stable tokens are kept apart, as WeChat keeps them. */
  plainToken?: string;
  stableToken?: string;
  forceRefreshes: number[];
  plainTokenTimes: number[];
  calls: Record<PlatformEndpoint, number>;
}

interface PlatformState {
  apps: Map<string, AppState>;
  codes: Map<string, LoginCode>;
  tokens: Map<string, AccessToken>;
  /** Every openid belongs to one app: the same person has another openid under another app. */
  openidApps: Map<string, string>;
  /** Injected errcodes: the next calls of an endpoint answer these, one each, in order. */
  errors: Record<PlatformEndpoint, number[]>;
}

/** An answer of the platform API or of its control calls. */
export interface PlatformAnswer {
  status: number;
  body: unknown;
  /** True for WeChat's own endpoints (the emulator's delayMs fault applies), false for control calls. */
  api: boolean;
}

type Params = { get(name: string): string | null };
type Result = Record<string, unknown>;

const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;
const OPENID = /^[A-Za-z0-9_-]{1,64}$/;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MAX_INJECTED_ERRORS = 100;

function randomText(length: number, alphabet = ALPHANUMERIC): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** 28 characters starting with `o`, like WeChat's openids. */
function newOpenid(): string {
  return `o${randomText(27, `${ALPHANUMERIC}_-`)}`;
}

/** Shaped like WeChat's: a short number, `_`, then about 130 URL-safe characters. */
function newAccessToken(): string {
  return `${randomInt(10, 100)}_${randomBytes(96).toString('base64url')}`;
}

function newTicket(): string {
  return randomBytes(64).toString('base64url');
}

function rid(): string {
  return `${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}`;
}

function failure(errcode: number): Result {
  return { errcode, errmsg: `${ERRMSG[errcode] ?? 'emulated error'} rid: ${rid()}` };
}

function noCalls(): Record<PlatformEndpoint, number> {
  return { jscode2session: 0, oauth2_access_token: 0, token: 0, stable_token: 0, getticket: 0 };
}

function noErrors(): Record<PlatformEndpoint, number[]> {
  return { jscode2session: [], oauth2_access_token: [], token: [], stable_token: [], getticket: [] };
}

/** Checks the apps given to the emulator; throws on the first problem, naming it. */
export function checkApps(apps: readonly EmulatorApp[]): void {
  if (!Array.isArray(apps) || apps.length === 0) throw new Error('apps must list at least one app');
  const seen = new Set<string>();
  for (const app of apps) {
    if (typeof app?.appId !== 'string' || !APP_ID.test(app.appId)) {
      throw new Error(`apps: appId must be 1 to 32 of [A-Za-z0-9_-], got ${JSON.stringify(app?.appId)}`);
    }
    if (typeof app.secret !== 'string' || app.secret === '') throw new Error(`apps: ${app.appId} needs a secret`);
    if (!APP_KINDS.includes(app.kind)) throw new Error(`apps: ${app.appId} kind must be one of ${APP_KINDS.join(', ')}`);
    if (seen.has(app.appId)) throw new Error(`apps: ${app.appId} is listed twice`);
    seen.add(app.appId);
  }
}

export interface PlatformOptions {
  apps: readonly EmulatorApp[];
  timeScale: number;
  log: EmulatorLog;
  /** Real epoch milliseconds; the emulator's rules scale durations, not the clock. */
  now?: () => number;
}

export class PlatformEmulator {
  private state: PlatformState;
  private readonly apps: readonly EmulatorApp[];
  private readonly timeScale: number;
  private readonly log: EmulatorLog;
  private readonly now: () => number;

  constructor(options: PlatformOptions) {
    checkApps(options.apps);
    this.apps = options.apps.map((app) => ({ ...app }));
    this.timeScale = options.timeScale;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.state = this.emptyState();
  }

  private emptyState(): PlatformState {
    const apps = new Map<string, AppState>();
    for (const app of this.apps) {
      apps.set(app.appId, { app, accessTokensIssued: 0, ticketsIssued: 0, forceRefreshes: [], plainTokenTimes: [], calls: noCalls() });
    }
    return { apps, codes: new Map(), tokens: new Map(), openidApps: new Map(), errors: noErrors() };
  }

  /** Forgets every code, openid, token, ticket and injected error (`POST /__sim/reset`). */
  reset(): void {
    this.state = this.emptyState();
  }

  private scaled(ms: number): number {
    return ms * this.timeScale;
  }

  /**
   * Answers a platform API call or one of its control calls; undefined when the path is neither.
   * `url` is the request's path and query.
   */
  answer(method: string, url: string, body: Buffer): PlatformAnswer | undefined {
    const parsed = new URL(url, 'http://emulator');
    const endpoint = PLATFORM_PATHS[parsed.pathname as keyof typeof PLATFORM_PATHS];
    if (endpoint) return { status: 200, body: this.call(endpoint, method, parsed.searchParams, body), api: true };
    if (parsed.pathname === '/__sim/login') {
      if (method !== 'POST') return controlError(405, 'METHOD_NOT_ALLOWED', '/__sim/login takes POST');
      return this.login(body.toString('utf8'));
    }
    if (parsed.pathname === '/__sim/platform') {
      if (method !== 'GET') return controlError(405, 'METHOD_NOT_ALLOWED', '/__sim/platform takes GET');
      return { status: 200, body: this.view(), api: false };
    }
    return undefined;
  }

  private call(endpoint: PlatformEndpoint, method: string, query: Params, body: Buffer): Result {
    const now = this.now();
    let appId: string | undefined;
    const result = this.evaluate(endpoint, method, query, body, now, (found) => (appId = found));
    const app = appId === undefined ? undefined : this.state.apps.get(appId);
    if (app) app.calls[endpoint] += 1;
    // Never the secret, a code, a token or a ticket: only what was called and how it was answered.
    this.log({ event: 'platform_call', endpoint, appid: app ? app.app.appId : undefined, errcode: result.errcode ?? 0 });
    return result;
  }

  private evaluate(
    endpoint: PlatformEndpoint,
    method: string,
    query: Params,
    body: Buffer,
    now: number,
    concerns: (appId: string) => void,
  ): Result {
    if (endpoint === 'stable_token') {
      if (method !== 'POST') return failure(43002);
      const input = parseObject(body.toString('utf8'));
      if (typeof input?.appid === 'string') concerns(input.appid);
      const injected = this.state.errors.stable_token.shift();
      if (injected !== undefined) return failure(injected);
      if (!input) return failure(47001);
      return this.stableToken(input, now);
    }
    if (method !== 'GET') return failure(43001);
    if (endpoint === 'getticket') {
      const token = this.state.tokens.get(query.get('access_token') ?? '');
      if (token) concerns(token.appId);
    } else {
      const appid = query.get('appid');
      if (appid) concerns(appid);
    }
    const injected = this.state.errors[endpoint].shift();
    if (injected !== undefined) return failure(injected);
    switch (endpoint) {
      case 'jscode2session':
        return this.exchangeCode(endpoint, query, 'js_code', 'authorization_code', now);
      case 'oauth2_access_token':
        return this.exchangeCode(endpoint, query, 'code', 'authorization_code', now);
      case 'token':
        return this.plainToken(query, now);
      case 'getticket':
        return this.ticket(query, now);
    }
  }

  /** The app named by appid and secret, or WeChat's errcode for them. */
  private authenticate(appid: unknown, secret: unknown, grantType: unknown, expectedGrant: string): AppState | number {
    if (typeof appid !== 'string' || appid === '') return 41002;
    if (typeof secret !== 'string' || secret === '') return 41004;
    if (grantType !== expectedGrant) return 40002;
    const app = this.state.apps.get(appid);
    if (!app) return 40013;
    if (app.app.secret !== secret) return 40125;
    return app;
  }

  /** jscode2session (mini-programs) and the web authorization exchange (every other kind). */
  private exchangeCode(endpoint: PlatformEndpoint, query: Params, codeName: string, grant: string, now: number): Result {
    const appid = query.get('appid');
    const secret = query.get('secret');
    const value = query.get(codeName);
    if (!appid) return failure(41002);
    if (!secret) return failure(41004);
    if (!value) return failure(41008);
    const app = this.authenticate(appid, secret, query.get('grant_type'), grant);
    if (typeof app === 'number') return failure(app);
    const code = this.state.codes.get(value);
    // A code belongs to one app and to one exchange: anything else is an invalid code.
    if (!code || code.appId !== appid || code.endpoint !== endpoint) return failure(40029);
    if (now - code.issuedAt >= this.scaled(CODE_LIFETIME_MS)) {
      // A mini-program's expired code is just invalid; the web authorization names the expiry.
      return failure(endpoint === 'jscode2session' ? 40029 : 42003);
    }
    if (code.used) return failure(40163);
    code.used = true;
    if (endpoint === 'jscode2session') {
      return {
        openid: code.openid,
        session_key: randomBytes(16).toString('base64'),
        ...(code.unionid ? { unionid: code.unionid } : {}),
      };
    }
    return {
      access_token: newAccessToken(),
      expires_in: TOKEN_LIFETIME_S,
      refresh_token: newAccessToken(),
      openid: code.openid,
      scope: 'snsapi_base',
      ...(code.snapshotUser ? { is_snapshotuser: 1 } : {}),
    };
  }

  private issueToken(app: AppState, now: number): string {
    const value = newAccessToken();
    this.state.tokens.set(value, { appId: app.app.appId, expiresAt: now + this.scaled(TOKEN_LIFETIME_S * 1000) });
    app.accessTokensIssued += 1;
    this.forgetOld(now);
    return value;
  }

  /** `GET /cgi-bin/token`: a new token each call; the previous one works 5 more minutes. */
  private plainToken(query: Params, now: number): Result {
    const app = this.authenticate(query.get('appid'), query.get('secret'), query.get('grant_type'), 'client_credential');
    if (typeof app === 'number') return failure(app);
    app.plainTokenTimes = app.plainTokenTimes.filter((at) => now - at < this.scaled(DAY_MS));
    if (app.plainTokenTimes.length >= TOKENS_PER_DAY) return failure(45009);
    app.plainTokenTimes.push(now);
    const previous = app.plainToken === undefined ? undefined : this.state.tokens.get(app.plainToken);
    if (previous && previous.revokedAt === undefined) previous.revokedAt = now + this.scaled(TOKEN_GRACE_MS);
    app.plainToken = this.issueToken(app, now);
    return { access_token: app.plainToken, expires_in: TOKEN_LIFETIME_S };
  }

  /**
   * `POST /cgi-bin/stable_token`: the same token while it has more than 5 minutes left (then a new
   * one, the old one still working to its end); force_refresh revokes the current one at once.
   */
  private stableToken(input: Record<string, unknown>, now: number): Result {
    const forceRefresh = input.force_refresh;
    if (forceRefresh !== undefined && typeof forceRefresh !== 'boolean') return failure(47001);
    const app = this.authenticate(input.appid, input.secret, input.grant_type, 'client_credential');
    if (typeof app === 'number') return failure(app);
    const current = app.stableToken === undefined ? undefined : this.state.tokens.get(app.stableToken);
    const usable = current && current.revokedAt === undefined && current.expiresAt - now > this.scaled(STABLE_RENEW_BEFORE_MS);
    if (forceRefresh === true && current) {
      app.forceRefreshes = app.forceRefreshes.filter((at) => now - at < this.scaled(DAY_MS));
      const last = app.forceRefreshes[app.forceRefreshes.length - 1];
      const tooSoon = last !== undefined && now - last < this.scaled(FORCE_REFRESH_SPACING_MS);
      if (!tooSoon) {
        if (app.forceRefreshes.length >= FORCE_REFRESHES_PER_DAY) return failure(45009);
        app.forceRefreshes.push(now);
        current.revokedAt = now;
        return this.newStableToken(app, now);
      }
    }
    if (usable && current && app.stableToken !== undefined) {
      return { access_token: app.stableToken, expires_in: Math.floor((current.expiresAt - now) / this.timeScale / 1000) };
    }
    return this.newStableToken(app, now);
  }

  private newStableToken(app: AppState, now: number): Result {
    app.stableToken = this.issueToken(app, now);
    return { access_token: app.stableToken, expires_in: TOKEN_LIFETIME_S };
  }

  /** `GET /cgi-bin/ticket/getticket?access_token&type=jsapi`: a new jsapi_ticket each call. */
  private ticket(query: Params, now: number): Result {
    const value = query.get('access_token');
    if (!value) return failure(41001);
    const token = this.state.tokens.get(value);
    if (!token) return failure(/^[A-Za-z0-9_-]{16,512}$/.test(value) ? 40001 : 40014);
    const revoked = token.revokedAt !== undefined && now >= token.revokedAt && token.revokedAt <= token.expiresAt;
    if (revoked) return failure(40001);
    if (now >= token.expiresAt) return failure(42001);
    if (query.get('type') !== 'jsapi') return failure(40097);
    const app = this.state.apps.get(token.appId);
    if (!app) return failure(40001);
    app.jsapiTicket = newTicket();
    app.ticketsIssued += 1;
    return { errcode: 0, errmsg: 'ok', ticket: app.jsapiTicket, expires_in: TICKET_LIFETIME_S };
  }

  /** Drops codes and tokens long past their end, so a long-running emulator does not grow. */
  private forgetOld(now: number): void {
    const keep = this.scaled(TOKEN_LIFETIME_S * 1000);
    for (const [value, token] of this.state.tokens) if (now - token.expiresAt > keep) this.state.tokens.delete(value);
    for (const [value, code] of this.state.codes) {
      if (now - code.issuedAt > this.scaled(CODE_LIFETIME_MS) + keep) this.state.codes.delete(value);
    }
  }

  /**
   * `POST /__sim/login {appId?, openid?, unionid?, snapshotUser?}`: the code that `wx.login()`
   * (a mini-program) or WeChat's web authorization (any other app) would give this user now.
   */
  private login(text: string): PlatformAnswer {
    const input = parseObject(text === '' ? '{}' : text);
    if (!input) return controlError(400, 'INVALID_JSON', 'the body must be a JSON object');
    const known = ['appId', 'openid', 'unionid', 'snapshotUser'];
    const unknown = Object.keys(input).filter((key) => !known.includes(key));
    if (unknown.length > 0) return controlError(400, 'INVALID_REQUEST', `unknown field ${unknown.join(', ')}`);
    const { appId = this.apps[0]?.appId, openid, unionid, snapshotUser = false } = input;
    if (typeof appId !== 'string') return controlError(400, 'INVALID_REQUEST', 'appId must be a string');
    const app = this.state.apps.get(appId);
    if (!app) {
      return controlError(404, 'APP_NOT_FOUND', `no app ${appId}; the emulator knows ${[...this.state.apps.keys()].join(', ')}`);
    }
    for (const [name, value] of [
      ['openid', openid],
      ['unionid', unionid],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || !OPENID.test(value))) {
        return controlError(400, 'INVALID_REQUEST', `${name} must be 1 to 64 of [A-Za-z0-9_-]`);
      }
    }
    if (typeof snapshotUser !== 'boolean') return controlError(400, 'INVALID_REQUEST', 'snapshotUser must be a boolean');
    const user = (openid as string | undefined) ?? newOpenid();
    const owner = this.state.openidApps.get(user);
    if (owner !== undefined && owner !== appId) {
      return controlError(409, 'OPENID_OF_ANOTHER_APP', `openid ${user} belongs to app ${owner}: an openid is per app`);
    }
    this.state.openidApps.set(user, appId);
    const code = randomText(32);
    this.state.codes.set(code, {
      appId,
      endpoint: app.app.kind === 'miniprogram' ? 'jscode2session' : 'oauth2_access_token',
      openid: user,
      ...(unionid === undefined ? {} : { unionid: unionid as string }),
      snapshotUser,
      issuedAt: this.now(),
      used: false,
    });
    return { status: 200, body: { code, openid: user, appId, kind: app.app.kind }, api: false };
  }

  /** `GET /__sim/platform`: per app, what was issued and how often each endpoint was called. */
  private view(): Record<string, unknown> {
    const apps: Record<string, unknown> = {};
    for (const [appId, app] of this.state.apps) {
      apps[appId] = {
        kind: app.app.kind,
        accessTokensIssued: app.accessTokensIssued,
        jsapiTicket: app.jsapiTicket ?? null,
        ticketsIssued: app.ticketsIssued,
        calls: { ...app.calls },
      };
    }
    return { apps, platformErrors: this.errorQueues() };
  }

  errorQueues(): Record<PlatformEndpoint, number[]> {
    const queues = noErrors();
    for (const endpoint of PLATFORM_ENDPOINTS) queues[endpoint] = [...this.state.errors[endpoint]];
    return queues;
  }

  /**
   * Checks a `platformErrors` fault (`{"<endpoint>": [errcode, ...]}`) without applying it: the
   * answer's `apply` replaces the queue of each endpoint named (`[]` empties it).
   */
  checkErrors(input: unknown): { error: string } | { apply(): void } {
    const usage = `platformErrors takes {"<endpoint>": [errcode, ...]} for ${PLATFORM_ENDPOINTS.join(', ')}, errcodes -1 or 1 to 999999, at most ${MAX_INJECTED_ERRORS}`;
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return { error: usage };
    const queues: Partial<Record<PlatformEndpoint, number[]>> = {};
    for (const [endpoint, codes] of Object.entries(input)) {
      if (!(PLATFORM_ENDPOINTS as string[]).includes(endpoint) || !Array.isArray(codes) || codes.length > MAX_INJECTED_ERRORS) {
        return { error: usage };
      }
      for (const code of codes) {
        if (!Number.isSafeInteger(code) || (code !== -1 && (code < 1 || code > 999_999))) return { error: usage };
      }
      queues[endpoint as PlatformEndpoint] = [...(codes as number[])];
    }
    return {
      apply: () => {
        Object.assign(this.state.errors, queues);
      },
    };
  }
}

function controlError(status: number, code: string, message: string): PlatformAnswer {
  return { status, body: { error: { code, message } }, api: false };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
