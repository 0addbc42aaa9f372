/**
 * Payers' login (POST /auth/miniprogram, POST /auth/officialaccount) and their session tokens on
 * POST /orders, through the real handlers, with the emulator standing in for WeChat's platform API
 * (its `POST /__sim/login` for `wx.login()` and the web authorization).
 */
import { describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import type { OrdersContext } from '../../lib/orders/context';
import { order, putProduct } from '../support/api';
import { bearer, login, sessionToken, simLogin } from '../support/identity';
import type { TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep } from '../support/eventually';

const MINI = TEST_MINIPROGRAM.appId;
const OFFICIAL = TEST_MERCHANT.appId;

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started), { reset: true });

const item = (sku = 'login-coffee') => ({ items: [{ sku, quantity: 1 }] });

async function platformCalls(appId: string): Promise<Record<string, number>> {
  const view = (await (await fetch(`${stack.emulator.url}/__sim/platform`)).json()) as {
    apps: Record<string, { calls: Record<string, number> }>;
  };
  return view.apps[appId]!.calls;
}

describe('POST /auth/miniprogram', () => {
  it("exchanges wx.login()'s code for a 2-hour session token; the session_key is neither returned nor kept", async () => {
    const user = await simLogin(stack.emulator.url, { appId: MINI });
    const answer = await login('miniprogram', { code: user.code });
    expect(answer.status, answer.raw).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['expiresAt', 'token']);
    expect(answer.headers['cache-control']).toBe('no-store');
    const expiresIn = Date.parse(answer.body.expiresAt as string) - Date.now();
    expect(expiresIn).toBeGreaterThan(7190_000);
    expect(expiresIn).toBeLessThanOrEqual(7200_000);
    // Bound to the mini-program; the openid is not readable in it.
    const token = answer.body.token as string;
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'wechat-session+jwt' });
    expect(decodeJwt(token).aud).toBe(MINI);
    expect(token).not.toContain(user.openid);
    expect(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).not.toContain(user.openid);
    expect(answer.raw).not.toMatch(/session_key|openid/i);
    expect(await platformCalls(MINI)).toMatchObject({ jscode2session: 1 });
  });

  it("takes the app from the body, and refuses an app of another kind or not the merchant's (400 naming appId)", async () => {
    const user = await simLogin(stack.emulator.url, { appId: MINI });
    expect((await login('miniprogram', { code: user.code, appId: MINI })).status).toBe(200);
    const official = await login('miniprogram', { code: user.code, appId: OFFICIAL });
    expect(official.status).toBe(400);
    expect(official.body.error).toMatchObject({
      field: 'appId',
      message: `app ${OFFICIAL} is an official account; POST /auth/miniprogram (wx.login()) needs a mini-program`,
    });
    expect((await login('miniprogram', { code: user.code, appId: 'wx0000000000000bad' })).body.error).toMatchObject({ field: 'appId' });
  });

  it.each([
    ['no body', '', 'the request has no body'],
    ['no code', {}, 'code is required'],
    ['a code that is no code', { code: 'a code' }, 'code must be the code WeChat gave the page'],
    ['an unknown field', { code: 'abc', openid: 'oSomebody' }, 'unknown field "openid"'],
  ])('%s is a 400 naming what is wrong, and WeChat is not called', async (_name, body, message) => {
    const answer = await login('miniprogram', body);
    expect(answer.status).toBe(400);
    expect(answer.body.error?.message).toContain(message);
    expect(await platformCalls(MINI)).toMatchObject({ jscode2session: 0 });
  });

  it("a used code is a 401 carrying WeChat's errcode 40163", async () => {
    const { code } = await simLogin(stack.emulator.url, { appId: MINI });
    expect((await login('miniprogram', { code })).status).toBe(200);
    const again = await login('miniprogram', { code });
    expect(again.status).toBe(401);
    expect(again.body.error).toMatchObject({ code: 'INVALID_CODE' });
    expect(again.body.error?.message).toMatch(/errcode 40163/);
    expect(again.raw).not.toContain(code);
  });

  it('an expired code (past 5 minutes, scaled) and a code of another app are 401s with errcode 40029', async () => {
    const expired = await simLogin(stack.emulator.url, { appId: MINI });
    await sleep(350);
    expect((await login('miniprogram', { code: expired.code })).body.error?.message).toMatch(/errcode 40029/);
    const ofOfficialAccount = await simLogin(stack.emulator.url, { appId: OFFICIAL });
    const answer = await login('miniprogram', { code: ofOfficialAccount.code });
    expect(answer.status).toBe(401);
    expect(answer.body.error?.message).toMatch(/errcode 40029/);
  });

  it.each([
    [[-1], 502, 'WECHAT_UNAVAILABLE'],
    [[40125], 502, 'WECHAT_REFUSED'],
    [[40164], 502, 'WECHAT_REFUSED'],
    [[45011], 429, 'TOO_MANY_LOGINS'],
    [[40226], 403, 'HIGH_RISK_USER'],
  ])('WeChat answering errcode %j: %i %s, with the errcode in the message', async (errcodes, status, code) => {
    await stack.sim.faults({ platformErrors: { jscode2session: errcodes } });
    const { code: loginCode } = await simLogin(stack.emulator.url, { appId: MINI });
    const answer = await login('miniprogram', { code: loginCode });
    expect(answer.status).toBe(status);
    expect(answer.body.error).toMatchObject({ code });
    expect(answer.body.error?.message).toContain(`errcode ${errcodes[0]}`);
  });

  it('WeChat unreachable or too slow is a 502', async () => {
    const { identityContext } = await import('../../lib/identity-runtime');
    const identity = identityContext();
    const { createPlatformClient } = await import('../../lib/wechat/platform-client');
    const saved = identity.platform;
    try {
      Object.assign(identity, { platform: createPlatformClient({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 500 }) });
      const { code } = await simLogin(stack.emulator.url, { appId: MINI });
      const unreachable = await login('miniprogram', { code });
      expect(unreachable.status).toBe(502);
      expect(unreachable.body.error).toMatchObject({ code: 'WECHAT_UNAVAILABLE' });
      Object.assign(identity, { platform: createPlatformClient({ baseUrl: stack.emulator.url, timeoutMs: 100 }) });
      await stack.sim.faults({ delayMs: 300 });
      const slow = await login('miniprogram', { code });
      expect(slow.status).toBe(502);
      expect(slow.body.error?.message).toMatch(/did not answer within 100 ms/);
    } finally {
      await stack.sim.faults({ delayMs: 0 });
      Object.assign(identity, { platform: saved });
    }
  });
});

describe('POST /auth/officialaccount', () => {
  it('exchanges the web authorization code for a session token of the official account', async () => {
    const user = await simLogin(stack.emulator.url, { appId: OFFICIAL });
    const answer = await login('officialaccount', { code: user.code });
    expect(answer.status, answer.raw).toBe(200);
    expect(decodeJwt(answer.body.token as string).aud).toBe(OFFICIAL);
    expect(await platformCalls(OFFICIAL)).toMatchObject({ oauth2_access_token: 1 });
  });

  it("gives a snapshot page's virtual user no token: 403 SNAPSHOT_USER saying why", async () => {
    const user = await simLogin(stack.emulator.url, { appId: OFFICIAL, snapshotUser: true });
    const answer = await login('officialaccount', { code: user.code });
    expect(answer.status).toBe(403);
    expect(answer.body.error).toMatchObject({ code: 'SNAPSHOT_USER' });
    expect(answer.body.error?.message).toMatch(/is_snapshotuser/);
    expect(answer.body.token).toBeUndefined();
  });

  it("an expired web authorization code is a 401 with errcode 42003; a mini-program's app id a 400", async () => {
    const user = await simLogin(stack.emulator.url, { appId: OFFICIAL });
    await sleep(350);
    const answer = await login('officialaccount', { code: user.code });
    expect(answer.status).toBe(401);
    expect(answer.body.error?.message).toMatch(/errcode 42003/);
    expect((await login('officialaccount', { code: user.code, appId: MINI })).status).toBe(400);
  });
});

describe('POST /orders with a session token', () => {
  it('a mini-program payer: wx.login(), /auth/miniprogram, then a JSAPI order under the mini-program for their openid', async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const user = await simLogin(stack.emulator.url, { appId: MINI });
    const { token } = (await login('miniprogram', { code: user.code })).body;
    const created = await order({ tradeType: 'JSAPI', ...item() }, { authorization: bearer(token as string) });
    expect(created.status, created.raw).toBe(201);
    expect(created.body.pay).toMatchObject({ appId: MINI, signType: 'HMAC-SHA256' });
    expect(created.raw).not.toContain(user.openid);
    const stored = await ctx.store.get(created.body.outTradeNo);
    expect(stored).toMatchObject({ appId: MINI, unifiedOrder: { openid: user.openid, trade_type: 'JSAPI' } });
    expect((await stack.sim.order(created.body.outTradeNo)) as unknown as { appid: string }).toMatchObject({
      appid: MINI,
      openid: user.openid,
    });
  });

  it("an official account's payer gets pay parameters of the official account", async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const user = await simLogin(stack.emulator.url, { appId: OFFICIAL });
    const { token } = (await login('officialaccount', { code: user.code })).body;
    const created = await order({ tradeType: 'JSAPI', ...item() }, { authorization: bearer(token as string) });
    expect(created.body.pay.appId).toBe(OFFICIAL);
    expect((await ctx.store.get(created.body.outTradeNo))?.unifiedOrder.openid).toBe(user.openid);
  });

  it("the token's app and openid win over the body's openid; a body appId must be the token's", async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const token = await sessionToken(MINI, 'oTokenPayer');
    const created = await order({ tradeType: 'JSAPI', openid: 'oBodyPayer', appId: MINI, ...item() }, { authorization: bearer(token) });
    expect(created.status).toBe(201);
    expect((await ctx.store.get(created.body.outTradeNo))?.unifiedOrder.openid).toBe('oTokenPayer');
    const foreign = await order({ tradeType: 'JSAPI', appId: OFFICIAL, ...item() }, { authorization: bearer(token) });
    expect(foreign.status).toBe(401);
    expect(foreign.body.error).toMatchObject({ code: 'INVALID_SESSION', message: 'the session token belongs to another app' });
  });

  it("idempotency keys are the payer's own: the same key from another payer, or anonymously, is another order", async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const body = { tradeType: 'JSAPI', openid: 'oAnonymousBody', idempotencyKey: 'login-key-1', ...item() };
    const one = { authorization: bearer(await sessionToken(MINI, 'oPayerA')) };
    const first = await order(body, one);
    const again = await order(body, one);
    const other = await order(body, { authorization: bearer(await sessionToken(MINI, 'oPayerB')) });
    const sameOpenidOtherApp = await order(body, { authorization: bearer(await sessionToken(OFFICIAL, 'oPayerA')) });
    const anonymous = await order(body);
    expect([first.status, again.status, other.status, sameOpenidOtherApp.status, anonymous.status]).toEqual([201, 200, 201, 201, 201]);
    expect(again.body.outTradeNo).toBe(first.body.outTradeNo);
    expect(new Set([first, other, sameOpenidOtherApp, anonymous].map((answer) => answer.body.outTradeNo)).size).toBe(4);
  });

  it('without a token, openid (and appId) in the body still work', async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const created = await order({ tradeType: 'JSAPI', openid: 'oFromTheBody', appId: MINI, ...item() });
    expect(created.status).toBe(201);
    expect(await ctx.store.get(created.body.outTradeNo)).toMatchObject({ appId: MINI, unifiedOrder: { openid: 'oFromTheBody' } });
  });

  it("a NATIVE order with a token is made under the token's app, without the openid", async () => {
    await putProduct('login-coffee', { name: 'Coffee', priceFen: 1500 });
    const created = await order(
      { tradeType: 'NATIVE', ...item() },
      { authorization: bearer(await sessionToken(OFFICIAL, 'oNativePayer')) },
    );
    expect(created.status).toBe(201);
    const stored = await ctx.store.get(created.body.outTradeNo);
    expect(stored?.appId).toBe(OFFICIAL);
    expect(stored?.unifiedOrder.openid).toBeUndefined();
  });

  it('an expired token is a 401 saying to log in again', async () => {
    const token = await sessionToken(MINI, 'oLatePayer', { now: () => Date.now() - 2 * 3600_000 - 10_000 });
    const answer = await order({ tradeType: 'JSAPI', ...item() }, { authorization: bearer(token) });
    expect(answer.status).toBe(401);
    expect(answer.body.error.message).toBe('the session token has expired: log in again');
  });
});
