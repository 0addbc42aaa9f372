import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Static imports and re-exports, dynamic imports and requires.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.[cm]?[jt]s$/.test(name))
    .map((name) => join(dir, name));
}

function imports(file: string): string[] {
  return [...readFileSync(join(ROOT, file), 'utf8').matchAll(SPECIFIER)].map((match) => match[1] as string);
}

describe('what the Lambda bundles may import', () => {
  // node-forge (certificate conversion, local certificates) is for tools/ and local/ only; lib/ and
  // functions/ are what every function bundle is made of.
  const bundled = [...sources('lib'), ...sources('functions')];

  it('finds the product code', () => {
    expect(bundled).toContain(join('lib', 'wechatpay', 'refund-notification.ts'));
  });

  it.each(bundled)('%s imports neither node-forge nor tools/ or local/ code', (file) => {
    for (const specifier of imports(file)) {
      expect(specifier, `${file} imports ${specifier}`).not.toMatch(/^node-forge(\/|$)/);
      if (specifier.startsWith('.')) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
        expect(target, `${file} imports ${specifier}`).not.toMatch(/^(tools|local|test)(\/|$)/);
      }
    }
  });
});

describe('the gateway seam', () => {
  /** What lib/orders may take from the protocol code: WeChat Pay's out_trade_no rule and Beijing time, the same in every generation. */
  const NEUTRAL = new Set([join('lib', 'wechatpay', 'ids'), join('lib', 'wechatpay', 'time')]);
  // The bill comes behind the port with the streamed bill reading (reconcile.ts).
  const NOT_YET_BEHIND_THE_PORT = new Set([join('lib', 'wechatpay', 'download-bill'), join('lib', 'wechatpay', 'bill')]);
  const orders = sources(join('lib', 'orders'));

  it.each(orders)('%s speaks to WeChat Pay only through its port (lib/orders/gateway.ts), and knows no HTTP', (file) => {
    for (const specifier of imports(file).filter((name) => name.startsWith('.'))) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      expect(target, `${file} imports ${specifier}`).not.toMatch(/^lib\/(gateways|http)(\/|$)/);
      if (target.startsWith(join('lib', 'wechatpay'))) {
        const allowed = NEUTRAL.has(target) || (file === join('lib', 'orders', 'reconcile.ts') && NOT_YET_BEHIND_THE_PORT.has(target));
        expect(allowed, `${file} imports ${specifier}: lib/orders must not know the protocol generation`).toBe(true);
      }
    }
  });

  it.each(sources('lib/wechatpay'))('%s knows nothing of orders (protocol only)', (file) => {
    for (const specifier of imports(file).filter((name) => name.startsWith('.'))) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      expect(target, `${file} imports ${specifier}`).not.toMatch(/^lib\/(orders|gateways|http|events|catalog|identity)(\/|$)/);
    }
  });
});
