import type { ApiEvent } from '../../lib/http/event';
import { createSessionTokens } from '../../lib/identity/session-token';
import { apiEvent } from './api';
import { LOCAL_SESSION_KEY } from '../../dev/local/session-key';

/** Payers' identity in tests: the emulator's stand-in for `wx.login()`, and session tokens. */

export interface SimLogin {
  code: string;
  openid: string;
  appId: string;
  kind: string;
}

/** `POST /__sim/login`: the code `wx.login()` (or a web authorization) would give this user now. */
export async function simLogin(
  emulatorUrl: string,
  body: { appId?: string; openid?: string; snapshotUser?: boolean } = {},
): Promise<SimLogin> {
  const response = await fetch(`${emulatorUrl}/__sim/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`__sim/login answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as SimLogin;
}

/** A genuine session token, as the login routes issue them on the test stack (its local session key). */
export async function sessionToken(appId: string, openid: string, options: { key?: string; now?: () => number } = {}): Promise<string> {
  const tokens = createSessionTokens({ key: options.key ?? LOCAL_SESSION_KEY, ...(options.now ? { now: options.now } : {}) });
  return (await tokens.issue({ appId, openid })).token;
}

export const bearer = (token: string): string => `Bearer ${token}`;

export interface AuthResult {
  status: number;
  headers: Record<string, unknown>;
  body: {
    token?: string;
    expiresAt?: string;
    appId?: string;
    timestamp?: number;
    nonceStr?: string;
    signature?: string;
    error?: { code: string; message: string; field?: string };
  };
  raw: string;
}

function read(result: { statusCode?: number; body?: string; headers?: Record<string, unknown> }): AuthResult {
  return {
    status: result.statusCode ?? 0,
    headers: result.headers ?? {},
    body: JSON.parse(result.body as string),
    raw: result.body as string,
  };
}

/** POST /auth/miniprogram or /auth/officialaccount through the real handler. */
export async function login(kind: 'miniprogram' | 'officialaccount', body: unknown): Promise<AuthResult> {
  const { handler } =
    kind === 'miniprogram' ? await import('../../functions/miniProgramLogin') : await import('../../functions/officialAccountLogin');
  return read(
    await handler(apiEvent({ method: 'POST', path: `/auth/${kind}`, body: typeof body === 'string' ? body : JSON.stringify(body) })),
  );
}

/** GET /auth/jssdk-config with this raw query string, through the real handler (or another's). */
export async function jssdkConfigRequest(
  rawQueryString: string,
  handler?: (event: ApiEvent) => Promise<{ statusCode?: number; body?: string }>,
): Promise<AuthResult> {
  const run = handler ?? (await import('../../functions/jssdkConfig')).handler;
  return read(await run({ ...apiEvent({ method: 'GET', path: '/auth/jssdk-config' }), rawQueryString }));
}

/** The query string of a JS-SDK config request, the page URL encoded as a page would. */
export const jssdkQuery = (url: string, appId?: string): string => `url=${encodeURIComponent(url)}${appId ? `&appId=${appId}` : ''}`;
