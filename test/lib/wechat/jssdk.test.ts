import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPageUrl, jssdkConfig, jssdkSignature, signedUrl } from '../../../lib/wechat/jssdk';

/**
 * The official vector of the JS-SDK documentation (附录1, JS-SDK使用权限签名算法), also pinned by
 * wechatpy's tests (tests/test_client.py) and recorded in the protocol notes, §14.
 */
const VECTOR = {
  jsapiTicket: 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg',
  nonceStr: 'Wm3WZYTPz0wzccnW',
  timestamp: 1414587457,
  url: 'http://mp.weixin.qq.com?params=value',
  signature: '0f9de62fce790f9a083d5c99e95740ceb90c27ed',
};

/** The documented algorithm written out again, independently of the code under test. */
function referenceSignature(ticket: string, nonce: string, timestamp: number, url: string): string {
  const plain = ['jsapi_ticket=' + ticket, 'noncestr=' + nonce, 'timestamp=' + String(timestamp), 'url=' + url.split('#')[0]].join('&');
  return createHash('sha1').update(Buffer.from(plain, 'utf8')).digest('hex');
}

const ticketArb = fc.stringMatching(/^[A-Za-z0-9_-]{20,100}$/);
const nonceArb = fc.stringMatching(/^[A-Za-z0-9]{1,32}$/);
const timestampArb = fc.integer({ min: 1_000_000_000, max: 4_000_000_000 });
const chineseArb = fc.string({
  unit: fc.integer({ min: 0x4e00, max: 0x9fa5 }).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: 12,
});
const queryValueArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._~%-]{0,20}$/), chineseArb);
/** Page URLs as WeChat's browser reports them: http(s), a path, often a query, sometimes Chinese. */
const pageUrlArb = fc
  .tuple(
    fc.constantFrom('http', 'https'),
    fc.domain(),
    fc.array(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), chineseArb), { maxLength: 4 }),
    fc.array(fc.tuple(fc.stringMatching(/^[a-z_]{1,10}$/), queryValueArb), { maxLength: 5 }),
  )
  .map(([scheme, host, segments, query]) => {
    const path = segments.length > 0 ? `/${segments.join('/')}` : '/';
    const search = query.length > 0 ? `?${query.map(([key, value]) => `${key}=${value}`).join('&')}` : '';
    return `${scheme}://${host}${path}${search}`;
  });
const fragmentArb = fc.oneof(
  fc.constant('wechat_redirect'),
  fc.string({ maxLength: 30 }).map((text) => text.replace(/\s/g, '')),
  chineseArb,
);

describe('jssdkSignature', () => {
  it('matches the official JS-SDK vector', () => {
    expect(jssdkSignature(VECTOR)).toBe(VECTOR.signature);
    expect(jssdkSignature({ ...VECTOR, timestamp: String(VECTOR.timestamp) })).toBe(VECTOR.signature);
  });

  it('jssdkConfig signs with the given nonce and the time in whole seconds', () => {
    expect(
      jssdkConfig({
        appId: 'wx0000000000000001',
        jsapiTicket: VECTOR.jsapiTicket,
        url: VECTOR.url,
        nonceStr: VECTOR.nonceStr,
        now: VECTOR.timestamp * 1000 + 999,
      }),
    ).toEqual({
      appId: 'wx0000000000000001',
      timestamp: VECTOR.timestamp,
      nonceStr: VECTOR.nonceStr,
      signature: VECTOR.signature,
    });
  });

  it('jssdkConfig makes a fresh 16-character nonce each time, and its signature checks out', () => {
    const configs = Array.from({ length: 20 }, () => jssdkConfig({ appId: 'wx1', jsapiTicket: VECTOR.jsapiTicket, url: VECTOR.url }));
    expect(new Set(configs.map((config) => config.nonceStr)).size).toBe(20);
    for (const config of configs) {
      expect(config.nonceStr).toMatch(/^[A-Za-z0-9]{16}$/);
      expect(config.signature).toBe(referenceSignature(VECTOR.jsapiTicket, config.nonceStr, config.timestamp, VECTOR.url));
    }
  });

  it('is the documented SHA1 for any page URL with a query, Chinese characters included (property)', () => {
    fc.assert(
      fc.property(ticketArb, nonceArb, timestampArb, pageUrlArb, (ticket, nonce, timestamp, url) => {
        expect(jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp, url })).toBe(
          referenceSignature(ticket, nonce, timestamp, url),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('signs raw values: a Chinese query is hashed as UTF-8, not percent-encoded (property)', () => {
    fc.assert(
      fc.property(ticketArb, nonceArb, timestampArb, chineseArb, (ticket, nonce, timestamp, word) => {
        const raw = `https://pay.example.com/checkout?item=${word}`;
        const encoded = `https://pay.example.com/checkout?item=${encodeURIComponent(word)}`;
        const signature = jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp, url: raw });
        expect(signature).toBe(referenceSignature(ticket, nonce, timestamp, raw));
        // The page must be signed with the URL exactly as its browser reports it.
        expect(signature).not.toBe(jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp, url: encoded }));
      }),
      { numRuns: 100 },
    );
  });

  it('drops the # part: with it or without it, the same signature (property)', () => {
    fc.assert(
      fc.property(ticketArb, nonceArb, timestampArb, pageUrlArb, fragmentArb, (ticket, nonce, timestamp, url, fragment) => {
        const input = { jsapiTicket: ticket, nonceStr: nonce, timestamp };
        expect(jssdkSignature({ ...input, url: `${url}#${fragment}` })).toBe(jssdkSignature({ ...input, url }));
      }),
      { numRuns: 300 },
    );
  });

  it('changes with every input (property)', () => {
    fc.assert(
      fc.property(ticketArb, nonceArb, timestampArb, pageUrlArb, (ticket, nonce, timestamp, url) => {
        const base = jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp, url });
        expect(jssdkSignature({ jsapiTicket: `${ticket}x`, nonceStr: nonce, timestamp, url })).not.toBe(base);
        expect(jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce === 'A' ? 'B' : 'A', timestamp, url })).not.toBe(base);
        expect(jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp: timestamp + 1, url })).not.toBe(base);
        expect(jssdkSignature({ jsapiTicket: ticket, nonceStr: nonce, timestamp, url: `${url}x` })).not.toBe(base);
      }),
      { numRuns: 100 },
    );
  });

  it.each([
    ['an empty ticket', { jsapiTicket: '' }],
    ['a ticket with a space', { jsapiTicket: 'ab cd' }],
    ['a nonce with &', { nonceStr: 'a&url=x' }],
    ['a nonce over 32 characters', { nonceStr: 'a'.repeat(33) }],
    ['a negative timestamp', { timestamp: -1 }],
    ['a timestamp in milliseconds with a fraction', { timestamp: 1414587457.5 }],
    ['a relative URL', { url: '/checkout?x=1' }],
    ['a URL of another scheme', { url: 'javascript:alert(1)' }],
    ['a URL with a newline', { url: 'https://pay.example.com/\n' }],
    ['a URL with a space', { url: 'https://pay.example.com/a b' }],
    ['an empty URL', { url: '' }],
    ['a URL over 4 KiB', { url: `https://pay.example.com/?q=${'a'.repeat(4096)}` }],
  ])('refuses %s', (_, override) => {
    expect(() => jssdkSignature({ ...VECTOR, ...override } as never)).toThrow(TypeError);
  });
});

describe('signedUrl and checkPageUrl', () => {
  it.each([
    ['https://pay.example.com/a?b=1#/route?c=2', 'https://pay.example.com/a?b=1'],
    ['https://pay.example.com/a?b=1#', 'https://pay.example.com/a?b=1'],
    ['https://pay.example.com/#a#b', 'https://pay.example.com/'],
    ['https://pay.example.com/a?b=1', 'https://pay.example.com/a?b=1'],
  ])('%s is signed as %s', (url, signed) => {
    expect(signedUrl(url)).toBe(signed);
  });

  it('accepts absolute http(s) page URLs and names the problem of others', () => {
    expect(checkPageUrl('https://pay.example.com/商品?名=值')).toBeUndefined();
    expect(checkPageUrl(VECTOR.url)).toBeUndefined();
    expect(checkPageUrl('ftp://pay.example.com/')).toMatch(/http/);
    expect(checkPageUrl(42)).toMatch(/required/);
  });
});
