import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../../dev/emulator/server';
import { PlatformEmulator, type EmulatorApp } from '../../../dev/emulator/platform';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { TEST_APP_SECRET, TEST_MINIPROGRAM } from '../../../dev/emulator/test-apps';

/** WeChat's platform API on the emulator: conformance with WeChat's answers, errcodes and clock rules. */

const OA: EmulatorApp = { appId: TEST_MERCHANT.appId, secret: TEST_APP_SECRET, kind: 'officialaccount' };
const MP: EmulatorApp = TEST_MINIPROGRAM;
const WEB: EmulatorApp = { appId: 'wx00000000000000b3', secret: 'web-secret-0000000000000000000003', kind: 'web' };
const APPS = [OA, MP, WEB];
/** 5 minutes of WeChat time are 300 ms here. */
const TIME_SCALE = 0.001;

type Json = Record<string, unknown>;

let emulator: RunningEmulator;
const logged: Json[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ ...TEST_MERCHANT, apps: APPS, timeScale: TIME_SCALE, log: (entry) => void logged.push(entry) });
});
beforeEach(async () => {
  await post('/__sim/reset', {});
});
afterAll(() => emulator.close());

async function get(path: string, query: Record<string, string> = {}): Promise<Json> {
  const response = await fetch(`${emulator.url}${path}?${new URLSearchParams(query)}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Json;
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Json };
}

async function login(body: Json = {}): Promise<{ code: string; openid: string }> {
  const answer = await post('/__sim/login', body);
  expect(answer.status).toBe(200);
  return answer.json as { code: string; openid: string };
}

const jscode2session = (code: string, app: EmulatorApp = MP, extra: Record<string, string> = {}) =>
  get('/sns/jscode2session', { appid: app.appId, secret: app.secret, js_code: code, grant_type: 'authorization_code', ...extra });

const oauth2 = (code: string, app: EmulatorApp = OA, extra: Record<string, string> = {}) =>
  get('/sns/oauth2/access_token', { appid: app.appId, secret: app.secret, code, grant_type: 'authorization_code', ...extra });

const plainToken = (app: EmulatorApp = OA, extra: Record<string, string> = {}) =>
  get('/cgi-bin/token', { grant_type: 'client_credential', appid: app.appId, secret: app.secret, ...extra });

const stableToken = async (app: EmulatorApp = OA, extra: Json = {}) =>
  (await post('/cgi-bin/stable_token', { grant_type: 'client_credential', appid: app.appId, secret: app.secret, ...extra })).json;

const getticket = (accessToken: string, type = 'jsapi') => get('/cgi-bin/ticket/getticket', { access_token: accessToken, type });

async function platformView(): Promise<{
  apps: Record<string, { accessTokensIssued: number; ticketsIssued: number; jsapiTicket: string | null; calls: Record<string, number> }>;
}> {
  const response = await fetch(`${emulator.url}/__sim/platform`);
  expect(response.status).toBe(200);
  return (await response.json()) as never;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectErrcode(answer: Json, errcode: number): void {
  expect(answer).toMatchObject({ errcode, errmsg: expect.any(String) });
  expect(answer).not.toHaveProperty('openid');
  expect(answer).not.toHaveProperty('access_token');
}

describe('mini-program login: GET /sns/jscode2session', () => {
  it('exchanges the code of wx.login() for the openid and a session_key', async () => {
    const { code, openid } = await login({ appId: MP.appId });
    expect(openid).toMatch(/^o[A-Za-z0-9_-]{27}$/);
    const answer = await jscode2session(code);
    expect(answer).toEqual({ openid, session_key: expect.stringMatching(/^[A-Za-z0-9+/]{22}==$/) });
    expect(answer).not.toHaveProperty('errcode');
  });

  it('adds the unionid only for a user who has one', async () => {
    const { code } = await login({ appId: MP.appId, unionid: 'oUnion_0000000000000000000001' });
    expect(await jscode2session(code)).toMatchObject({ unionid: 'oUnion_0000000000000000000001' });
  });

  it('takes a code once: a second exchange answers 40163', async () => {
    const { code } = await login({ appId: MP.appId });
    expect(await jscode2session(code)).toHaveProperty('openid');
    expectErrcode(await jscode2session(code), 40163);
  });

  it('takes a code for 5 minutes (scaled): later it is an invalid code, 40029', async () => {
    const { code } = await login({ appId: MP.appId });
    await sleep(5 * 60_000 * TIME_SCALE + 50);
    expectErrcode(await jscode2session(code), 40029);
  });

  it.each([
    ['no appid', { appid: '' }, 41002],
    ['no secret', { secret: '' }, 41004],
    ['no js_code', { js_code: '' }, 41008],
    ['another grant_type', { grant_type: 'client_credential' }, 40002],
    ['an unknown appid', { appid: 'wx0000000000000bad' }, 40013],
    ['a wrong secret', { secret: 'not-the-secret' }, 40125],
    ['an unknown code', { js_code: 'never-issued' }, 40029],
  ])('answers %s with %i, and the code still works afterwards', async (_, override, errcode) => {
    const { code, openid } = await login({ appId: MP.appId });
    expectErrcode(await jscode2session(code, MP, override), errcode);
    expect(await jscode2session(code)).toMatchObject({ openid });
  });

  it("refuses another app's code and a web authorization code (40029)", async () => {
    const other: EmulatorApp = { ...MP, appId: 'wx00000000000000c4', secret: 'other-mini-program-secret-000004' };
    const separate = await startEmulator({ ...TEST_MERCHANT, apps: [MP, other], log: () => {} });
    try {
      const issued = (await (
        await fetch(`${separate.url}/__sim/login`, { method: 'POST', body: JSON.stringify({ appId: MP.appId }) })
      ).json()) as Json;
      const query = new URLSearchParams({
        appid: other.appId,
        secret: other.secret,
        js_code: String(issued.code),
        grant_type: 'authorization_code',
      });
      expectErrcode((await (await fetch(`${separate.url}/sns/jscode2session?${query}`)).json()) as Json, 40029);
    } finally {
      await separate.close();
    }
    const { code } = await login({ appId: OA.appId });
    expectErrcode(await jscode2session(code), 40029);
  });

  it('answers a POST with 43001 (GET only)', async () => {
    const answer = await post(`/sns/jscode2session?appid=${MP.appId}`, {});
    expect(answer.status).toBe(200);
    expectErrcode(answer.json, 43001);
  });
});

describe('official-account web authorization: GET /sns/oauth2/access_token', () => {
  it('exchanges the code for the openid, snsapi_base', async () => {
    const { code, openid } = await login();
    expect(await oauth2(code)).toEqual({
      access_token: expect.any(String),
      expires_in: 7200,
      refresh_token: expect.any(String),
      openid,
      scope: 'snsapi_base',
    });
  });

  it('marks a snapshot-page user with is_snapshotuser: 1', async () => {
    const { code } = await login({ snapshotUser: true });
    expect(await oauth2(code)).toMatchObject({ is_snapshotuser: 1 });
  });

  it('serves web apps too, each with its own openids', async () => {
    const web = await login({ appId: WEB.appId });
    const oa = await login({ appId: OA.appId });
    expect(web.openid).not.toBe(oa.openid);
    expect(await oauth2(web.code, WEB)).toMatchObject({ openid: web.openid });
  });

  it('takes a code once (40163) and for 5 minutes (scaled), then 42003 code expired', async () => {
    const used = await login();
    await oauth2(used.code);
    expectErrcode(await oauth2(used.code), 40163);
    const late = await login();
    await sleep(5 * 60_000 * TIME_SCALE + 50);
    expectErrcode(await oauth2(late.code), 42003);
  });

  it.each([
    ['no appid', { appid: '' }, 41002],
    ['no secret', { secret: '' }, 41004],
    ['no code', { code: '' }, 41008],
    ['another grant_type', { grant_type: 'refresh_token' }, 40002],
    ['an unknown appid', { appid: 'wx0000000000000bad' }, 40013],
    ['a wrong secret', { secret: TEST_MINIPROGRAM.secret }, 40125],
    ['an unknown code', { code: 'never-issued' }, 40029],
  ])('answers %s with %i', async (_, override, errcode) => {
    const { code } = await login();
    expectErrcode(await oauth2(code, OA, override), errcode);
  });

  it("refuses a mini-program's code and another app's code (40029)", async () => {
    expectErrcode(await oauth2((await login({ appId: MP.appId })).code), 40029);
    expectErrcode(await oauth2((await login({ appId: WEB.appId })).code, OA), 40029);
  });
});

describe('access_token: GET /cgi-bin/token', () => {
  it('issues a token for 7200 seconds, counted per app', async () => {
    const answer = await plainToken();
    expect(answer).toEqual({ access_token: expect.stringMatching(/^\d+_[A-Za-z0-9_-]{100,}$/), expires_in: 7200 });
    const view = await platformView();
    expect(view.apps[OA.appId]).toMatchObject({ accessTokensIssued: 1, calls: { token: 1 } });
    expect(view.apps[MP.appId]).toMatchObject({ accessTokensIssued: 0 });
  });

  it.each([
    ['a wrong secret', { secret: 'wrong' }, 40125],
    ['an unknown appid', { appid: 'wx0000000000000bad' }, 40013],
    ['another grant_type', { grant_type: 'authorization_code' }, 40002],
    ['no appid', { appid: '' }, 41002],
    ['no secret', { secret: '' }, 41004],
  ])('answers %s with %i and issues nothing', async (_, override, errcode) => {
    expectErrcode(await plainToken(OA, override), errcode);
    expect((await platformView()).apps[OA.appId]?.accessTokensIssued).toBe(0);
  });

  it('a new token leaves the previous one working for 5 minutes (scaled), then 40001', async () => {
    const first = String((await plainToken()).access_token);
    const second = String((await plainToken()).access_token);
    expect(second).not.toBe(first);
    expect(await getticket(first)).toMatchObject({ errcode: 0 });
    await sleep(5 * 60_000 * TIME_SCALE + 50);
    expectErrcode(await getticket(first), 40001);
    expect(await getticket(second)).toMatchObject({ errcode: 0 });
  });
});

describe('stable access_token: POST /cgi-bin/stable_token', () => {
  it('answers the same token while it is valid, with the seconds it has left', async () => {
    const first = await stableToken();
    expect(first).toEqual({ access_token: expect.any(String), expires_in: 7200 });
    const again = await stableToken(OA, { force_refresh: false });
    expect(again.access_token).toBe(first.access_token);
    expect(again.expires_in).toBeLessThanOrEqual(7200);
    expect(again.expires_in).toBeGreaterThan(7000);
    expect((await platformView()).apps[OA.appId]).toMatchObject({ accessTokensIssued: 1, calls: { stable_token: 2 } });
  });

  it('is kept apart from /cgi-bin/token: a plain token does not replace it', async () => {
    const stable = String((await stableToken()).access_token);
    await plainToken();
    await plainToken();
    await sleep(5 * 60_000 * TIME_SCALE + 50);
    expect(await getticket(stable)).toMatchObject({ errcode: 0 });
    expect((await stableToken()).access_token).toBe(stable);
  });

  it('force_refresh revokes the current token at once', async () => {
    const old = String((await stableToken()).access_token);
    const fresh = String((await stableToken(OA, { force_refresh: true })).access_token);
    expect(fresh).not.toBe(old);
    expectErrcode(await getticket(old), 40001);
    expect(await getticket(fresh)).toMatchObject({ errcode: 0 });
  });

  it.each([
    ['a wrong secret', { secret: 'wrong' }, 40125],
    ['an unknown appid', { appid: 'wx0000000000000bad' }, 40013],
    ['another grant_type', { grant_type: 'password' }, 40002],
    ['no appid', { appid: undefined }, 41002],
    ['no secret', { secret: undefined }, 41004],
    ['a force_refresh that is not a boolean', { force_refresh: 'yes' }, 47001],
  ])('answers %s with %i', async (_, override, errcode) => {
    expectErrcode(await stableToken(OA, override), errcode);
  });

  it('answers a body that is not JSON with 47001 and a GET with 43002', async () => {
    expectErrcode((await post('/cgi-bin/stable_token', '{"appid":')).json, 47001);
    expectErrcode(await get('/cgi-bin/stable_token', { appid: OA.appId, secret: OA.secret, grant_type: 'client_credential' }), 43002);
  });
});

describe('jsapi_ticket: GET /cgi-bin/ticket/getticket', () => {
  it("issues a ticket for the access_token's app, visible on GET /__sim/platform", async () => {
    const token = String((await stableToken(MP)).access_token);
    const answer = await getticket(token);
    expect(answer).toEqual({ errcode: 0, errmsg: 'ok', ticket: expect.stringMatching(/^[A-Za-z0-9_-]{80,}$/), expires_in: 7200 });
    const view = await platformView();
    expect(view.apps[MP.appId]).toMatchObject({ jsapiTicket: answer.ticket, ticketsIssued: 1, calls: { getticket: 1 } });
    expect(view.apps[OA.appId]).toMatchObject({ jsapiTicket: null, ticketsIssued: 0 });
  });

  it.each([
    ['no access_token', '', 'jsapi', 41001],
    ['a malformed access_token', 'not a token!', 'jsapi', 40014],
    ['an access_token WeChat never issued', `12_${'A'.repeat(128)}`, 'jsapi', 40001],
  ])('answers %s with %i', async (_, token, type, errcode) => {
    expectErrcode(await getticket(token, type), errcode);
  });

  it('answers a type other than jsapi with 40097', async () => {
    const token = String((await stableToken()).access_token);
    expectErrcode(await getticket(token, 'card'), 40097);
    expect((await platformView()).apps[OA.appId]?.ticketsIssued).toBe(0);
  });

  it('answers an expired access_token with 42001', async () => {
    // 7200 s of WeChat time are 720 ms on this emulator.
    const fast = await startEmulator({ ...TEST_MERCHANT, apps: APPS, timeScale: 0.0001, log: () => {} });
    try {
      const query = (path: string, params: Record<string, string>) =>
        fetch(`${fast.url}${path}?${new URLSearchParams(params)}`).then((response) => response.json() as Promise<Json>);
      const token = String(
        (await query('/cgi-bin/token', { grant_type: 'client_credential', appid: OA.appId, secret: OA.secret })).access_token,
      );
      expect(await query('/cgi-bin/ticket/getticket', { access_token: token, type: 'jsapi' })).toMatchObject({ errcode: 0 });
      await sleep(800);
      expectErrcode(await query('/cgi-bin/ticket/getticket', { access_token: token, type: 'jsapi' }), 42001);
    } finally {
      await fast.close();
    }
  });
});

describe('control: POST /__sim/login', () => {
  it('defaults to the first app and a fresh openid, and takes a given openid', async () => {
    const first = await post('/__sim/login', {});
    expect(first.json).toEqual({
      code: expect.stringMatching(/^[A-Za-z0-9]{32}$/),
      openid: expect.any(String),
      appId: OA.appId,
      kind: 'officialaccount',
    });
    expect((await login()).openid).not.toBe(first.json.openid);
    const chosen = await login({ openid: 'oChosen_payer_0000000000001' });
    expect(chosen.openid).toBe('oChosen_payer_0000000000001');
    expect(await oauth2(chosen.code)).toMatchObject({ openid: 'oChosen_payer_0000000000001' });
  });

  it("keeps openids per app: one app's openid cannot log in under another", async () => {
    const { openid } = await login({ appId: OA.appId });
    const refused = await post('/__sim/login', { appId: MP.appId, openid });
    expect(refused.status).toBe(409);
    expect(refused.json.error).toMatchObject({ code: 'OPENID_OF_ANOTHER_APP' });
  });

  it.each([
    [{ appId: 'wx0000000000000bad' }, 404],
    [{ openid: 'has spaces' }, 400],
    [{ openid: 42 }, 400],
    [{ snapshotUser: 'yes' }, 400],
    [{ user: 'x' }, 400],
    ['[1]', 400],
  ])('refuses %j with %i', async (body, status) => {
    const refused = await post('/__sim/login', body);
    expect(refused.status).toBe(status);
    expect(refused.json.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
  });

  it('takes POST only, and GET /__sim/platform takes GET only', async () => {
    expect((await fetch(`${emulator.url}/__sim/login`)).status).toBe(405);
    expect((await post('/__sim/platform', {})).status).toBe(405);
  });
});

describe('control: faults and reset', () => {
  it('platformErrors answers the next calls of an endpoint with the given errcodes, once each', async () => {
    const set = await post('/__sim/faults', { platformErrors: { getticket: [40001], stable_token: [-1, 45009] } });
    expect(set.status).toBe(200);
    expect(set.json.platformErrors).toMatchObject({ getticket: [40001], stable_token: [-1, 45009], token: [] });
    expectErrcode(await stableToken(), -1);
    expectErrcode(await stableToken(), 45009);
    const token = String((await stableToken()).access_token);
    expectErrcode(await getticket(token), 40001);
    expect(await getticket(token)).toMatchObject({ errcode: 0 });
    expect((await platformView()).apps[OA.appId]).toMatchObject({ ticketsIssued: 1, calls: { getticket: 2, stable_token: 3 } });
  });

  it('answers platformErrors only to a request that set them', async () => {
    expect((await post('/__sim/faults', {})).json).not.toHaveProperty('platformErrors');
  });

  it.each([
    [{ platformErrors: { refund: [40001] } }],
    [{ platformErrors: { getticket: 40001 } }],
    [{ platformErrors: { getticket: [0] } }],
    [{ platformErrors: { getticket: [1.5] } }],
    [{ platformErrors: [40001] }],
    [{ platformErrors: { getticket: [40001] }, delayMs: -1 }],
  ])('refuses %j and changes nothing', async (body) => {
    const refused = await post('/__sim/faults', body);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'INVALID_FAULT' });
    const token = String((await stableToken()).access_token);
    expect(await getticket(token)).toMatchObject({ errcode: 0 });
  });

  it('delayMs delays platform answers too', async () => {
    await post('/__sim/faults', { delayMs: 200 });
    const started = performance.now();
    await stableToken();
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    await post('/__sim/faults', { delayMs: 0 });
  });

  it('POST /__sim/reset forgets codes, tokens, tickets, counts and injected errors', async () => {
    const { code } = await login({ appId: MP.appId });
    const token = String((await stableToken()).access_token);
    await getticket(token);
    await post('/__sim/faults', { platformErrors: { token: [-1] } });
    await post('/__sim/reset', {});
    expectErrcode(await jscode2session(code), 40029);
    expectErrcode(await getticket(token), 40001);
    expect(await plainToken()).toHaveProperty('access_token');
    const view = await platformView();
    expect(view.apps[OA.appId]).toMatchObject({ accessTokensIssued: 1, ticketsIssued: 0, jsapiTicket: null });
  });
});

describe('what the emulator logs', () => {
  it('never a secret, a code, a session_key, an access_token or a ticket', async () => {
    logged.length = 0;
    const { code } = await login({ appId: MP.appId });
    const session = await jscode2session(code);
    const secrets = [MP.secret, OA.secret, code, String(session.session_key)];
    for (const app of [OA, MP]) {
      const token = String((await stableToken(app)).access_token);
      secrets.push(token, String((await getticket(token)).ticket), String((await plainToken(app)).access_token));
    }
    expect(logged.length).toBeGreaterThan(5);
    const text = JSON.stringify(logged);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });
});

describe('apps given to the emulator', () => {
  it('defaults to the merchant app (official account, local secret) and the local mini-program', async () => {
    const defaults = await startEmulator({ ...TEST_MERCHANT, log: () => {} });
    try {
      const view = (await (await fetch(`${defaults.url}/__sim/platform`)).json()) as Json;
      expect(view.apps).toEqual({
        [TEST_MERCHANT.appId]: expect.objectContaining({ kind: 'officialaccount', accessTokensIssued: 0 }),
        [TEST_MINIPROGRAM.appId]: expect.objectContaining({ kind: 'miniprogram' }),
      });
      const query = new URLSearchParams({ grant_type: 'client_credential', appid: TEST_MERCHANT.appId, secret: TEST_APP_SECRET });
      expect(await (await fetch(`${defaults.url}/cgi-bin/token?${query}`)).json()).toHaveProperty('access_token');
    } finally {
      await defaults.close();
    }
  });

  it.each([[[]], [[OA, OA]], [[{ ...OA, kind: 'desktop' }]], [[{ ...OA, secret: '' }]], [[{ ...OA, appId: 'wx has spaces' }]]])(
    'refuses %j',
    async (apps) => {
      await expect(startEmulator({ ...TEST_MERCHANT, apps: apps as EmulatorApp[], log: () => {} })).rejects.toThrow(/apps/);
    },
  );
});

describe('clock rules, on a controlled clock', () => {
  const start = Date.UTC(2026, 0, 1);
  let now = start;
  const platform = new PlatformEmulator({ apps: APPS, timeScale: 1, log: () => {}, now: () => now });
  const call = (method: string, url: string, body?: Json) =>
    platform.answer(method, url, Buffer.from(body ? JSON.stringify(body) : ''))?.body as Json;
  const stable = (extra: Json = {}) =>
    call('POST', '/cgi-bin/stable_token', { grant_type: 'client_credential', appid: OA.appId, secret: OA.secret, ...extra });
  const ticketWith = (token: unknown) => call('GET', `/cgi-bin/ticket/getticket?access_token=${String(token)}&type=jsapi`);

  beforeEach(() => {
    platform.reset();
    now = start;
  });

  it('stable_token: a new token in the last 5 minutes, the old one working to its end', () => {
    const first = stable().access_token;
    now += (7200 - 301) * 1000;
    expect(stable()).toEqual({ access_token: first, expires_in: 301 });
    now += 2000;
    const renewed = stable();
    expect(renewed).toEqual({ access_token: expect.any(String), expires_in: 7200 });
    expect(renewed.access_token).not.toBe(first);
    expect(ticketWith(first)).toMatchObject({ errcode: 0 });
    now += 299_000;
    expectErrcode(ticketWith(first), 42001);
    expect(ticketWith(renewed.access_token)).toMatchObject({ errcode: 0 });
  });

  it('stable_token force_refresh: not again within 30 s, at most 20 a day', () => {
    let token = stable().access_token;
    for (let i = 0; i < 20; i++) {
      now += 30_000;
      const next = stable({ force_refresh: true }).access_token;
      expect(next).not.toBe(token);
      token = next;
      // Within 30 s a force_refresh does not refresh.
      now += 29_000;
      expect(stable({ force_refresh: true }).access_token).toBe(token);
      now -= 29_000;
    }
    now += 30_000;
    expectErrcode(stable({ force_refresh: true }), 45009);
    now += 24 * 60 * 60_000;
    expect(stable({ force_refresh: true }).access_token).not.toBe(token);
  });

  it('/cgi-bin/token: 2,000 a day', () => {
    const query = `/cgi-bin/token?grant_type=client_credential&appid=${OA.appId}&secret=${OA.secret}`;
    for (let i = 0; i < 2000; i++) expect(call('GET', query)).toHaveProperty('access_token');
    expectErrcode(call('GET', query), 45009);
    now += 24 * 60 * 60_000;
    expect(call('GET', query)).toHaveProperty('access_token');
  });

  it('a code works until just before 5 minutes', () => {
    const issued = platform.answer('POST', '/__sim/login', Buffer.from(JSON.stringify({ appId: MP.appId })))?.body as Json;
    now += 5 * 60_000 - 1;
    const query = `/sns/jscode2session?appid=${MP.appId}&secret=${MP.secret}&js_code=${String(issued.code)}&grant_type=authorization_code`;
    expect(call('GET', query)).toHaveProperty('openid');
  });

  it('leaves paths that are not its own to the rest of the emulator', () => {
    expect(platform.answer('GET', '/pay/orderquery', Buffer.alloc(0))).toBeUndefined();
    expect(platform.answer('POST', '/__sim/pay', Buffer.alloc(0))).toBeUndefined();
  });
});
