import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../../dev/emulator/server';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { TEST_APP_SECRET, TEST_MINIPROGRAM } from '../../../dev/emulator/test-apps';
import { isBadCodeError, isStaleTokenError, WechatApiError } from '../../../lib/wechat/errors';
import { createPlatformClient, type AppCredentials, type PlatformClient } from '../../../lib/wechat/platform-client';

const OA: AppCredentials = { appId: TEST_MERCHANT.appId, secret: TEST_APP_SECRET };
const MP: AppCredentials = { appId: TEST_MINIPROGRAM.appId, secret: TEST_MINIPROGRAM.secret };
const TIME_SCALE = 0.001;

let emulator: RunningEmulator;
let client: PlatformClient;

beforeAll(async () => {
  emulator = await startEmulator({ ...TEST_MERCHANT, timeScale: TIME_SCALE, log: () => {} });
  client = createPlatformClient({ baseUrl: emulator.url, timeoutMs: 2000 });
});
beforeEach(async () => {
  await control('/__sim/reset', {});
});
afterAll(() => emulator.close());

async function control(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${emulator.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return (await response.json()) as Record<string, unknown>;
}

async function login(appId: string, extra: Record<string, unknown> = {}): Promise<{ code: string; openid: string }> {
  return (await control('/__sim/login', { appId, ...extra })) as { code: string; openid: string };
}

async function failure(promise: Promise<unknown>): Promise<WechatApiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(WechatApiError);
  return error as WechatApiError;
}

/** A fetch that answers what it is given and records what it was asked. */
function fakeFetch(answer: () => Response | Promise<Response>) {
  const requests: Array<{ url: string; init: RequestInit | undefined }> = [];
  const fetchImpl = (async (url: string | URL | Request, init?: RequestInit) => {
    requests.push({ url: String(url), init });
    return answer();
  }) as typeof fetch;
  return { fetchImpl, requests };
}

describe('against the emulator', () => {
  it('code2Session answers the openid (and unionid), never the session_key', async () => {
    const { code, openid } = await login(MP.appId, { unionid: 'oUnion_client_00000000000001' });
    const session = await client.code2Session(MP, code);
    expect(session).toEqual({ openid, unionid: 'oUnion_client_00000000000001' });
  });

  it('code2Session: a used code and an unknown code are bad codes (40163, 40029)', async () => {
    const { code } = await login(MP.appId);
    await client.code2Session(MP, code);
    const used = await failure(client.code2Session(MP, code));
    expect(used).toMatchObject({ code: 'ERRCODE', errcode: 40163, endpoint: 'jscode2session', retryable: false });
    expect(isBadCodeError(used)).toBe(true);
    const unknown = await failure(client.code2Session(MP, 'A'.repeat(32)));
    expect(unknown.errcode).toBe(40029);
    expect(unknown.message).toMatch(/^WeChat jscode2session answered errcode 40029: invalid code/);
  });

  it('webAuthorization answers the openid, the scope and whether it is a snapshot-page user', async () => {
    const user = await login(OA.appId);
    expect(await client.webAuthorization(OA, user.code)).toEqual({ openid: user.openid, scope: 'snsapi_base', snapshotUser: false });
    const snapshot = await login(OA.appId, { snapshotUser: true });
    expect(await client.webAuthorization(OA, snapshot.code)).toMatchObject({ snapshotUser: true });
  });

  it('webAuthorization: an expired code is a bad code (42003)', async () => {
    const { code } = await login(OA.appId);
    await new Promise((resolve) => setTimeout(resolve, 5 * 60_000 * TIME_SCALE + 50));
    const expired = await failure(client.webAuthorization(OA, code));
    expect(expired.errcode).toBe(42003);
    expect(isBadCodeError(expired)).toBe(true);
  });

  it('accessToken and stableAccessToken; a wrong secret answers 40125', async () => {
    const plain = await client.accessToken(OA);
    expect(plain).toEqual({ accessToken: expect.any(String), expiresIn: 7200 });
    const stable = await client.stableAccessToken(OA);
    expect((await client.stableAccessToken(OA)).accessToken).toBe(stable.accessToken);
    const forced = await client.stableAccessToken(OA, { forceRefresh: true });
    expect(forced.accessToken).not.toBe(stable.accessToken);
    const wrong = await failure(client.stableAccessToken({ ...OA, secret: 'not-the-secret' }));
    expect(wrong).toMatchObject({ errcode: 40125, endpoint: 'stable_token' });
    expect((await failure(client.accessToken({ ...OA, appId: 'wx0000000000000bad' }))).errcode).toBe(40013);
  });

  it('jsapiTicket answers the ticket; a revoked token is a stale token (40001)', async () => {
    const old = await client.stableAccessToken(OA);
    const ticket = await client.jsapiTicket(old.accessToken);
    expect(ticket).toEqual({ ticket: expect.any(String), expiresIn: 7200 });
    await client.stableAccessToken(OA, { forceRefresh: true });
    const stale = await failure(client.jsapiTicket(old.accessToken));
    expect(stale).toMatchObject({ errcode: 40001, endpoint: 'getticket' });
    expect(isStaleTokenError(stale)).toBe(true);
  });

  it('-1 (system busy) is retryable; an injected 40001 is stale', async () => {
    await control('/__sim/faults', { platformErrors: { stable_token: [-1], getticket: [40001] } });
    expect(await failure(client.stableAccessToken(OA))).toMatchObject({ errcode: -1, retryable: true });
    const { accessToken } = await client.stableAccessToken(OA);
    expect(isStaleTokenError(await failure(client.jsapiTicket(accessToken)))).toBe(true);
    expect((await client.jsapiTicket(accessToken)).ticket).toEqual(expect.any(String));
  });

  it('times out after timeoutMs (retryable), and names no secret', async () => {
    await control('/__sim/faults', { delayMs: 400 });
    try {
      const quick = createPlatformClient({ baseUrl: emulator.url, timeoutMs: 100 });
      const started = performance.now();
      const timedOut = await failure(quick.accessToken(OA));
      expect(performance.now() - started).toBeLessThan(390);
      expect(timedOut).toMatchObject({ code: 'TIMEOUT', retryable: true, endpoint: 'token' });
      expect(timedOut.message).not.toContain(OA.secret);
    } finally {
      await control('/__sim/faults', { delayMs: 0 });
    }
  });
});

describe('failures before or around WeChat', () => {
  it("names a network failure, retryable, without the URL's query", async () => {
    const closed = createPlatformClient({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 });
    const error = await failure(closed.code2Session(MP, 'A'.repeat(32)));
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', retryable: true });
    expect(error.message).toMatch(/could not be reached at http:\/\/127\.0\.0\.1:9/);
    expect(error.message).not.toContain(MP.secret);
    expect(error.cause).toBeDefined();
  });

  it.each([
    [502, true],
    [404, false],
  ])('HTTP %i is an HTTP_ERROR (retryable: %s)', async (status, retryable) => {
    const { fetchImpl } = fakeFetch(() => new Response('gateway', { status }));
    const error = await failure(createPlatformClient({ fetch: fetchImpl }).accessToken(OA));
    expect(error).toMatchObject({ code: 'HTTP_ERROR', retryable });
  });

  it.each([
    ['not JSON', '<html>busy</html>'],
    ['a JSON array', '[]'],
    ['a success without openid', '{"session_key":"x"}'],
    ['an openid of another shape', '{"openid":"a b","session_key":"x"}'],
    ['an errcode that is not a number', '{"errcode":"oops","errmsg":"x"}'],
    ['more than 64 KiB', `{"openid":"o1","pad":"${'x'.repeat(70_000)}"}`],
  ])('refuses an answer that is %s', async (_, body) => {
    const { fetchImpl } = fakeFetch(() => new Response(body, { status: 200 }));
    const error = await failure(createPlatformClient({ fetch: fetchImpl }).code2Session(MP, 'A'.repeat(32)));
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', retryable: false });
  });

  it.each([
    ['no access_token', '{"expires_in":7200}'],
    ['expires_in as text', '{"access_token":"t","expires_in":"7200"}'],
    ['expires_in of 0', '{"access_token":"t","expires_in":0}'],
  ])('refuses a token answer with %s', async (_, body) => {
    const { fetchImpl } = fakeFetch(() => new Response(body));
    expect((await failure(createPlatformClient({ fetch: fetchImpl }).stableAccessToken(OA))).code).toBe('INVALID_RESPONSE');
  });

  it('takes errcode 0 as success and errcode as a numeric string as an errcode', async () => {
    const ok = fakeFetch(() => new Response('{"errcode":0,"errmsg":"ok","ticket":"T1","expires_in":7200}'));
    expect(await createPlatformClient({ fetch: ok.fetchImpl }).jsapiTicket('token-1')).toEqual({ ticket: 'T1', expiresIn: 7200 });
    const text = fakeFetch(() => new Response('{"errcode":"42001","errmsg":"access_token expired"}'));
    expect((await failure(createPlatformClient({ fetch: text.fetchImpl }).jsapiTicket('token-1'))).errcode).toBe(42001);
  });

  it.each([
    ['an app id with a space', () => client.accessToken({ appId: 'wx 1', secret: 's' })],
    ['an empty secret', () => client.stableAccessToken({ appId: OA.appId, secret: '' })],
    ['a code with &', () => client.code2Session(MP, 'abc&secret=x')],
    ['an empty code', () => client.webAuthorization(OA, '')],
    ['an access_token with a space', () => client.jsapiTicket('a b')],
  ])('refuses %s before sending anything', async (_, run) => {
    expect((await failure(run())).code).toBe('INVALID_ARGUMENT');
  });

  it('sends the stable_token secret in the body, never in the URL', async () => {
    const { fetchImpl, requests } = fakeFetch(() => new Response('{"access_token":"t","expires_in":7200}'));
    await createPlatformClient({ fetch: fetchImpl, baseUrl: 'https://api.weixin.qq.com/' }).stableAccessToken(OA);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.url).toBe('https://api.weixin.qq.com/cgi-bin/stable_token');
    expect(requests[0]?.init?.method).toBe('POST');
    expect(JSON.parse(String(requests[0]?.init?.body))).toEqual({
      grant_type: 'client_credential',
      appid: OA.appId,
      secret: OA.secret,
      force_refresh: false,
    });
  });

  it('masks a secret, a code or a token that WeChat (or a proxy) echoes back', async () => {
    const code = 'C0de0000000000000000000000000001';
    const token = 'T0ken_000000000000000000000000000000001';
    const echo = (body: string) => fakeFetch(() => new Response(body)).fetchImpl;
    const errors = [
      await failure(
        createPlatformClient({ fetch: echo(`{"errcode":40029,"errmsg":"bad ${code} for ${MP.secret}"}`) }).code2Session(MP, code),
      ),
      await failure(createPlatformClient({ fetch: echo(`{"errcode":40001,"errmsg":"stale ${token}"}`) }).jsapiTicket(token)),
      await failure(
        createPlatformClient({ fetch: echo(`<html>GET /sns/jscode2session?secret=${MP.secret}&js_code=${code}</html>`) }).code2Session(
          MP,
          code,
        ),
      ),
      await failure(
        createPlatformClient({
          fetch: (async () => {
            throw new TypeError(`Failed to parse URL from https://api.weixin.qq.com/cgi-bin/token?secret=${OA.secret}`);
          }) as typeof fetch,
        }).accessToken(OA),
      ),
    ];
    for (const error of errors) {
      const seen = [
        error.message,
        error.errmsg ?? '',
        JSON.stringify(error),
        String(error.cause),
        (error.cause as Error | undefined)?.message ?? '',
      ].join('\n');
      for (const secret of [MP.secret, OA.secret, code, token]) expect(seen).not.toContain(secret);
    }
    expect(errors[0]?.errmsg).toBe('bad *** for ***');
  });

  it('refuses a baseUrl that is not a plain http(s) URL', () => {
    expect(() => createPlatformClient({ baseUrl: 'ftp://api.weixin.qq.com' })).toThrow(TypeError);
    expect(() => createPlatformClient({ baseUrl: 'https://api.weixin.qq.com?x=1' })).toThrow(TypeError);
    expect(() => createPlatformClient({ timeoutMs: 0 })).toThrow(TypeError);
  });
});
