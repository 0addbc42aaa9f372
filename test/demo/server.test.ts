import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, listen, readBody, type Listening } from '../../emulator/http-server';
import { productsOnSale, serveDemo, type RunningDemo } from '../../demo/server';

/**
 * The demo page's server against a stand-in API: it lists the products on sale with the merchant's
 * token, forwards only the frontend's order routes, and never lets the token reach the browser.
 */

const TOKEN = 'demo-test-merchant-token-7f3a9c0e';
const CATALOG = {
  products: [
    { sku: 'croissant', name: 'Croissant', priceFen: 1200, active: true, updatedAt: '2026-11-23T01:00:00.000Z' },
    { sku: 'latte-large', name: 'Latte (large)', priceFen: 2800, active: true, updatedAt: '2026-11-23T01:00:00.000Z' },
    { sku: 'retired-mug', name: 'Mug', priceFen: 5000, active: false, updatedAt: '2026-11-23T01:00:00.000Z' },
  ],
};

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let api: Listening;
let seen: Seen[] = [];
/** What the stand-in API answers to GET /merchant/products with the right token. */
let catalogAnswer: { status: number; body: string } = { status: 200, body: JSON.stringify(CATALOG) };
let demo: RunningDemo;

beforeAll(async () => {
  const server = createServer((request, response) => {
    void (async () => {
      const path = new URL(request.url ?? '/', 'http://api').pathname;
      const body = (await readBody(request))?.toString('utf8') ?? '';
      seen.push({ method: request.method ?? 'GET', path, headers: request.headers, body });
      const send = (status: number, text: string) =>
        response.writeHead(status, { 'content-type': 'application/json' }).end(text);
      if (path.startsWith('/merchant/')) {
        if (request.headers.authorization !== `Bearer ${TOKEN}`) {
          send(401, JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'the merchant API token is not valid' } }));
        } else if (path === '/merchant/products' && request.method === 'GET') send(catalogAnswer.status, catalogAnswer.body);
        else send(404, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
      } else if (path === '/orders' && request.method === 'POST') {
        send(201, JSON.stringify({ outTradeNo: '20261123000001', status: 'PENDING', totalFee: 2800, description: 'Latte (large)' }));
      } else send(404, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such order' } }));
    })();
  });
  api = await listen(server);
  demo = await serveDemo({ apiUrl: api.origin, emulatorUrl: 'http://127.0.0.1:3010', merchantToken: TOKEN });
});

afterAll(async () => {
  await demo?.close();
  await api?.close();
});

beforeEach(() => {
  seen = [];
  catalogAnswer = { status: 200, body: JSON.stringify(CATALOG) };
});

function demoUrl(path: string): string {
  return new URL(path, demo.url).href;
}

describe('the demo server (the merchant\'s web server)', () => {
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

  it('answers a catalog the API will not give with a 502 that repeats nothing of the API\'s answer', async () => {
    catalogAnswer = { status: 401, body: JSON.stringify({ error: { code: 'UNAUTHORIZED', message: `secret ${TOKEN}` } }) };
    const refused = await fetch(demoUrl('/products'));
    expect(refused.status).toBe(502);
    const text = await refused.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'CATALOG_UNAVAILABLE', message: "the API's catalog answered HTTP 401" } });
    expect(text).not.toContain(TOKEN);

    for (const body of ['not json', '{"products":"none"}', JSON.stringify({ products: [{ sku: 'x', name: 'X', priceFen: 1.5, active: true }] })]) {
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

  it('forwards the frontend\'s order routes without any authorization, and nothing under /merchant/', async () => {
    const created = await fetch(demoUrl('/orders'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer from-the-browser' },
      body: JSON.stringify({ tradeType: 'NATIVE', items: [{ sku: 'latte-large', quantity: 1 }] }),
    });
    expect(created.status).toBe(201);
    expect(seen.map((call) => `${call.method} ${call.path}`)).toEqual(['POST /orders']);
    expect(seen[0]?.headers.authorization).toBeUndefined();
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ tradeType: 'NATIVE', items: [{ sku: 'latte-large', quantity: 1 }] });

    seen = [];
    for (const [method, path] of [['GET', '/merchant/products'], ['POST', '/merchant/orders'], ['PUT', '/merchant/products/croissant'], ['POST', '/wechatpay/notify']]) {
      const response = await fetch(demoUrl(path as string), { method, headers: { authorization: `Bearer ${TOKEN}` }, body: method === 'GET' ? undefined : '{}' });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    expect(seen).toEqual([]);
  });

  it('will not start without the merchant token', async () => {
    await expect(serveDemo({ apiUrl: api.origin, emulatorUrl: 'http://127.0.0.1:3010', merchantToken: '' })).rejects.toThrow(/merchant API token/);
  });
});

describe('productsOnSale', () => {
  it('keeps the active products\' sku, name and price, and refuses a list it cannot read', () => {
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
