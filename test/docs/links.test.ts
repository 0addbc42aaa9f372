import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, docFiles, githubSlug, links, readDoc, ROOT } from '../support/markdown';

/** A target that leaves the repository: a URL with a scheme, or a protocol-relative one. */
const EXTERNAL = /^([a-z][a-z0-9+.-]*:|\/\/)/i;

/** Every broken relative link of a doc: `file:line → target (why)`. */
function brokenLinks(file: string): string[] {
  const broken: string[] = [];
  for (const { target, line } of links(readDoc(file))) {
    if (EXTERNAL.test(target)) continue;
    const [rawPath = '', rawAnchor] = target.split('#', 2);
    const path = decodeURIComponent(rawPath);
    const resolved = path === '' ? file : normalize(join(dirname(file), path));
    const where = `${file}:${line} → ${target}`;
    if (resolved.startsWith('..') || !existsSync(join(ROOT, resolved))) {
      broken.push(`${where} (no file ${resolved})`);
      continue;
    }
    if (rawAnchor === undefined) continue;
    if (statSync(join(ROOT, resolved)).isDirectory() || !resolved.endsWith('.md')) {
      broken.push(`${where} (an anchor into ${resolved}, which is not a Markdown file)`);
      continue;
    }
    const anchor = decodeURIComponent(rawAnchor);
    if (!anchors(readDoc(resolved)).has(anchor)) broken.push(`${where} (no heading of ${resolved} has the anchor #${anchor})`);
  }
  return broken;
}

describe('the docs', () => {
  it('are README.md and docs/, with the index and every guide and reference page', () => {
    expect(docFiles()).toEqual(
      expect.arrayContaining([
        'README.md',
        'docs/README.md',
        'docs/quick-start.md',
        'docs/integrate.md',
        'docs/go-live.md',
        'docs/operate.md',
        'docs/emulator.md',
        'docs/wxpay.md',
        'docs/reference/http-api.md',
        'docs/reference/events.md',
        'docs/reference/errors.md',
        'docs/reference/configuration.md',
        'docs/internals/architecture.md',
        'docs/internals/guarantees.md',
        'docs/internals/performance.md',
      ]),
    );
  });

  it('keep the README under 400 lines, with the two commands', () => {
    const readme = readDoc('README.md');
    expect(readme.split('\n').length).toBeLessThan(400);
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
  });

  it.each(docFiles())('%s: every relative link resolves to a file, and every #anchor to a heading of it', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });
});

describe('the link check itself', () => {
  it("makes GitHub's anchors: lower case, spaces to -, punctuation dropped, code and links as their text", () => {
    expect(githubSlug('`POST /orders`')).toBe('post-orders');
    expect(githubSlug('Refunds: `POST /merchant/orders/{outTradeNo}/refunds`')).toBe('refunds-post-merchantordersouttradenorefunds');
    expect(githubSlug("Payers' login and the JS-SDK: `/auth/...`")).toBe('payers-login-and-the-js-sdk-auth');
    expect(githubSlug("WeChat's platform API (login, access_token, jsapi_ticket)")).toBe(
      'wechats-platform-api-login-access_token-jsapi_ticket',
    );
    expect(githubSlug('`wxpay cert`: the API certificate, from `.p12` to PEM to SSM')).toBe(
      'wxpay-cert-the-api-certificate-from-p12-to-pem-to-ssm',
    );
    expect(githubSlug('See [the guide](guide.md) first')).toBe('see-the-guide-first');
    expect(githubSlug('502: WeChat Pay or WeChat')).toBe('502-wechat-pay-or-wechat');
  });

  it('numbers repeated headings as GitHub does, and reads no heading inside a fenced block', () => {
    const found = anchors('# Title\n\n## Step\n\n## Step\n\n```sh\n# not a heading\n```\n');
    expect([...found]).toEqual(['title', 'step', 'step-1']);
  });

  it('finds links outside code only', () => {
    const text = 'See [a](a.md#x) and `[b](b.md)`.\n\n```md\n[c](c.md)\n```\n![d](img/d.png "D")\n';
    expect(links(text)).toEqual([
      { target: 'a.md#x', line: 1 },
      { target: 'img/d.png', line: 6 },
    ]);
  });
});
