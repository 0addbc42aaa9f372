import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../../dev/emulator/server';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { TEST_APP_SECRET, TEST_MINIPROGRAM } from '../../../dev/emulator/test-apps';
import { createDocumentClient } from '../../../lib/store/dynamo';
import { TokenCache, TokenCacheError, type TokenCacheOptions } from '../../../lib/identity/token-cache';
import { TokenStore, TokenStoreError } from '../../../lib/identity/token-store';
import { jssdkConfig, jssdkSignature } from '../../../lib/wechat/jssdk';
import { WechatApiError } from '../../../lib/wechat/errors';
import { createPlatformClient } from '../../../lib/wechat/platform-client';
import { createOrdersTable, startDynalite } from '../../support/dynalite';

/**
 * The access_token / jsapi_ticket cache on dynalite with the emulator: containers are separately
 * built caches (each its own DynamoDB and HTTP clients), as separate Lambda containers would be.
 */

const APP: string = TEST_MERCHANT.appId;
const MINI = TEST_MINIPROGRAM.appId;
const SECRETS: Record<string, string> = { [APP]: TEST_APP_SECRET, [MINI]: TEST_MINIPROGRAM.secret };
const PAGE = 'https://pay.example.com/checkout?sku=咖啡&n=1#/pay';

interface AppView {
  accessTokensIssued: number;
  ticketsIssued: number;
  jsapiTicket: string | null;
  calls: { token: number; stable_token: number; getticket: number };
}

let db: { endpoint: string; close(): Promise<void> };
let emulator: RunningEmulator;
let table: string;
/** Every log entry of every container, and every value they handed out: no value may be logged. */
const logged: Array<{ event: string; fields: Record<string, unknown> }> = [];
const values = new Set<string>();

beforeAll(async () => {
  db = await startDynalite();
  emulator = await startEmulator({ ...TEST_MERCHANT, log: () => {} });
});
beforeEach(async () => {
  table = `tokens-${randomUUID().slice(0, 8)}`;
  await createOrdersTable(db.endpoint, table);
  await fetch(`${emulator.url}/__sim/reset`, { method: 'POST', body: '{}' });
});
afterAll(async () => {
  await emulator.close();
  await db.close();
});

function container(options: Partial<TokenCacheOptions> = {}): TokenCache {
  return new TokenCache({
    store: new TokenStore(createDocumentClient(db.endpoint), table),
    platform: createPlatformClient({ baseUrl: emulator.url, timeoutMs: 5000 }),
    secretFor: (appId) => SECRETS[appId] ?? '',
    log: (event, fields) => void logged.push({ event, fields }),
    pollMs: 20,
    ...options,
  });
}

function containers(count: number, options: Partial<TokenCacheOptions> = {}): TokenCache[] {
  return Array.from({ length: count }, () => container(options));
}

async function platform(appId = APP): Promise<AppView> {
  const view = (await (await fetch(`${emulator.url}/__sim/platform`)).json()) as { apps: Record<string, AppView> };
  const app = view.apps[appId];
  if (!app) throw new Error(`no app ${appId} on the emulator`);
  return app;
}

async function faults(body: unknown): Promise<void> {
  await fetch(`${emulator.url}/__sim/faults`, { method: 'POST', body: JSON.stringify(body) });
}

/** What GET /auth/jssdk-config will do: get the ticket, sign the page. */
async function configFor(cache: TokenCache, appId = APP) {
  const ticket = await cache.jsapiTicket(appId);
  values.add(ticket.value);
  return jssdkConfig({ appId, jsapiTicket: ticket.value, url: PAGE });
}

async function accessTokenOf(cache: TokenCache, appId = APP): Promise<string> {
  const token = await cache.accessToken(appId);
  values.add(token.value);
  return token.value;
}

describe('one fetch for every container', () => {
  it('50 concurrent JS-SDK configs from 5 containers: one access_token and one jsapi_ticket fetched', async () => {
    const five = containers(5);
    const configs = await Promise.all(Array.from({ length: 50 }, (_, i) => configFor(five[i % 5] as TokenCache)));
    const view = await platform();
    expect(view).toMatchObject({ accessTokensIssued: 1, ticketsIssued: 1, calls: { token: 0, stable_token: 1, getticket: 1 } });
    const ticket = view.jsapiTicket ?? '';
    for (const config of configs) {
      expect(config.signature).toBe(
        jssdkSignature({ jsapiTicket: ticket, nonceStr: config.nonceStr, timestamp: config.timestamp, url: PAGE }),
      );
    }
  });

  it('reuses the shared values: 5 more containers fetch nothing', async () => {
    await configFor(container());
    const before = await platform();
    await Promise.all(containers(5).flatMap((cache) => [configFor(cache), configFor(cache), accessTokenOf(cache)]));
    expect(await platform()).toEqual(before);
  });

  it('keeps apps apart: each app its own token and ticket, fetched once', async () => {
    const five = containers(5);
    await Promise.all(Array.from({ length: 20 }, (_, i) => configFor(five[i % 5] as TokenCache, i % 2 === 0 ? APP : MINI)));
    for (const appId of [APP, MINI]) {
      expect(await platform(appId)).toMatchObject({ accessTokensIssued: 1, ticketsIssued: 1, calls: { stable_token: 1, getticket: 1 } });
    }
    const [one] = five;
    expect(await accessTokenOf(one as TokenCache, APP)).not.toBe(await accessTokenOf(one as TokenCache, MINI));
  });

  it('source "token" fetches from /cgi-bin/token instead', async () => {
    const five = containers(5, { source: 'token' });
    await Promise.all(five.map((cache) => accessTokenOf(cache)));
    expect(await platform()).toMatchObject({ accessTokensIssued: 1, calls: { token: 1, stable_token: 0 } });
  });
});

describe('WeChat refusing a token', () => {
  it('an emulated 40001 from getticket causes exactly one access_token refresh', async () => {
    await faults({ platformErrors: { getticket: [40001] } });
    const five = containers(5);
    const configs = await Promise.all(Array.from({ length: 20 }, (_, i) => configFor(five[i % 5] as TokenCache)));
    expect(configs).toHaveLength(20);
    // The first getticket was refused; the token was refreshed once (stable_token answers the same
    // token, WeChat still holding it valid) and the second getticket worked.
    expect(await platform()).toMatchObject({ ticketsIssued: 1, calls: { stable_token: 2, getticket: 2 } });
  });

  it('20 callers in 5 containers refused the same revoked token: one refresh, and every call then works', async () => {
    const five = containers(5);
    const old = await Promise.all(five.map((cache) => accessTokenOf(cache)));
    expect(new Set(old).size).toBe(1);
    // Another server force-refreshes: WeChat now answers 40001 to the token every container holds.
    const other = createPlatformClient({ baseUrl: emulator.url });
    await other.stableAccessToken({ appId: APP, secret: TEST_APP_SECRET }, { forceRefresh: true });
    const before = await platform();
    const platformClient = createPlatformClient({ baseUrl: emulator.url });
    const tickets = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (five[i % 5] as TokenCache).withAccessToken(APP, (token) => platformClient.jsapiTicket(token))),
    );
    expect(tickets).toHaveLength(20);
    const after = await platform();
    expect(after.calls.stable_token - before.calls.stable_token).toBe(1);
    expect(after.calls.getticket - before.calls.getticket).toBe(40);
    expect(await accessTokenOf(five[0] as TokenCache)).not.toBe(old[0]);
  });

  it('a late report of an already refreshed version refreshes nothing', async () => {
    const [a, b] = containers(2) as [TokenCache, TokenCache];
    const first = await a.accessToken(APP);
    await a.invalidate('access_token', APP, first);
    await b.accessToken(APP);
    const before = await platform();
    await a.invalidate('access_token', APP, first);
    await b.invalidate('access_token', APP, first);
    await Promise.all([a.accessToken(APP), b.accessToken(APP), container().accessToken(APP)]);
    expect((await platform()).calls.stable_token).toBe(before.calls.stable_token);
    expect(before.calls.stable_token).toBe(2);
  });

  it('a refusal that is not about the token is not retried', async () => {
    const cache = container();
    let calls = 0;
    const refused = cache.withAccessToken(APP, async () => {
      calls += 1;
      throw new WechatApiError('WeChat x answered errcode 45009', { code: 'ERRCODE', endpoint: 'x', errcode: 45009 });
    });
    await expect(refused).rejects.toMatchObject({ errcode: 45009 });
    expect(calls).toBe(1);
  });
});

describe('the lease', () => {
  it('a container that died holding the lease blocks the others only until its deadline', async () => {
    const store = new TokenStore(createDocumentClient(db.endpoint), table);
    const leaseUntil = Date.now() + 400;
    expect(await store.takeLease('access_token', APP, 'dead-container', Date.now(), leaseUntil)).toBe(true);
    const five = containers(5);
    const started = Date.now();
    const tokens = await Promise.all(five.map((cache) => accessTokenOf(cache)));
    const elapsed = Date.now() - started;
    expect(new Set(tokens).size).toBe(1);
    expect(Date.now()).toBeGreaterThanOrEqual(leaseUntil);
    expect(elapsed).toBeLessThan(400 + 2000);
    expect(await platform()).toMatchObject({ accessTokensIssued: 1, calls: { stable_token: 1 } });
  });

  it('while another container refreshes, a value due for refresh but still valid is served at once', async () => {
    let clock = Date.now();
    const [a, b] = containers(2, { now: () => clock }) as [TokenCache, TokenCache];
    const first = await accessTokenOf(a);
    clock += (7200 - 200) * 1000; // inside the last 5 minutes
    const store = new TokenStore(createDocumentClient(db.endpoint), table);
    expect(await store.takeLease('access_token', APP, 'busy-container', clock, clock + 60_000)).toBe(true);
    const before = await platform();
    const started = Date.now();
    expect(await accessTokenOf(b)).toBe(first);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await platform()).toEqual(before);
  });

  it('waiting for a refresh that never ends gives up after waitMs', async () => {
    const store = new TokenStore(createDocumentClient(db.endpoint), table);
    expect(await store.takeLease('jsapi_ticket', APP, 'slow-container', Date.now(), Date.now() + 60_000)).toBe(true);
    const started = Date.now();
    const error = await container({ waitMs: 300 })
      .jsapiTicket(APP)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TokenCacheError);
    expect(error).toMatchObject({ code: 'WAIT_TIMEOUT', retryable: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect((await platform()).calls.getticket).toBe(0);
  });

  it('a failed fetch gives the lease back: the next container fetches at once', async () => {
    await faults({ platformErrors: { stable_token: [-1] } });
    const failing = await container({ leaseMs: 60_000 })
      .accessToken(APP)
      .catch((caught: unknown) => caught);
    expect(failing).toMatchObject({ code: 'ERRCODE', errcode: -1, retryable: true });
    const started = Date.now();
    await accessTokenOf(container({ leaseMs: 60_000 }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await platform()).toMatchObject({ accessTokensIssued: 1, calls: { stable_token: 2 } });
  });

  it('a DynamoDB failure is a TokenStoreError, with its cause', async () => {
    const missing = container({ store: new TokenStore(createDocumentClient(db.endpoint), 'no-such-table') });
    const error = await missing.accessToken(APP).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TokenStoreError);
    expect((error as Error).cause).toBeDefined();
    expect((await platform()).calls.stable_token).toBe(0);
  });

  it('a holder that outlived its lease cannot put back an older value', async () => {
    const store = new TokenStore(createDocumentClient(db.endpoint), table);
    const later = { value: 'later', version: 'v2', fetchedAt: 2000, expiresAt: 9_000_000, refreshAt: 8_000_000 };
    expect(await store.save('access_token', APP, later)).toBe(true);
    expect(await store.save('access_token', APP, { ...later, value: 'older', version: 'v1', fetchedAt: 1000 })).toBe(false);
    expect(await store.read('access_token', APP)).toMatchObject({ value: 'later', version: 'v2', stale: false });
    expect(await store.markStale('access_token', APP, 'v1')).toBe(false);
    expect(await store.markStale('access_token', APP, 'v2')).toBe(true);
    expect(await store.read('access_token', APP)).toMatchObject({ stale: true });
  });
});

describe('refresh timing', () => {
  it('reuses a value until 5 minutes before it expires, then refreshes it once', async () => {
    let clock = Date.now();
    const five = containers(5, { now: () => clock });
    await Promise.all(five.map((cache) => accessTokenOf(cache)));
    clock += (7200 - 301) * 1000;
    await Promise.all(five.map((cache) => accessTokenOf(cache)));
    expect((await platform()).calls.stable_token).toBe(1);
    clock += 2000;
    await Promise.all(five.flatMap((cache) => [accessTokenOf(cache), accessTokenOf(cache)]));
    expect((await platform()).calls.stable_token).toBe(2);
  });

  it('refreshes a short-lived value at half its life', async () => {
    let clock = Date.now();
    const cache = container({ now: () => clock, refreshEarlyMs: 60 * 60_000 * 3 });
    await accessTokenOf(cache);
    clock += 3599 * 1000;
    await accessTokenOf(cache);
    expect((await platform()).calls.stable_token).toBe(1);
    clock += 2000;
    await accessTokenOf(cache);
    expect((await platform()).calls.stable_token).toBe(2);
  });
});

describe('what the cache logs', () => {
  it('events, never a value', async () => {
    // The other tests above have run their containers with this log.
    await configFor(container());
    expect(logged.map((entry) => entry.event)).toEqual(expect.arrayContaining(['wechat_token_refreshed']));
    const text = JSON.stringify(logged);
    expect(values.size).toBeGreaterThan(3);
    for (const value of values) expect(text).not.toContain(value);
    expect(text).not.toContain(TEST_APP_SECRET);
  });
});
