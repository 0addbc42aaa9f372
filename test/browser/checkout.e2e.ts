import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startLocalStack, type LocalStack } from './local-stack';

/**
 * The demo checkout page in a real browser against the real local stack (`npm start`): a NATIVE
 * order's QR code, the emulator's scan page paying it, and the checkout page turning to paid.
 * Screenshots of every page go to test-results/browser/ for a person to look at.
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

/** A page that fails the test on any script error, with the stack's output on failure. */
async function openCheckout(context: BrowserContext): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  await page.goto(stack.demoUrl);
  await expect.poll(() => page.locator('#pay-button').isEnabled()).toBe(true);
  return { page, errors };
}

async function simOrder(outTradeNo: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${stack.emulatorUrl}/__sim/orders/${encodeURIComponent(outTradeNo)}`);
  return (await response.json()) as Record<string, unknown>;
}

describe.each(Object.entries(SIZES))('demo checkout on a %s-sized screen', (size, device) => {
  it('pays a NATIVE order through the emulator\'s scan page and shows it paid', async () => {
    const context = await browser.newContext(device);
    try {
      const { page, errors } = await openCheckout(context);
      await page.screenshot({ path: `${SHOTS}${size}-1-checkout.png`, fullPage: true });

      await page.locator('#amount').fill('12.34');
      await expect.poll(() => page.locator('#pay-button').textContent()).toBe('Pay ¥12.34');
      await page.locator('input[name="tradeType"][value="NATIVE"]').check();
      const created = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
      await page.locator('#pay-button').click();
      const answer = await created;
      expect(answer.status(), await answer.text()).toBe(201);
      const order = (await answer.json()) as { outTradeNo: string; pay: { codeUrl: string; qrCode: string } };

      await page.locator('#pay-NATIVE').waitFor({ state: 'visible' });
      expect(await page.locator('#out-trade-no').textContent()).toBe(order.outTradeNo);
      expect(await page.locator('#status').textContent()).toBe('PENDING');
      expect(await page.locator('#qr').getAttribute('src')).toBe(order.pay.qrCode);
      // The tests compile without the DOM's types: the browser side is given as expressions.
      expect(await page.evaluate<number>("document.getElementById('qr').naturalWidth")).toBeGreaterThan(0);
      expect(await page.locator('#code-url').textContent()).toBe(order.pay.codeUrl);
      await page.screenshot({ path: `${SHOTS}${size}-2-qr-code.png`, fullPage: true });

      // "Scanning": the link beside the QR code opens the emulator's page for its code_url.
      const [scan] = await Promise.all([context.waitForEvent('page'), page.locator('#scan-link').click()]);
      await scan.waitForLoadState();
      expect(new URL(scan.url()).searchParams.get('code_url')).toBe(order.pay.codeUrl);
      expect(await scan.locator('#amount').textContent()).toBe('12.34');
      expect(await scan.locator('#description').textContent()).toBe(await page.locator('#description').inputValue());
      await scan.screenshot({ path: `${SHOTS}${size}-3-scan.png`, fullPage: true });

      await scan.locator('#pay').click();
      await scan.locator('#paid').waitFor({ state: 'visible' });
      expect(await scan.locator('#result').textContent()).toBe('Payment successful');
      await scan.screenshot({ path: `${SHOTS}${size}-4-scan-paid.png`, fullPage: true });
      const sim = await simOrder(order.outTradeNo);
      expect(sim.trade_state).toBe('SUCCESS');
      expect(sim.total_fee).toBe(1234);

      // The checkout page follows the order until the API says it is paid.
      await page.bringToFront();
      await page.locator('#paid-banner').waitFor({ state: 'visible', timeout: 20_000 });
      expect(await page.locator('#status').textContent()).toBe('PAID');
      expect(await page.locator('#transaction-id').textContent()).toBe(sim.transaction_id);
      expect(await page.locator('#waiting').isVisible()).toBe(false);
      expect(await page.locator('#qr').isVisible()).toBe(false);
      await page.screenshot({ path: `${SHOTS}${size}-5-checkout-paid.png`, fullPage: true });

      // Nothing on either page is wider than the screen.
      for (const shown of [page, scan]) {
        const overflow = await shown.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
        expect(overflow, shown.url()).toBeLessThanOrEqual(0);
      }
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('demo checkout, the other trade types', () => {
  it('shows the JSAPI object for wx.requestPayment, the MWEB redirect and the APP parameters', async () => {
    const context = await browser.newContext(SIZES.phone);
    try {
      const { page, errors } = await openCheckout(context);
      for (const tradeType of ['JSAPI', 'MWEB', 'APP'] as const) {
        if (await page.locator('#new-order').isVisible()) await page.locator('#new-order').click();
        await page.locator(`input[name="tradeType"][value="${tradeType}"]`).check();
        expect(await page.locator('#openid-field').isVisible()).toBe(tradeType === 'JSAPI');
        const created = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
        await page.locator('#pay-button').click();
        const answer = await created;
        expect(answer.status(), await answer.text()).toBe(201);
        const order = (await answer.json()) as { outTradeNo: string; pay: Record<string, string> };
        await page.locator(`#pay-${tradeType}`).waitFor({ state: 'visible' });
        if (tradeType === 'JSAPI') {
          const shown = JSON.parse((await page.locator('#jsapi-params').textContent()) ?? '') as Record<string, string>;
          expect(shown).toEqual(order.pay);
          expect(Object.keys(shown).sort()).toEqual(['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
        } else if (tradeType === 'MWEB') {
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
    } finally {
      await context.close();
    }
  });

  it('names the field of a refused order', async () => {
    const context = await browser.newContext(SIZES.desktop);
    try {
      const { page } = await openCheckout(context);
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

  it('forwards only the frontend routes of the API, never the payment callback', async () => {
    const notify = await fetch(new URL('/wechatpay/notify', stack.demoUrl), { method: 'POST', body: '<xml></xml>' });
    expect(notify.status).toBe(404);
    const unknown = await fetch(new URL('/orders/not-an-order-0000', stack.demoUrl));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBeTruthy();
    const config = await (await fetch(new URL('/config.js', stack.demoUrl))).text();
    expect(config).toContain(JSON.stringify(stack.emulatorUrl));
  });
});
