import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { listen, readBody } from '../emulator/http-server';

/**
 * The demo checkout page (plain HTML and JavaScript, no build step) and a same-origin pass-through
 * to the API's frontend routes (`POST /orders`, `GET /orders/{outTradeNo}`, `POST /auth/miniprogram`)
 * and to the emulator's `POST /__sim/login`, which stands in for a mini-program's `wx.login()`. The
 * API allows browser calls only from the origins its stage lists (`corsOrigins` in serverless.yml;
 * the local stage allows any) and the emulator allows none; forwarding here lets the page work the
 * same against a stage that does not list the demo's origin.
 *
 * The browser's `Authorization` header (a payer's session token) goes to `POST /orders` alone, the
 * one forwarded route that takes it; every other call is forwarded without it.
 *
 * This server stands for the merchant's web server: it alone holds the merchant API token, and uses
 * it for one call, `GET /merchant/products`, to answer the page's `GET /products` with the products
 * on sale. Nothing under `/merchant/` is forwarded, and the token never goes into anything served.
 */

export interface DemoOptions {
  /** 0 picks any free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The API the page's orders go to, e.g. http://127.0.0.1:3000. */
  apiUrl: string;
  /** The WeChat Pay emulator, for its scan page and its simulated login, e.g. http://127.0.0.1:3010. */
  emulatorUrl: string;
  /**
   * A mini-program of the merchant's that the emulator knows, e.g. wx00000000000000a2: the page's
   * mini-program mode logs its payer in to it. Without one the page offers no mini-program mode.
   */
  miniProgramAppId?: string;
  /**
   * The local events (the EventBridge stand-in), e.g. http://127.0.0.1:3030: the page's
   * `GET /events?outTradeNo=` is forwarded there, so it can show its order's events.
   */
  eventsUrl?: string;
  /** The merchant API token, for `GET /merchant/products`; never sent to the browser. */
  merchantToken: string;
}

/** What the page is told of a product on sale: nothing the merchant's server alone should see. */
export interface ProductOnSale {
  sku: string;
  name: string;
  priceFen: number;
}

/** One event as the page lists it (dev/demo/public/app.js eventRow): nothing of the event's detail but the order's status. */
export interface EventShown {
  id: string;
  'detail-type': string;
  time: string;
  status?: string;
}

export interface RunningDemo {
  url: string;
  port: number;
  /** Stops the server; calling it again returns the same promise. */
  close(): Promise<void>;
}

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** Only the frontend's routes are forwarded; the payment callback is WeChat Pay's business alone. */
const ORDER_PATH = /^\/orders\/[0-9A-Za-z_-]{1,64}$/;
const OUT_TRADE_NO = /^[0-9A-Za-z_-]{1,64}$/;
/** The emulator's stand-in for `wx.login()`: `{ appId }` → `{ code, openid }`. */
const SIMULATED_LOGIN_PATH = '/__sim/login';
const MAX_BODY_BYTES = 64 * 1024;
const API_TIMEOUT_MS = 30_000;

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Starts the demo page's server. */
export async function serveDemo(options: DemoOptions): Promise<RunningDemo> {
  const apiUrl = withoutTrailingSlash(new URL(options.apiUrl).href);
  const emulatorUrl = withoutTrailingSlash(new URL(options.emulatorUrl).href);
  const eventsUrl = options.eventsUrl === undefined ? undefined : withoutTrailingSlash(new URL(options.eventsUrl).href);
  const { merchantToken } = options;
  if (!merchantToken) throw new Error('serveDemo needs the merchant API token (merchantToken) to list the products');
  // apiBase '' means "this origin": the page calls /orders here and they are forwarded to apiUrl.
  const miniProgramAppId = options.miniProgramAppId ?? null;
  const config = `window.DEMO_CONFIG = ${JSON.stringify({ apiBase: '', apiUrl, emulatorUrl, miniProgramAppId })};\n`;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://demo').pathname;
    const method = request.method ?? 'GET';
    if (path === '/orders' && method === 'POST') {
      // A mini-program payer's order: the API takes its app and openid from the session token.
      await forward(request, response, `${apiUrl}${path}`, { authorization: true });
      return;
    }
    if (ORDER_PATH.test(path) && method === 'GET') {
      await forward(request, response, `${apiUrl}${path}`);
      return;
    }
    if (path === '/orders' || ORDER_PATH.test(path)) {
      sendText(response, 405, 'text/plain; charset=utf-8', `${method} is not allowed here`);
      return;
    }
    if (path === '/auth/miniprogram' || path === SIMULATED_LOGIN_PATH) {
      if (method !== 'POST') sendText(response, 405, 'text/plain; charset=utf-8', `${method} is not allowed here`);
      else await forward(request, response, `${path === SIMULATED_LOGIN_PATH ? emulatorUrl : apiUrl}${path}`);
      return;
    }
    if (path === '/events') {
      if (method !== 'GET' && method !== 'HEAD') sendText(response, 405, 'text/plain; charset=utf-8', `${method} is not allowed here`);
      else await sendEvents(request, response, eventsUrl);
      return;
    }
    if (path === '/products') {
      if (method !== 'GET' && method !== 'HEAD') sendText(response, 405, 'text/plain; charset=utf-8', `${method} is not allowed here`);
      else await sendProducts(response, apiUrl, merchantToken);
      return;
    }
    const asset = STATIC_FILES[path];
    if (!asset && path !== '/config.js') {
      sendText(response, 404, 'text/plain; charset=utf-8', 'not found');
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendText(response, 405, 'text/plain; charset=utf-8', `${method} is not allowed here`);
      return;
    }
    if (!asset) sendText(response, 200, 'text/javascript; charset=utf-8', config);
    else sendText(response, 200, asset.type, await readFile(`${PUBLIC_DIR}${asset.file}`));
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      console.error(JSON.stringify({ source: 'demo', event: 'internal_error', message: String(error) }));
      if (!response.headersSent) sendText(response, 500, 'text/plain; charset=utf-8', 'demo server error');
      else response.destroy();
    });
  });
  const listening = await listen(server, options.port, options.host);
  return { url: `${listening.origin}/`, port: listening.port, close: listening.close };
}

/**
 * `GET /events?outTradeNo=`: the events of one order, from the local events service, reduced to what
 * the page shows (`{ events: [{ id, detail-type, time, status }] }`). An event's detail carries the
 * payer's openid, the order's attach and items and any review flag: a browser that knows an order
 * number must never read them, and merchants copy this server. Only one order's: without an
 * outTradeNo the page gets a 400, never every order's events.
 */
async function sendEvents(request: IncomingMessage, response: ServerResponse, eventsUrl: string | undefined): Promise<void> {
  const outTradeNo = new URL(request.url ?? '/', 'http://demo').searchParams.get('outTradeNo') ?? '';
  if (!OUT_TRADE_NO.test(outTradeNo)) {
    sendJson(response, 400, {
      error: { code: 'INVALID_REQUEST', message: 'outTradeNo must be 1 to 64 characters of [0-9A-Za-z_-]', field: 'outTradeNo' },
    });
    return;
  }
  if (!eventsUrl) {
    sendJson(response, 503, { error: { code: 'EVENTS_UNAVAILABLE', message: 'this demo server was started without an events service' } });
    return;
  }
  const target = `${eventsUrl}/events?outTradeNo=${encodeURIComponent(outTradeNo)}`;
  let answer: Response;
  try {
    answer = await fetch(target, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
  } catch (error) {
    const message = `the events service at ${new URL(target).origin} did not answer: ${error instanceof Error ? error.message : String(error)}`;
    sendJson(response, 502, { error: { code: 'EVENTS_UNREACHABLE', message } });
    return;
  }
  const events = answer.status === 200 ? eventsShown(await answer.json().catch(() => undefined)) : undefined;
  if (!events) {
    sendJson(response, 502, {
      error: {
        code: 'EVENTS_UNAVAILABLE',
        message: `the events service answered ${answer.status === 200 ? 'something that is not an event list' : `HTTP ${answer.status}`}`,
      },
    });
    return;
  }
  sendJson(response, 200, { events });
}

/** What the page shows of each event: its type, time, id and the order's status; undefined if malformed. */
export function eventsShown(body: unknown): EventShown[] | undefined {
  const list = (body as { events?: unknown } | undefined)?.events;
  if (!Array.isArray(list)) return undefined;
  const shown: EventShown[] = [];
  for (const entry of list as unknown[]) {
    const event = (entry ?? {}) as Record<string, unknown>;
    const { id, time } = event;
    const type = event['detail-type'];
    const status = ((event.detail ?? {}) as Record<string, unknown>).status;
    if (typeof id !== 'string' || typeof type !== 'string' || typeof time !== 'string') return undefined;
    shown.push({ id, 'detail-type': type, time, ...(typeof status === 'string' ? { status } : {}) });
  }
  return shown;
}

/**
 * `GET /products`: the catalog's active products, read from `GET /merchant/products` with the
 * merchant's token, as `{ products: [{ sku, name, priceFen }] }`. A failure is a 502 that says what
 * went wrong without repeating the API's answer (nothing of the merchant's side reaches the page).
 */
async function sendProducts(response: ServerResponse, apiUrl: string, merchantToken: string): Promise<void> {
  const target = `${apiUrl}/merchant/products`;
  let answer: Response;
  try {
    answer = await fetch(target, {
      headers: { authorization: `Bearer ${merchantToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
  } catch (error) {
    const message = `the API at ${new URL(target).origin} did not answer: ${error instanceof Error ? error.message : String(error)}`;
    sendJson(response, 502, { error: { code: 'API_UNREACHABLE', message } });
    return;
  }
  const body: unknown = await answer.json().catch(() => undefined);
  const products = answer.status === 200 ? productsOnSale(body) : undefined;
  if (!products) {
    const why = answer.status === 200 ? 'an answer that is not a product list' : `HTTP ${answer.status}`;
    console.error(JSON.stringify({ source: 'demo', event: 'catalog_unavailable', status: answer.status }));
    sendJson(response, 502, { error: { code: 'CATALOG_UNAVAILABLE', message: `the API's catalog answered ${why}` } });
    return;
  }
  sendJson(response, 200, { products });
}

/** The active products of a `GET /merchant/products` answer, reduced to sku, name and price; undefined if malformed. */
export function productsOnSale(body: unknown): ProductOnSale[] | undefined {
  const list = (body as { products?: unknown } | undefined)?.products;
  if (!Array.isArray(list)) return undefined;
  const onSale: ProductOnSale[] = [];
  for (const entry of list as unknown[]) {
    const { sku, name, priceFen, active } = (entry ?? {}) as Record<string, unknown>;
    if (typeof sku !== 'string' || typeof name !== 'string' || !Number.isInteger(priceFen) || (priceFen as number) < 1) return undefined;
    if (active === true) onSale.push({ sku, name, priceFen: priceFen as number });
  }
  return onSale;
}

/**
 * Passes one call on to the API (or the emulator) and its answer (status, JSON body) back, unchanged.
 * The browser's Authorization header goes with it only when `authorization` says the route takes it.
 */
async function forward(
  request: IncomingMessage,
  response: ServerResponse,
  target: string,
  options: { authorization?: boolean } = {},
): Promise<void> {
  let body: Buffer | undefined;
  if (request.method === 'POST') {
    body = await readBody(request, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(response, 413, { error: { code: 'BODY_TOO_LARGE', message: `over ${MAX_BODY_BYTES} bytes` } });
      return;
    }
  }
  const headers: Record<string, string> = {};
  if (body) headers['content-type'] = request.headers['content-type'] ?? 'application/json';
  const { authorization } = request.headers;
  if (options.authorization && authorization !== undefined) headers.authorization = authorization;
  let answer: Response;
  try {
    answer = await fetch(target, {
      method: request.method,
      headers,
      body,
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
  } catch (error) {
    const message = `the API at ${new URL(target).origin} did not answer: ${error instanceof Error ? error.message : String(error)}`;
    sendJson(response, 502, { error: { code: 'API_UNREACHABLE', message } });
    return;
  }
  const text = Buffer.from(await answer.arrayBuffer());
  sendText(response, answer.status, answer.headers.get('content-type') ?? 'application/json; charset=utf-8', text);
}

function sendText(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  response
    .writeHead(status, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    })
    .end(response.req.method === 'HEAD' ? undefined : body);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  sendText(response, status, 'application/json; charset=utf-8', JSON.stringify(body));
}
