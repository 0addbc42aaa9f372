import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { DEMO_PRODUCTS } from '../../local/demo-products';
import { startLocalStack, type LocalStack } from './local-stack';

/**
 * The demo checkout page in a real browser against the real local stack (`npm start`): the cart of
 * the seeded demo products, a NATIVE order priced by the server, its QR code, the emulator's scan
 * page paying it, and the checkout page turning to paid. Screenshots of every page go to
 * test-results/browser/ for a person to look at.
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
  /** Every answer the browser received, as `url: body`, to look for the merchant token in. */
  received: Promise<string>[];
}

/** The checkout page with its products listed; it records script errors and every answer received. */
async function openCheckout(context: BrowserContext): Promise<Checkout> {
  const page = await context.newPage();
  const errors: string[] = [];
  const received: Promise<string>[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('response', (response: Response) => {
    received.push(response.text().then((body) => `${response.url()}: ${JSON.stringify(response.headers())} ${body}`, () => ''));
  });
  await page.goto(stack.demoUrl);
  await page.locator('#cart .product').first().waitFor({ state: 'visible' });
  return { page, errors, received };
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

/** Presses Pay and answers the POST /orders request the page sent and the API's answer. */
async function pay(page: Page): Promise<{ sent: Record<string, unknown>; order: Created }> {
  const created = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
  await page.locator('#pay-button').click();
  const answer = await created;
  expect(answer.status(), await answer.text()).toBe(201);
  return { sent: answer.request().postDataJSON() as Record<string, unknown>, order: (await answer.json()) as Created };
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
  it('sells the demo products: a cart priced by the server, paid through the emulator\'s scan page', async () => {
    const context = await browser.newContext(device);
    try {
      const checkout = await openCheckout(context);
      const { page, errors } = checkout;

      // The three seeded demo products, with their prices in yuan, none in the cart yet.
      const listed = await page.locator('#cart .product').evaluateAll(
        // The tests compile without the DOM's types: the browser side is given loosely typed.
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (rows: any[]) => rows.map((r) => ({
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

      const cart = { 'croissant': 3, 'latte-large': 2, 'matcha-cake': 12 };
      for (const [sku, quantity] of Object.entries(cart)) await setQuantity(page, sku, quantity);
      // The stepper stays within 0 to 999.
      await row(page, 'latte-large').locator('input').fill('5000');
      await row(page, 'latte-large').locator('input').blur();
      expect(await row(page, 'latte-large').locator('input').inputValue()).toBe('999');
      expect(await row(page, 'latte-large').getByRole('button', { name: /^One more / }).isDisabled()).toBe(true);
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
        expect(await page.locator('#simulate-link').getAttribute('href')).toContain(
          `out_trade_no=${encodeURIComponent(order.outTradeNo)}`,
        );
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
      await page.route('**/products', (route) => route.fulfill({ status: 502, contentType: 'application/json', body: JSON.stringify({ error: failing }) }));
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
      expect((await merchant('PUT', `/merchant/products/${cake.sku}`, { name: cake.name, priceFen: cake.priceFen, active: false })).status).toBe(200);
      const { page, errors } = await openCheckout(context);
      expect(await page.locator('#cart .product').evaluateAll(
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (rows: any[]) => rows.map((r) => r.dataset.sku),
      )).toEqual(PRODUCTS.filter((p) => p !== cake).map((p) => p.sku));

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
