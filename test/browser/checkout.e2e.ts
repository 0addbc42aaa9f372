import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { DEMO_PRODUCTS } from '../../dev/local/demo-products';
import { startLocalStack, type LocalStack } from './local-stack';

/**
 * The demo checkout page in a real browser against the real local stack (`npm start`): the cart of
 * the seeded demo products, a NATIVE order priced by the server, its QR code, the emulator's scan
 * page paying it, the checkout page turning to paid and listing the order's events; and a
 * mini-program payer, logged in with a simulated wx.login(), paying a JSAPI order under the
 * mini-program. Screenshots of every page go to test-results/browser/ for a person to look at.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('../../test-results/browser/', import.meta.url));
// The machine may have no network: nothing in Chromium may try to reach one, or it hangs.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const SIZES = {
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, isMobile: false, hasTouch: false },
} as const;

/** The local stack's mini-program (dev/emulator/test-apps.ts), the one the page logs its payers in to. */
const MINI_PROGRAM = 'wx00000000000000a2';

/** The demo products as the page lists them: in the catalog's order, by sku. */
const PRODUCTS = [...DEMO_PRODUCTS].sort((a, b) => (a.sku < b.sku ? -1 : 1));
const PRICE = new Map(PRODUCTS.map((product) => [product.sku, product.priceFen]));

function yuan(fen: number): string {
  return `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

/** What the demo prices say a cart costs: the sum of price × quantity. */
function demoTotal(cart: Record<string, number>): number {
  return Object.entries(cart).reduce((sum, [sku, quantity]) => sum + (PRICE.get(sku) ?? Number.NaN) * quantity, 0);
}

interface Created {
  outTradeNo: string;
  status: string;
  totalFee: number;
  description: string;
  pay: Record<string, string>;
}

/** An event as the local EventBridge lists it. */
interface PublishedEvent {
  id: string;
  'detail-type': string;
  source: string;
  time: string;
  detail: Record<string, unknown>;
}

/** An event as the page lists it. */
interface ListedEvent {
  id: string;
  detailType: string;
  text: string;
  time: string;
}

let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startLocalStack();
  // launch() gives Chromium a new, empty profile directory of its own, removed on close.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  // What the API, the emulator and serverless offline said, for when a step was slow or failed.
  if (stack) writeFileSync(`${SHOTS}local-stack.log`, stack.output());
});

interface Checkout {
  page: Page;
  /** Script errors and console errors. */
  errors: string[];
  /** Every console message, of any type. */
  logged: string[];
  /** Every answer the browser received, as `url: body`, to look for the merchant token in. */
  received: Promise<string>[];
}

/** The checkout page with its products listed; it records script errors and every answer received. */
async function openCheckout(context: BrowserContext): Promise<Checkout> {
  const page = await context.newPage();
  const errors: string[] = [];
  const logged: string[] = [];
  const received: Promise<string>[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    logged.push(message.text());
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('response', (response: Response) => {
    received.push(
      response.text().then(
        (body) => `${response.url()}: ${JSON.stringify(response.headers())} ${body}`,
        () => '',
      ),
    );
  });
  await page.goto(stack.demoUrl);
  await page.locator('#cart .product').first().waitFor({ state: 'visible' });
  return { page, errors, logged, received };
}

/** Fails if the merchant token is in anything the browser received. */
async function expectNoToken(checkout: Checkout): Promise<void> {
  const bodies = await Promise.all(checkout.received);
  expect(bodies.length).toBeGreaterThan(0);
  for (const body of bodies) expect(body).not.toContain(stack.merchantToken);
}

function row(page: Page, sku: string) {
  return page.locator(`#cart .product[data-sku="${sku}"]`);
}

/** Sets a product's quantity: with the + button for small numbers, by typing for the others. */
async function setQuantity(page: Page, sku: string, quantity: number): Promise<void> {
  const line = row(page, sku);
  if (quantity <= 3) {
    await line.locator('input').fill('0');
    await line.locator('input').blur();
    for (let i = 0; i < quantity; i++) await line.getByRole('button', { name: /^One more / }).click();
  } else {
    await line.locator('input').fill(String(quantity));
    await line.locator('input').blur();
  }
  expect(await line.locator('input').inputValue()).toBe(String(quantity));
}

/** Presses Pay and answers the API's answer to the POST /orders the page sent, whatever its status. */
async function pressPay(page: Page): Promise<Response> {
  const created = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
  await page.locator('#pay-button').click();
  return created;
}

/** Presses Pay and answers the POST /orders request the page sent and the API's answer. */
async function pay(page: Page): Promise<{ sent: Record<string, unknown>; order: Created }> {
  const answer = await pressPay(page);
  expect(answer.status(), await answer.text()).toBe(201);
  return { sent: answer.request().postDataJSON() as Record<string, unknown>, order: (await answer.json()) as Created };
}

/** The events the page lists for its order, oldest first. */
async function listedEvents(page: Page): Promise<ListedEvent[]> {
  return page.locator('#events .event').evaluateAll(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (rows: any[]) =>
      rows.map((r) => ({
        id: r.dataset.id,
        detailType: r.dataset.detailType,
        text: r.querySelector('.event-type').textContent,
        time: r.querySelector('time').getAttribute('datetime'),
      })),
  );
}

/** The order's events as the local EventBridge has them (through the demo server's pass-through). */
/** What the bus got for the order, whole, from the events service (the demo server hands the page only a part). */
async function publishedEvents(outTradeNo: string): Promise<PublishedEvent[]> {
  const response = await fetch(new URL(`/events?outTradeNo=${encodeURIComponent(outTradeNo)}`, stack.eventsUrl));
  expect(response.status).toBe(200);
  return ((await response.json()) as { events: PublishedEvent[] }).events;
}

/**
 * The page lists its paid order's events: exactly one `Order Paid`, the very event the bus got for
 * this order (its id, its time), and nothing the bus does not have.
 */
async function expectPaidEventListed(page: Page, outTradeNo: string): Promise<void> {
  await expect.poll(async () => (await listedEvents(page)).map((event) => event.detailType), { timeout: 20_000 }).toContain('Order Paid');
  const listed = await listedEvents(page);
  const paid = listed.filter((event) => event.detailType === 'Order Paid');
  expect(paid).toHaveLength(1);
  expect(paid[0]?.text).toBe('Order Paid');
  const published = await publishedEvents(outTradeNo);
  expect(listed.map((event) => event.id)).toEqual(published.map((event) => event.id));
  const event = published.find((candidate) => candidate.id === paid[0]?.id);
  expect(event?.['detail-type']).toBe('Order Paid');
  expect(event?.detail.outTradeNo).toBe(outTradeNo);
  expect(event?.detail.status).toBe('PAID');
  expect(paid[0]?.time).toBe(event?.time);
  expect(await page.locator('#events-status').isVisible()).toBe(false);
}

async function simOrder(outTradeNo: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${stack.emulatorUrl}/__sim/orders/${encodeURIComponent(outTradeNo)}`);
  return (await response.json()) as Record<string, unknown>;
}

async function merchant(method: string, path: string, body?: unknown): Promise<globalThis.Response> {
  return fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.merchantToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe.each(Object.entries(SIZES))('demo checkout on a %s-sized screen', (size, device) => {
  it("sells the demo products: a cart priced by the server, paid through the emulator's scan page", async () => {
    const context = await browser.newContext(device);
    try {
      const checkout = await openCheckout(context);
      const { page, errors } = checkout;

      // The three seeded demo products, with their prices in yuan, none in the cart yet.
      const listed = await page.locator('#cart .product').evaluateAll(
        // The tests compile without the DOM's types: the browser side is given loosely typed.
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (rows: any[]) =>
          rows.map((r) => ({
            sku: r.dataset.sku,
            name: r.querySelector('.product-name').textContent,
            price: r.querySelector('.product-price').textContent,
            quantity: r.querySelector('input').value,
          })),
      );
      expect(listed).toEqual(PRODUCTS.map((p) => ({ sku: p.sku, name: p.name, price: yuan(p.priceFen), quantity: '0' })));
      expect(await page.locator('#pay-button').isDisabled()).toBe(true);
      expect(await row(page, 'croissant').getByRole('button', { name: 'One less Croissant' }).isDisabled()).toBe(true);
      expect(await page.getByLabel('Quantity of Latte (large)').inputValue()).toBe('0');
      await page.screenshot({ path: `${SHOTS}${size}-1-checkout.png`, fullPage: true });

      const cart = { croissant: 3, 'latte-large': 2, 'matcha-cake': 12 };
      for (const [sku, quantity] of Object.entries(cart)) await setQuantity(page, sku, quantity);
      // The stepper stays within 0 to 999.
      await row(page, 'latte-large').locator('input').fill('5000');
      await row(page, 'latte-large').locator('input').blur();
      expect(await row(page, 'latte-large').locator('input').inputValue()).toBe('999');
      expect(
        await row(page, 'latte-large')
          .getByRole('button', { name: /^One more / })
          .isDisabled(),
      ).toBe(true);
      await setQuantity(page, 'latte-large', 2);
      const expected = demoTotal(cart);
      expect(expected).toBe(1200 * 3 + 2800 * 2 + 3200 * 12);
      expect(await page.locator('#estimate').textContent()).toBe(yuan(expected));
      expect(await page.locator('#pay-button').textContent()).toBe(`Pay ${yuan(expected)}`);
      await page.locator('input[name="tradeType"][value="NATIVE"]').check();
      await page.screenshot({ path: `${SHOTS}${size}-2-cart.png`, fullPage: true });

      const { sent, order } = await pay(page);
      // The page sends the items only: the server sets the price and the description.
      expect(sent).not.toHaveProperty('totalFee');
      expect(sent).not.toHaveProperty('description');
      expect(sent.items).toEqual(Object.entries(cart).map(([sku, quantity]) => ({ sku, quantity })));
      expect(sent.tradeType).toBe('NATIVE');
      expect(typeof sent.idempotencyKey).toBe('string');
      expect(order.totalFee).toBe(expected);
      expect(order.description).toBe('Croissant ×3, Latte (large) ×2, 抹茶蛋糕 ×12');

      await page.locator('#pay-NATIVE').waitFor({ state: 'visible' });
      expect(await page.locator('#out-trade-no').textContent()).toBe(order.outTradeNo);
      expect(await page.locator('#status').textContent()).toBe('PENDING');
      expect(await page.locator('#result-amount').textContent()).toBe(yuan(order.totalFee));
      expect(await page.locator('#result-description').textContent()).toBe(order.description);
      expect(await page.locator('#price-note').isVisible()).toBe(false);
      expect(await page.locator('#qr').getAttribute('src')).toBe(order.pay.qrCode);
      expect(await page.evaluate<number>("document.getElementById('qr').naturalWidth")).toBeGreaterThan(0);
      expect(await page.locator('#code-url').textContent()).toBe(order.pay.codeUrl);
      // Nothing has happened to the order yet: no events.
      expect(await page.locator('#events-status').textContent()).toMatch(/^None yet/);
      expect(await listedEvents(page)).toEqual([]);
      await page.screenshot({ path: `${SHOTS}${size}-3-qr-code.png`, fullPage: true });

      // "Scanning": the link beside the QR code opens the emulator's page for its code_url.
      const [scan] = await Promise.all([context.waitForEvent('page'), page.locator('#scan-link').click()]);
      await scan.waitForLoadState();
      expect(new URL(scan.url()).searchParams.get('code_url')).toBe(order.pay.codeUrl);
      expect(`¥${await scan.locator('#amount').textContent()}`).toBe(yuan(expected));
      expect(await scan.locator('#description').textContent()).toBe(order.description);
      await scan.screenshot({ path: `${SHOTS}${size}-4-scan.png`, fullPage: true });

      await scan.locator('#pay').click();
      await scan.locator('#paid').waitFor({ state: 'visible' });
      expect(await scan.locator('#result').textContent()).toBe('Payment successful');
      await scan.screenshot({ path: `${SHOTS}${size}-5-scan-paid.png`, fullPage: true });
      const sim = await simOrder(order.outTradeNo);
      expect(sim.trade_state).toBe('SUCCESS');
      expect(sim.total_fee).toBe(expected);

      // The checkout page follows the order until the API says it is paid; the cart starts again.
      await page.bringToFront();
      await page.locator('#paid-banner').waitFor({ state: 'visible', timeout: 20_000 });
      expect(await page.locator('#status').textContent()).toBe('PAID');
      expect(await page.locator('#result-amount').textContent()).toBe(yuan(expected));
      expect(await page.locator('#transaction-id').textContent()).toBe(sim.transaction_id);
      expect(await page.locator('#waiting').isVisible()).toBe(false);
      expect(await page.locator('#qr').isVisible()).toBe(false);
      await expectPaidEventListed(page, order.outTradeNo);
      await page.screenshot({ path: `${SHOTS}${size}-6-checkout-paid.png`, fullPage: true });
      for (const product of PRODUCTS) expect(await row(page, product.sku).locator('input').inputValue()).toBe('0');
      expect(await page.locator('#pay-button').isDisabled()).toBe(true);

      // Nothing on either page is wider than the screen.
      for (const shown of [page, scan]) {
        const overflow = await shown.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
        expect(overflow, shown.url()).toBeLessThanOrEqual(0);
      }
      expect(errors).toEqual([]);
      await expectNoToken(checkout);
    } finally {
      await context.close();
    }
  });
});

describe('demo checkout, the other trade types', () => {
  it('shows the JSAPI object for wx.requestPayment, the MWEB redirect and the APP parameters', async () => {
    const context = await browser.newContext(SIZES.phone);
    try {
      const checkout = await openCheckout(context);
      const { page, errors } = checkout;
      await setQuantity(page, 'latte-large', 1);
      for (const tradeType of ['JSAPI', 'MWEB', 'APP'] as const) {
        // An unpaid order leaves the cart as it was: "New order" pays the same cart another way.
        if (await page.locator('#new-order').isVisible()) await page.locator('#new-order').click();
        expect(await row(page, 'latte-large').locator('input').inputValue()).toBe('1');
        await page.locator(`input[name="tradeType"][value="${tradeType}"]`).check();
        expect(await page.locator('#openid-field').isVisible()).toBe(tradeType === 'JSAPI');
        expect(await page.locator('#miniprogram-field').isVisible()).toBe(false);
        const { sent, order } = await pay(page);
        expect(sent.items).toEqual([{ sku: 'latte-large', quantity: 1 }]);
        expect(order.totalFee).toBe(PRICE.get('latte-large'));
        await page.locator(`#pay-${tradeType}`).waitFor({ state: 'visible' });
        expect(await page.locator('#result-amount').textContent()).toBe(yuan(order.totalFee));
        expect(await page.locator('#result-description').textContent()).toBe('Latte (large)');
        if (tradeType === 'JSAPI') {
          expect(typeof sent.openid).toBe('string');
          const shown = JSON.parse((await page.locator('#jsapi-params').textContent()) ?? '') as Record<string, string>;
          expect(shown).toEqual(order.pay);
          expect(Object.keys(shown).sort()).toEqual(['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
        } else if (tradeType === 'MWEB') {
          expect(sent.sceneInfo).toMatchObject({ h5_info: { type: 'Wap' } });
          expect(await page.locator('#mweb-link').getAttribute('href')).toBe(order.pay.mwebUrl);
        } else {
          const shown = JSON.parse((await page.locator('#app-params').textContent()) ?? '') as Record<string, string>;
          expect(shown).toEqual(order.pay);
          expect(shown.package).toBe('Sign=WXPay');
        }
        expect(await page.locator('#simulate-link').getAttribute('href')).toContain(`out_trade_no=${encodeURIComponent(order.outTradeNo)}`);
        await page.screenshot({ path: `${SHOTS}phone-${tradeType.toLowerCase()}.png`, fullPage: true });
      }
      expect(errors).toEqual([]);
      await expectNoToken(checkout);
    } finally {
      await context.close();
    }
  });

  it('names the field of a refused order', async () => {
    const context = await browser.newContext(SIZES.desktop);
    try {
      const { page } = await openCheckout(context);
      await setQuantity(page, 'croissant', 1);
      await page.locator('input[name="tradeType"][value="JSAPI"]').check();
      await page.locator('#openid').fill('not an openid!');
      await page.locator('#pay-button').click();
      await page.locator('#form-error').waitFor({ state: 'visible' });
      expect(await page.locator('#form-error').textContent()).toContain('openid');
      expect(await page.locator('#result').isVisible()).toBe(false);
      await page.screenshot({ path: `${SHOTS}desktop-refused.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('says when the products cannot be loaded, and loads them on "Try again"', async () => {
    const context = await browser.newContext(SIZES.phone);
    try {
      const page = await context.newPage();
      const failing = { code: 'CATALOG_UNAVAILABLE', message: "the API's catalog answered HTTP 503" };
      await page.route('**/products', (route) =>
        route.fulfill({ status: 502, contentType: 'application/json', body: JSON.stringify({ error: failing }) }),
      );
      await page.goto(stack.demoUrl);
      await page.locator('#products-error').waitFor({ state: 'visible' });
      expect(await page.locator('#products-error-text').textContent()).toBe(`Could not load the products: ${failing.message}`);
      expect(await page.locator('#pay-button').isDisabled()).toBe(true);
      await page.screenshot({ path: `${SHOTS}phone-products-unavailable.png`, fullPage: true });
      await page.unroute('**/products');
      await page.locator('#products-retry').click();
      await page.locator('#cart .product').first().waitFor({ state: 'visible' });
      expect(await page.locator('#cart .product').count()).toBe(PRODUCTS.length);
      expect(await page.locator('#products-error').isVisible()).toBe(false);
    } finally {
      await context.close();
    }
  });

  it('forwards only the frontend routes of the API, never the payment callback or the merchant routes', async () => {
    const notify = await fetch(new URL('/wechatpay/notify', stack.demoUrl), { method: 'POST', body: '<xml></xml>' });
    expect(notify.status).toBe(404);
    const unknown = await fetch(new URL('/orders/not-an-order-0000', stack.demoUrl));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBeTruthy();
    const config = await (await fetch(new URL('/config.js', stack.demoUrl))).text();
    expect(config).toContain(JSON.stringify(stack.emulatorUrl));
    for (const path of ['/merchant/products', '/merchant/orders/not-an-order-0000']) {
      const response = await fetch(new URL(path, stack.demoUrl), { headers: { authorization: `Bearer ${stack.merchantToken}` } });
      expect(response.status, path).toBe(404);
    }
  });

  it('lists the products on sale at /products without ever exposing the merchant token', async () => {
    const response = await fetch(new URL('/products', stack.demoUrl));
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ products: PRODUCTS.map(({ sku, name, priceFen }) => ({ sku, name, priceFen })) });
    for (const path of ['/products', '/', '/index.html', '/app.js', '/style.css', '/config.js']) {
      const served = await fetch(new URL(path, stack.demoUrl));
      expect(served.status, path).toBe(200);
      expect(`${JSON.stringify([...served.headers])} ${await served.text()}`, path).not.toContain(stack.merchantToken);
    }
    // The token is real: the API's merchant routes take it (so not finding it above means something).
    expect((await merchant('GET', '/merchant/products')).status).toBe(200);
  });

  it('follows the catalog: an inactive product is not offered, and a price change shows on the order as the server priced it', async () => {
    const context = await browser.newContext(SIZES.desktop);
    const cake = PRODUCTS.find((product) => product.sku === 'matcha-cake')!;
    const croissant = PRODUCTS.find((product) => product.sku === 'croissant')!;
    try {
      expect(
        (await merchant('PUT', `/merchant/products/${cake.sku}`, { name: cake.name, priceFen: cake.priceFen, active: false })).status,
      ).toBe(200);
      const { page, errors } = await openCheckout(context);
      expect(
        await page.locator('#cart .product').evaluateAll(
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          (rows: any[]) => rows.map((r) => r.dataset.sku),
        ),
      ).toEqual(PRODUCTS.filter((p) => p !== cake).map((p) => p.sku));

      // The page estimates with the price it loaded; the server charges the price of the moment.
      await setQuantity(page, croissant.sku, 2);
      expect(await page.locator('#estimate').textContent()).toBe(yuan(croissant.priceFen * 2));
      expect((await merchant('PUT', `/merchant/products/${croissant.sku}`, { name: croissant.name, priceFen: 1500 })).status).toBe(200);
      const { order } = await pay(page);
      expect(order.totalFee).toBe(3000);
      await page.locator('#pay-NATIVE').waitFor({ state: 'visible' });
      expect(await page.locator('#result-amount').textContent()).toBe(yuan(3000));
      expect(await page.locator('#price-note').isVisible()).toBe(true);
      // The cart catches up with the catalog.
      await expect.poll(() => row(page, croissant.sku).locator('.product-price').textContent()).toBe(yuan(1500));
      await page.screenshot({ path: `${SHOTS}desktop-price-changed.png`, fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await merchant('PUT', `/merchant/products/${cake.sku}`, { name: cake.name, priceFen: cake.priceFen, active: true });
      await merchant('PUT', `/merchant/products/${croissant.sku}`, { name: croissant.name, priceFen: croissant.priceFen });
    }
  });
});

/** The session token with its expiry pushed a day later and its signature left as it was. */
function tampered(token: string): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { exp: number };
  claims.exp += 24 * 60 * 60;
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

describe('demo checkout as a mini-program payer', () => {
  it("logs in with a simulated wx.login(), orders JSAPI with the session token, is paid in the emulator and lists the order's events", async () => {
    const context = await browser.newContext(SIZES.phone);
    try {
      const checkout = await openCheckout(context);
      const { page, errors, logged } = checkout;
      const cart = { croissant: 2, 'latte-large': 1 };
      for (const [sku, quantity] of Object.entries(cart)) await setQuantity(page, sku, quantity);
      await page.locator('input[name="tradeType"][value="MINIPROGRAM"]').check();
      expect(await page.locator('#miniprogram-field').isVisible()).toBe(true);
      expect(await page.locator('#openid-field').isVisible()).toBe(false);
      expect(await page.locator('#payer-none').isVisible()).toBe(true);
      await page.screenshot({ path: `${SHOTS}phone-miniprogram-1-cart.png`, fullPage: true });

      const loggedIn = page.waitForResponse((r) => r.url().endsWith('/__sim/login'));
      const exchanged = page.waitForResponse((r) => r.url().endsWith('/auth/miniprogram'));
      const answer = await pressPay(page);
      const login = (await (await loggedIn).json()) as { code: string; openid: string };
      const session = (await (await exchanged).json()) as { token: string; expiresAt: string };
      expect((await loggedIn).request().postDataJSON()).toEqual({ appId: MINI_PROGRAM });
      expect((await exchanged).request().postDataJSON()).toEqual({ code: login.code, appId: MINI_PROGRAM });
      expect(session.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(answer.status(), await answer.text()).toBe(201);
      const order = (await answer.json()) as Created;

      // The order carries the session token, and neither an openid nor an app of its own.
      const sent = answer.request().postDataJSON() as Record<string, unknown>;
      expect(await answer.request().headerValue('authorization')).toBe(`Bearer ${session.token}`);
      expect(sent.tradeType).toBe('JSAPI');
      expect(sent.items).toEqual(Object.entries(cart).map(([sku, quantity]) => ({ sku, quantity })));
      expect(sent).not.toHaveProperty('openid');
      expect(sent).not.toHaveProperty('appId');
      expect(order.totalFee).toBe(demoTotal(cart));

      // The page says who pays: the openid the login gave, under the mini-program.
      await page.locator('#pay-JSAPI').waitFor({ state: 'visible' });
      expect(await page.locator('#order-openid').textContent()).toBe(login.openid);
      expect(await page.locator('#payer-openid').textContent()).toBe(login.openid);
      expect(await page.locator('#payer-app').textContent()).toBe(MINI_PROGRAM);
      const shown = JSON.parse((await page.locator('#jsapi-params').textContent()) ?? '') as Record<string, string>;
      expect(shown).toEqual(order.pay);
      expect(shown.appId).toBe(MINI_PROGRAM);
      // The API made the order under the mini-program, for the payer the token proves.
      const made = (await (await merchant('GET', `/merchant/orders/${order.outTradeNo}`)).json()) as {
        appId: string;
        openid: string;
        tradeType: string;
      };
      expect(made).toMatchObject({ appId: MINI_PROGRAM, openid: login.openid, tradeType: 'JSAPI' });
      expect(await page.locator('#events-status').textContent()).toMatch(/^None yet/);
      await page.screenshot({ path: `${SHOTS}phone-miniprogram-2-jsapi.png`, fullPage: true });

      // No WeChat here: the emulator's page stands in for wx.requestPayment and pays.
      const [sheet] = await Promise.all([context.waitForEvent('page'), page.locator('#simulate-link').click()]);
      await sheet.waitForLoadState();
      expect(new URL(sheet.url()).searchParams.get('out_trade_no')).toBe(order.outTradeNo);
      expect(await sheet.locator('#sheet').getAttribute('data-out-trade-no')).toBe(order.outTradeNo);
      expect(await sheet.locator('.facts').textContent()).toContain(MINI_PROGRAM);
      await sheet.locator('#pay').click();
      await sheet.locator('#paid').waitFor({ state: 'visible' });
      const sim = await simOrder(order.outTradeNo);
      expect(sim).toMatchObject({ trade_state: 'SUCCESS', appid: MINI_PROGRAM, openid: login.openid, total_fee: order.totalFee });

      await page.bringToFront();
      await page.locator('#paid-banner').waitFor({ state: 'visible', timeout: 20_000 });
      expect(await page.locator('#status').textContent()).toBe('PAID');
      expect(await page.locator('#transaction-id').textContent()).toBe(sim.transaction_id);
      await expectPaidEventListed(page, order.outTradeNo);
      expect((await publishedEvents(order.outTradeNo))[0]?.detail).toMatchObject({ appId: MINI_PROGRAM, openid: login.openid });
      await page.screenshot({ path: `${SHOTS}phone-miniprogram-3-paid.png`, fullPage: true });

      // The token stays in the page's memory: not in the page, its storage, its cookies or its logs.
      const kept = await page.evaluate<string>(
        'document.documentElement.outerHTML + JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie',
      );
      expect(kept).toContain(login.openid);
      expect(kept).not.toContain(session.token);
      expect(logged.join('\n')).not.toContain(session.token);
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
      await expectNoToken(checkout);
    } finally {
      await context.close();
    }
  });

  it('says so when the API refuses a tampered session token (401), and logs in again on the next Pay', async () => {
    const context = await browser.newContext(SIZES.desktop);
    try {
      const { page, logged } = await openCheckout(context);
      await setQuantity(page, 'croissant', 1);
      await page.locator('input[name="tradeType"][value="MINIPROGRAM"]').check();
      let logins = 0;
      page.on('request', (request) => {
        if (request.url().endsWith('/__sim/login')) logins += 1;
      });
      // The session's answer altered on its way to the page: a token that claims a longer life.
      const genuine: string[] = [];
      await page.route('**/auth/miniprogram', async (route) => {
        const answer = await route.fetch();
        const session = (await answer.json()) as { token: string; expiresAt: string };
        genuine.push(session.token);
        await route.fulfill({ response: answer, json: { ...session, token: tampered(session.token) } });
      });

      const refused = await pressPay(page);
      expect(refused.status()).toBe(401);
      expect(await refused.request().headerValue('authorization')).toBe(`Bearer ${tampered(genuine[0] ?? '')}`);
      await page.locator('#form-error').waitFor({ state: 'visible' });
      expect(await page.locator('#form-error').textContent()).toBe(
        "The payer's session was refused (HTTP 401): the session token signature does not verify. Press Pay to log in again.",
      );
      expect(await page.locator('#result').isVisible()).toBe(false);
      // The refused session is forgotten.
      expect(await page.locator('#payer-none').isVisible()).toBe(true);
      await page.screenshot({ path: `${SHOTS}desktop-miniprogram-refused.png`, fullPage: true });

      await page.unroute('**/auth/miniprogram');
      const created = await pressPay(page);
      expect(created.status(), await created.text()).toBe(201);
      await page.locator('#pay-JSAPI').waitFor({ state: 'visible' });
      expect(await page.locator('#form-error').isVisible()).toBe(false);
      expect(logins).toBe(2);
      const first = (await created.json()) as Created;

      // The session lives on in memory: another order of the same payer needs no new login.
      await page.locator('#new-order').click();
      const again = await pressPay(page);
      expect(again.status(), await again.text()).toBe(201);
      expect(logins).toBe(2);
      const second = (await again.json()) as Created;
      expect(second.outTradeNo).not.toBe(first.outTradeNo);
      const [one, two] = await Promise.all(
        [first, second].map(
          async (o) => (await (await merchant('GET', `/merchant/orders/${o.outTradeNo}`)).json()) as { appId: string; openid: string },
        ),
      );
      expect(two).toMatchObject({ appId: MINI_PROGRAM, openid: one?.openid });
      for (const token of genuine) expect(logged.join('\n')).not.toContain(token);
    } finally {
      await context.close();
    }
  });
});
