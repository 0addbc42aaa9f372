import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, listen, readBody, type Listening } from '../../../dev/emulator/http-server';
import { productsOnSale, serveDemo, type RunningDemo } from '../../../dev/demo/server';

/**
 * The demo page's server against a stand-in API, emulator and events service: it lists the products
 * on sale with the merchant's token, forwards only the frontend's routes (the browser's Authorization
 * to POST /orders alone), and never lets the token reach the browser.
 */

const TOKEN = 'demo-test-merchant-token-7f3a9c0e';
const CATALOG = {
  products: [
    { sku: 'croissant', name: 'Croissant', priceFen: 1200, active: true, updatedAt: '2026-11-23T01:00:00.000Z' },
    { sku: 'latte-large', name: 'Latte (large)', priceFen: 2800, active: true, updatedAt: '2026-11-23T01:00:00.000Z' },
    { sku: 'retired-mug', name: 'Mug', priceFen: 5000, active: false, updatedAt: '2026-11-23T01:00:00.000Z' },
  ],
};
const MINI_PROGRAM = 'wx00000000000000a2';
const SESSION = { token: 'payer-session-token-from-the-api', expiresAt: '2026-11-23T03:00:00.000Z' };
const LOGIN = { code: 'code-of-wx-login-0001', openid: 'oMiniProgramPayer00000000001', appId: MINI_PROGRAM, kind: 'miniprogram' };

interface Seen {
  /** Which stand-in was called. */
  server: 'api' | 'emulator' | 'events';
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let api: Listening;
let emulator: Listening;
let events: Listening;
let seen: Seen[] = [];
/** What the stand-in API answers to GET /merchant/products with the right token. */
let catalogAnswer: { status: number; body: string } = { status: 200, body: JSON.stringify(CATALOG) };
let demo: RunningDemo;

type Answer = { status: number; body: string };

/** A stand-in server that records every call it gets in `seen`. */
function standIn(server: Seen['server'], answer: (path: string, request: IncomingMessage) => Answer): Promise<Listening> {
  return listen(
    createServer((request, response) => {
      void (async () => {
        const path = new URL(request.url ?? '/', 'http://stand-in').pathname;
        const body = (await readBody(request))?.toString('utf8') ?? '';
        seen.push({ server, method: request.method ?? 'GET', path, headers: request.headers, body });
        const { status, body: text } = answer(path, request);
        response.writeHead(status, { 'content-type': 'application/json' }).end(text);
      })();
    }),
  );
}

function answerAsTheApi(path: string, request: IncomingMessage): Answer {
  const send = (status: number, body: unknown): Answer => ({ status, body: typeof body === 'string' ? body : JSON.stringify(body) });
  if (path.startsWith('/merchant/')) {
    if (request.headers.authorization !== `Bearer ${TOKEN}`) {
      return send(401, { error: { code: 'UNAUTHORIZED', message: 'the merchant API token is not valid' } });
    }
    if (path === '/merchant/products' && request.method === 'GET') return send(catalogAnswer.status, catalogAnswer.body);
    return send(404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
  }
  if (path === '/orders' && request.method === 'POST') {
    return send(201, { outTradeNo: '20261123000001', status: 'PENDING', totalFee: 2800, description: 'Latte (large)' });
  }
  if (path === '/auth/miniprogram' && request.method === 'POST') return send(200, SESSION);
  return send(404, { error: { code: 'NOT_FOUND', message: 'no such order' } });
}

beforeAll(async () => {
  api = await standIn('api', answerAsTheApi);
  emulator = await standIn('emulator', (path) =>
    path === '/__sim/login' ? { status: 200, body: JSON.stringify(LOGIN) } : { status: 404, body: '{}' },
  );
  events = await standIn('events', () => ({ status: 200, body: JSON.stringify({ events: [] }) }));
  demo = await serveDemo({
    apiUrl: api.origin,
    emulatorUrl: emulator.origin,
    eventsUrl: events.origin,
    merchantToken: TOKEN,
    miniProgramAppId: MINI_PROGRAM,
  });
});

afterAll(async () => {
  await demo?.close();
  await api?.close();
  await emulator?.close();
  await events?.close();
});

beforeEach(() => {
  seen = [];
  catalogAnswer = { status: 200, body: JSON.stringify(CATALOG) };
});

function demoUrl(path: string): string {
  return new URL(path, demo.url).href;
}

describe("the demo server (the merchant's web server)", () => {
  it('answers GET /products with the active products only, read with the merchant token', async () => {
    const response = await fetch(demoUrl('/products'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      products: [
        { sku: 'croissant', name: 'Croissant', priceFen: 1200 },
        { sku: 'latte-large', name: 'Latte (large)', priceFen: 2800 },
      ],
    });
    expect(seen.map((call) => `${call.method} ${call.path}`)).toEqual(['GET /merchant/products']);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('never serves the token: not in the page, its script, its style, its config or the product list', async () => {
    for (const path of ['/', '/index.html', '/app.js', '/style.css', '/config.js', '/products']) {
      const response = await fetch(demoUrl(path));
      expect(response.status, path).toBe(200);
      const text = await response.text();
      expect(text, path).not.toContain(TOKEN);
      expect(JSON.stringify([...response.headers]), path).not.toContain(TOKEN);
    }
  });

  it("answers a catalog the API will not give with a 502 that repeats nothing of the API's answer", async () => {
    catalogAnswer = { status: 401, body: JSON.stringify({ error: { code: 'UNAUTHORIZED', message: `secret ${TOKEN}` } }) };
    const refused = await fetch(demoUrl('/products'));
    expect(refused.status).toBe(502);
    const text = await refused.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'CATALOG_UNAVAILABLE', message: "the API's catalog answered HTTP 401" } });
    expect(text).not.toContain(TOKEN);

    for (const body of [
      'not json',
      '{"products":"none"}',
      JSON.stringify({ products: [{ sku: 'x', name: 'X', priceFen: 1.5, active: true }] }),
    ]) {
      catalogAnswer = { status: 200, body };
      const malformed = await fetch(demoUrl('/products'));
      expect(malformed.status, body).toBe(502);
      expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe('CATALOG_UNAVAILABLE');
    }
  });

  it('answers 502 when the API does not answer at all', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const lonely = await serveDemo({ apiUrl: nowhere, emulatorUrl: 'http://127.0.0.1:3010', merchantToken: TOKEN });
    try {
      const response = await fetch(new URL('/products', lonely.url));
      expect(response.status).toBe(502);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'API_UNREACHABLE' } });
      expect(text).not.toContain(TOKEN);
    } finally {
      await lonely.close();
    }
  });

  it('takes only GET (and HEAD) on /products', async () => {
    expect((await fetch(demoUrl('/products'), { method: 'POST', body: '{}' })).status).toBe(405);
    expect((await fetch(demoUrl('/products'), { method: 'HEAD' })).status).toBe(200);
  });

  it("forwards POST /orders with the browser's Authorization (a payer's session token), and no other", async () => {
    const order = { tradeType: 'JSAPI', items: [{ sku: 'latte-large', quantity: 1 }] };
    const created = await fetch(demoUrl('/orders'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SESSION.token}` },
      body: JSON.stringify(order),
    });
    expect(created.status).toBe(201);
    expect(seen.map((call) => `${call.server} ${call.method} ${call.path}`)).toEqual(['api POST /orders']);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${SESSION.token}`);
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual(order);

    // An anonymous page's order goes without any: never the merchant token in its place.
    seen = [];
    const anonymous = await fetch(demoUrl('/orders'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tradeType: 'NATIVE', items: [{ sku: 'latte-large', quantity: 1 }] }),
    });
    expect(anonymous.status).toBe(201);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.authorization).toBeUndefined();
  });

  it('forwards the mini-program login: POST /__sim/login to the emulator and POST /auth/miniprogram to the API, answers unchanged', async () => {
    const login = await fetch(demoUrl('/__sim/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: MINI_PROGRAM }),
    });
    expect(login.status).toBe(200);
    expect(await login.json()).toEqual(LOGIN);
    const session = await fetch(demoUrl('/auth/miniprogram'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: LOGIN.code, appId: MINI_PROGRAM }),
    });
    expect(session.status).toBe(200);
    expect(session.headers.get('cache-control')).toBe('no-store');
    expect(await session.json()).toEqual(SESSION);
    expect(seen.map((call) => `${call.server} ${call.method} ${call.path}`)).toEqual([
      'emulator POST /__sim/login',
      'api POST /auth/miniprogram',
    ]);
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ appId: MINI_PROGRAM });
    expect(JSON.parse(seen[1]?.body ?? '')).toEqual({ code: LOGIN.code, appId: MINI_PROGRAM });

    for (const path of ['/__sim/login', '/auth/miniprogram']) {
      for (const method of ['GET', 'PUT']) {
        const response = await fetch(demoUrl(path), { method, body: method === 'GET' ? undefined : '{}' });
        expect(response.status, `${method} ${path}`).toBe(405);
      }
    }
    // Nothing else of the emulator's control API is reachable through the page's server.
    for (const path of ['/__sim/pay', '/__sim/reset', '/__sim/faults', '/__sim/platform', '/__sim/orders/20261123000001']) {
      expect((await fetch(demoUrl(path), { method: 'POST', body: '{}' })).status, path).toBe(404);
    }
    expect(seen).toHaveLength(2);
  });

  it("keeps the browser's Authorization to POST /orders: no other forwarded route gets it", async () => {
    const authorization = `Bearer ${SESSION.token}`;
    const json = { authorization, 'content-type': 'application/json' };
    await fetch(demoUrl('/__sim/login'), { method: 'POST', headers: json, body: JSON.stringify({ appId: MINI_PROGRAM }) });
    await fetch(demoUrl('/auth/miniprogram'), { method: 'POST', headers: json, body: JSON.stringify({ code: LOGIN.code }) });
    await fetch(demoUrl('/orders/20261123000001'), { headers: { authorization } });
    await fetch(demoUrl('/events?outTradeNo=20261123000001'), { headers: { authorization } });
    await fetch(demoUrl('/products'), { headers: { authorization } });
    expect(seen.map((call) => `${call.server} ${call.method} ${call.path}`)).toEqual([
      'emulator POST /__sim/login',
      'api POST /auth/miniprogram',
      'api GET /orders/20261123000001',
      'events GET /events',
      'api GET /merchant/products',
    ]);
    for (const call of seen.slice(0, 4)) expect(call.headers.authorization, call.path).toBeUndefined();
    // The catalog is read with the merchant's own token, never the browser's.
    expect(seen[4]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('tells the page which mini-program to log in to, and offers none when it has none', async () => {
    const config = await (await fetch(demoUrl('/config.js'))).text();
    expect(config).toContain(`"miniProgramAppId":"${MINI_PROGRAM}"`);
    const without = await serveDemo({ apiUrl: api.origin, emulatorUrl: emulator.origin, merchantToken: TOKEN });
    try {
      expect(await (await fetch(new URL('/config.js', without.url))).text()).toContain('"miniProgramAppId":null');
    } finally {
      await without.close();
    }
  });

  it('forwards nothing under /merchant/ and never the payment callback', async () => {
    for (const [method, path] of [
      ['GET', '/merchant/products'],
      ['POST', '/merchant/orders'],
      ['PUT', '/merchant/products/croissant'],
      ['POST', '/wechatpay/notify'],
    ]) {
      const response = await fetch(demoUrl(path as string), {
        method,
        headers: { authorization: `Bearer ${TOKEN}` },
        body: method === 'GET' ? undefined : '{}',
      });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    expect(seen).toEqual([]);
  });

  it('will not start without the merchant token', async () => {
    await expect(serveDemo({ apiUrl: api.origin, emulatorUrl: 'http://127.0.0.1:3010', merchantToken: '' })).rejects.toThrow(
      /merchant API token/,
    );
  });
});

describe('productsOnSale', () => {
  it("keeps the active products' sku, name and price, and refuses a list it cannot read", () => {
    expect(productsOnSale(CATALOG)).toEqual([
      { sku: 'croissant', name: 'Croissant', priceFen: 1200 },
      { sku: 'latte-large', name: 'Latte (large)', priceFen: 2800 },
    ]);
    expect(productsOnSale({ products: [] })).toEqual([]);
    expect(productsOnSale(undefined)).toBeUndefined();
    expect(productsOnSale({ products: [null] })).toBeUndefined();
    expect(productsOnSale({ products: [{ sku: 'a', name: 'A', priceFen: 0, active: true }] })).toBeUndefined();
  });
});
