/**
 * GET /auth/jssdk-config through the real handler: the `wx.config` signature WeChat checks, the page
 * origins it is given for, and the access_token / jsapi_ticket behind it fetched once for every
 * container (each container here a separately built handler: its own modules, identity context,
 * DynamoDB and HTTP clients, as a separate Lambda container would have).
 */
import { createHash, randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { TEST_MINIPROGRAM } from '../../dev/emulator/test-apps';
import type { ApiEvent } from '../../lib/http/event';
import { TokenStore } from '../../lib/identity/token-store';
import { createDocumentClient } from '../../lib/store/dynamo';
import { jssdkSignature } from '../../lib/wechat/jssdk';
import { createOrdersTable } from '../support/dynalite';
import { jssdkConfigRequest, jssdkQuery } from '../support/identity';
import { TEST_PAGE_ORIGIN, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

const OFFICIAL = TEST_MERCHANT.appId;
const PAGE = `${TEST_PAGE_ORIGIN}/checkout?sku=咖啡&n=1#/pay`;

let stack: TestStack;
useTestStack((started) => ({ stack } = started), { reset: true });

type Handler = (event: ApiEvent) => Promise<{ statusCode?: number; body?: string }>;

interface PlatformApp {
  accessTokensIssued: number;
  ticketsIssued: number;
  jsapiTicket: string | null;
  calls: { token: number; stable_token: number; getticket: number };
}

async function platform(appId = OFFICIAL): Promise<PlatformApp> {
  const view = (await (await fetch(`${stack.emulator.url}/__sim/platform`)).json()) as { apps: Record<string, PlatformApp> };
  return view.apps[appId]!;
}

/** A container: the handler module loaded afresh, with nothing shared but DynamoDB and WeChat. */
async function container(): Promise<Handler> {
  vi.resetModules();
  const { handler } = await import('../../functions/jssdkConfig');
  // Its identity context and token cache are built (their lazily loaded modules loaded) before
  // another container's modules are, so that no two containers share a module instance.
  await (await import('../../lib/identity-runtime')).identityContext().tokens();
  return handler as Handler;
}

/** `count` containers, built one after the other (loading modules at once would share them). */
async function containers(count: number): Promise<Handler[]> {
  const built: Handler[] = [];
  for (let i = 0; i < count; i += 1) built.push(await container());
  return built;
}

/** Each test starts from an empty token cache: a table of its own. */
beforeEach(async () => {
  const table = `jssdk-${randomUUID().slice(0, 8)}`;
  await createOrdersTable(stack.dynamoEndpoint, table);
  process.env.ORDERS_TABLE = table;
  process.env.CORS_ORIGINS = TEST_PAGE_ORIGIN;
});

const sha1 = (text: string) => createHash('sha1').update(text, 'utf8').digest('hex');

describe('GET /auth/jssdk-config', () => {
  it("answers wx.config's appId, timestamp, nonceStr and the signature WeChat computes over the ticket and the page URL without its #", async () => {
    const answer = await jssdkConfigRequest(jssdkQuery(PAGE), await container());
    expect(answer.status, answer.raw).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['appId', 'nonceStr', 'signature', 'timestamp']);
    expect(answer.headers['cache-control']).toBe('no-store');
    const { appId, timestamp, nonceStr, signature } = answer.body;
    expect(appId).toBe(OFFICIAL);
    expect(Math.abs((timestamp as number) - Date.now() / 1000)).toBeLessThan(5);
    expect(nonceStr).toMatch(/^[A-Za-z0-9]{16}$/);
    const ticket = (await platform()).jsapiTicket as string;
    const unhashed = `jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${TEST_PAGE_ORIGIN}/checkout?sku=咖啡&n=1`;
    expect(signature).toBe(sha1(unhashed));
    // Fetched with the stable token, as WeChat recommends.
    expect((await platform()).calls).toMatchObject({ token: 0, stable_token: 1, getticket: 1 });
  });

  it("signs with WeChat's official example ticket exactly as WeChat's own example does", async () => {
    // WeChat's JS-SDK documentation, appendix 1 (design notes §14): this ticket, nonce, time and URL
    // sign to 0f9de62fce790f9a083d5c99e95740ceb90c27ed.
    const official = {
      jsapiTicket: 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg',
      nonceStr: 'Wm3WZYTPz0wzccnW',
      timestamp: 1414587457,
      url: 'http://mp.weixin.qq.com?params=value',
    };
    expect(jssdkSignature(official)).toBe('0f9de62fce790f9a083d5c99e95740ceb90c27ed');
    // The route, with that ticket in the shared cache, signs what WeChat's rule gives for its own nonce and time.
    const store = new TokenStore(createDocumentClient(stack.dynamoEndpoint), process.env.ORDERS_TABLE as string);
    const now = Date.now();
    await store.save('jsapi_ticket', OFFICIAL, {
      value: official.jsapiTicket,
      version: 'official',
      fetchedAt: now,
      expiresAt: now + 7_200_000,
      refreshAt: now + 6_900_000,
    });
    process.env.CORS_ORIGINS = 'http://mp.weixin.qq.com';
    const answer = await jssdkConfigRequest(jssdkQuery(official.url), await container());
    expect(answer.status, answer.raw).toBe(200);
    const { nonceStr, timestamp, signature } = answer.body;
    expect(signature).toBe(jssdkSignature({ ...official, nonceStr: nonceStr as string, timestamp: timestamp as number }));
    expect(signature).toBe(sha1(`jsapi_ticket=${official.jsapiTicket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${official.url}`));
    // The cached ticket served: WeChat was not asked.
    expect((await platform()).calls).toMatchObject({ stable_token: 0, getticket: 0 });
  });

  it('50 concurrent requests through 5 containers cause exactly one access_token and one jsapi_ticket fetch', async () => {
    const five = await containers(5);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => jssdkConfigRequest(jssdkQuery(`${PAGE}&i=${i}`), five[i % 5])));
    expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
    const view = await platform();
    expect(view).toMatchObject({ accessTokensIssued: 1, ticketsIssued: 1, calls: { token: 0, stable_token: 1, getticket: 1 } });
    for (const [i, { body }] of answers.entries()) {
      expect(body.signature).toBe(
        jssdkSignature({
          jsapiTicket: view.jsapiTicket as string,
          nonceStr: body.nonceStr as string,
          timestamp: body.timestamp as number,
          url: `${PAGE}&i=${i}`,
        }),
      );
    }
    // And later requests, in any container, are served from memory or DynamoDB.
    await Promise.all(five.map((handler) => jssdkConfigRequest(jssdkQuery(PAGE), handler)));
    expect((await platform()).calls).toMatchObject({ stable_token: 1, getticket: 1 });
  });

  it('WeChat refusing the access_token (40001) while the ticket is fetched causes exactly one refresh, however many containers wait', async () => {
    await stack.sim.faults({ platformErrors: { getticket: [40001] } });
    const five = await containers(5);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => jssdkConfigRequest(jssdkQuery(PAGE), five[i % 5])));
    expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
    // One stable_token for the first fetch and exactly one more after the 40001; the ticket once.
    expect((await platform()).calls).toMatchObject({ token: 0, stable_token: 2, getticket: 2 });
    expect((await platform()).ticketsIssued).toBe(1);
  });

  it("takes an official account named by appId, and refuses a mini-program or an app not the merchant's (400 naming appId)", async () => {
    const handler = await container();
    expect((await jssdkConfigRequest(jssdkQuery(PAGE, OFFICIAL), handler)).body.appId).toBe(OFFICIAL);
    const mini = await jssdkConfigRequest(jssdkQuery(PAGE, TEST_MINIPROGRAM.appId), handler);
    expect(mini.status).toBe(400);
    expect(mini.body.error).toMatchObject({
      field: 'appId',
      message: `app ${TEST_MINIPROGRAM.appId} is a mini-program; the JS-SDK (wx.config) needs an official account`,
    });
    expect((await jssdkConfigRequest(jssdkQuery(PAGE, 'wx0000000000000bad'), handler)).status).toBe(400);
  });

  it.each([
    [
      'a page of another origin',
      jssdkQuery('https://evil.example/pay'),
      403,
      'PAGE_NOT_ALLOWED',
      "the page's origin https://evil.example is not one of this stage's corsOrigins",
    ],
    [
      'the allowed host on another scheme',
      jssdkQuery(`http://${new URL(TEST_PAGE_ORIGIN).host}/pay`),
      403,
      'PAGE_NOT_ALLOWED',
      'http://shop.example.com',
    ],
    [
      'the allowed host on another port',
      jssdkQuery(`${TEST_PAGE_ORIGIN}:8443/pay`),
      403,
      'PAGE_NOT_ALLOWED',
      'https://shop.example.com:8443',
    ],
    [
      'a look-alike host',
      jssdkQuery(`${TEST_PAGE_ORIGIN}.evil.example/pay`),
      403,
      'PAGE_NOT_ALLOWED',
      'https://shop.example.com.evil.example',
    ],
    [
      'credentials that hide the host',
      jssdkQuery(`https://shop.example.com@evil.example/pay`),
      400,
      'INVALID_REQUEST',
      'user name or password',
    ],
    [
      'a javascript: URL',
      jssdkQuery('javascript:alert(document.domain)//https://shop.example.com/'),
      400,
      'INVALID_REQUEST',
      'absolute http(s) URL',
    ],
    ['a data: URL', jssdkQuery('data:text/html,<script>alert(1)</script>'), 400, 'INVALID_REQUEST', 'absolute http(s) URL'],
    ['a relative URL', jssdkQuery('/checkout'), 400, 'INVALID_REQUEST', 'absolute http(s) URL'],
    ['no url', '', 400, 'INVALID_REQUEST', 'the page URL is required'],
    ['an unencoded page URL', `url=${TEST_PAGE_ORIGIN}/pay?a=1&b=2`, 400, 'INVALID_REQUEST', 'unknown query parameter "b"'],
    ['two urls', `${jssdkQuery(PAGE)}&${jssdkQuery(PAGE)}`, 400, 'INVALID_REQUEST', 'given twice'],
    ['a URL with whitespace', jssdkQuery(`${TEST_PAGE_ORIGIN}/a b`), 400, 'INVALID_REQUEST', 'whitespace'],
  ])('%s: %i %s naming it, and WeChat is not called', async (_name, query, status, code, message) => {
    const answer = await jssdkConfigRequest(query, await container());
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    expect(answer.body.error?.message).toContain(message);
    expect((await platform()).calls).toMatchObject({ stable_token: 0, getticket: 0 });
  });

  it('on a stage that lists no origins every page is refused, saying so', async () => {
    process.env.CORS_ORIGINS = '';
    const answer = await jssdkConfigRequest(jssdkQuery(PAGE), await container());
    expect(answer.status).toBe(403);
    expect(answer.body.error?.message).toBe(
      `the page's origin ${TEST_PAGE_ORIGIN} is not allowed: this stage lists no page origins (corsOrigins)`,
    );
  });

  it('on the local stack (corsOrigins *) any http(s) page is signed', async () => {
    process.env.CORS_ORIGINS = '*';
    expect((await jssdkConfigRequest(jssdkQuery('http://127.0.0.1:3020/'), await container())).status).toBe(200);
  });

  it('WeChat unreachable is a 502; an AppSecret WeChat refuses is a 502 naming errcode 40125', async () => {
    await stack.sim.faults({ platformErrors: { stable_token: [40125] } });
    const refused = await jssdkConfigRequest(jssdkQuery(PAGE), await container());
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatchObject({ code: 'WECHAT_REFUSED' });
    expect(refused.body.error?.message).toContain('errcode 40125');
    const saved = process.env.WECHAT_API_BASE_URL;
    process.env.WECHAT_API_BASE_URL = 'http://127.0.0.1:9';
    try {
      const unreachable = await jssdkConfigRequest(jssdkQuery(PAGE), await container());
      expect(unreachable.status).toBe(502);
      expect(unreachable.body.error?.code).toBe('WECHAT_UNAVAILABLE');
    } finally {
      process.env.WECHAT_API_BASE_URL = saved;
    }
  });
});
