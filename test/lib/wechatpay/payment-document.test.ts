import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMerchantOrderRequest } from '../../../lib/orders/create-request';
import { checkPaymentDocument, holdsNoFieldBoundary } from '../../../lib/wechatpay/payment-document';
import { parseXml } from '../../../lib/wechatpay/xml';
import { stringToSign } from '../../../lib/wechatpay/sign';

/** A successful payment callback as WeChat Pay sends it (values only; the signature is not checked here). */
const GENUINE = {
  appid: 'wxd930ea5d5a258f4f',
  bank_type: 'OTHERS',
  cash_fee: '90',
  coupon_count: '1',
  coupon_fee: '10',
  coupon_fee_0: '10',
  coupon_id_0: '10000',
  fee_type: 'CNY',
  is_subscribe: 'N',
  mch_id: '10000100',
  nonce_str: 'ibuaiVcKdpRxkhJA',
  openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
  out_trade_no: '20261130abcdefghijABCDEFGHIJ',
  result_code: 'SUCCESS',
  return_code: 'SUCCESS',
  return_msg: 'OK',
  sign: '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6',
  time_end: '20261130120000',
  total_fee: '100',
  trade_type: 'JSAPI',
  transaction_id: '4200000540202005511234567890',
};

/** How a reader splits a string to sign: at every `&`, then at the first `=`. */
function canonicalSplit(signed: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const pair of signed.slice(0, -'&key='.length).split('&')) {
    const at = pair.indexOf('=');
    fields[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return fields;
}

describe('checkPaymentDocument', () => {
  it('accepts a genuine successful payment document', () => {
    expect(checkPaymentDocument(GENUINE, 'callback')).toEqual({ ok: true });
  });

  it.each(['nonce_str', 'fee_type', 'cash_fee', 'total_fee', 'transaction_id', 'time_end'])('refuses a document without %s', (name) => {
    const rest: Record<string, string> = { ...GENUINE };
    delete rest[name];
    expect(checkPaymentDocument(rest, 'callback')).toMatchObject({
      ok: false,
      reason: 'MISSING_FIELD',
      message: `callback has no ${name}`,
    });
  });

  it.each([
    ['cash_fee', '9.5'],
    ['transaction_id', '42000005402020055112345678'],
    ['transaction_id', '4200000540202005511234567890X'],
    ['time_end', '20261131120000'],
    ['fee_type', 'USD'],
  ])('refuses %s "%s"', (name, value) => {
    expect(checkPaymentDocument({ ...GENUINE, [name]: value }, 'callback')).toMatchObject({ ok: false, reason: 'BAD_FIELD' });
  });

  it('refuses any document with "&" or "=" in any value (property)', () => {
    const names = Object.keys(GENUINE);
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.string(), fc.constantFrom('&', '='), fc.string(), (name, before, boundary, after) => {
        const result = checkPaymentDocument({ ...GENUINE, [name]: `${before}${boundary}${after}` }, 'callback');
        expect(result).toMatchObject({ ok: false, reason: 'FORGED_FIELD_BOUNDARY' });
      }),
    );
  });
});

describe('no caller-chosen value can change how a signed document splits (property)', () => {
  it('an attach the API accepts reads back as exactly the fields that were signed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 130, unit: 'grapheme' }), (attach) => {
        let accepted;
        try {
          accepted = parseMerchantOrderRequest({ tradeType: 'NATIVE', totalFee: 1, description: 'x', attach }, { clientIp: '203.0.113.7' });
        } catch {
          return;
        }
        const document = { ...GENUINE, ...(accepted.attach ? { attach: accepted.attach } : {}) };
        const expected = Object.fromEntries(Object.entries(document).filter(([name, value]) => name !== 'sign' && value !== ''));
        expect(canonicalSplit(stringToSign(document, ''))).toEqual(expected);
        expect(checkPaymentDocument(document, 'callback')).toEqual({ ok: true });
      }),
      { numRuns: 2_000 },
    );
  });

  it('an attach carrying forged fields is refused by the API', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('&out_trade_no=', '&total_fee=', '=', '&'), fc.string(), (before, boundary, after) => {
        expect(() =>
          parseMerchantOrderRequest(
            { tradeType: 'NATIVE', totalFee: 1, description: 'x', attach: `${before}${boundary}${after}` },
            { clientIp: '203.0.113.7' },
          ),
        ).toThrow();
      }),
    );
  });
});

describe('the one look over the raw document (property)', () => {
  const piece = fc.constantFrom('a', '支付', '&amp;', '&#38;', '&#x3D;', '&lt;', '=', '&', ' ', '0');
  const encoding = fc.constantFrom('cdata', 'text');
  const names = Object.keys(GENUINE);

  it('finds no boundary exactly when no value read from the document holds one, so the check says the same either way', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.array(piece, { maxLength: 6 }), encoding, fc.boolean(), (name, pieces, how, asBytes) => {
        const value = pieces.join('');
        const body = Object.entries({ ...GENUINE, [name]: '' })
          .map(([n, v]) => {
            const content = n === name ? value : v;
            // CDATA carries its text as it stands, entity references and all.
            return how === 'cdata' && n === name
              ? `<${n}><![CDATA[${content}]]></${n}>`
              : `<${n}>${n === name ? content.replace(/&(?![a-z#0-9]+;)/g, '&amp;') : content}</${n}>`;
          })
          .join('');
        const text = `<xml>${body}</xml>`;
        const source = asBytes ? new TextEncoder().encode(text) : text;
        let fields: Record<string, string>;
        try {
          fields = parseXml(source);
        } catch {
          return;
        }
        const noBoundary = holdsNoFieldBoundary(source);
        if (noBoundary) expect(Object.values(fields).some((v) => v.includes('&') || v.includes('='))).toBe(false);
        expect(checkPaymentDocument(fields, 'callback', { readFromSourceWithoutBoundary: noBoundary })).toEqual(
          checkPaymentDocument(fields, 'callback'),
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('reads bytes in any view of a buffer, and text', () => {
    const bytes = new TextEncoder().encode('xx<xml><a>1</a></xml>');
    expect(holdsNoFieldBoundary(bytes.subarray(2))).toBe(true);
    expect(holdsNoFieldBoundary(Buffer.from('<xml><a>a=b</a></xml>'))).toBe(false);
    expect(holdsNoFieldBoundary(new TextEncoder().encode('<xml><a>&amp;</a></xml>'))).toBe(false);
    expect(holdsNoFieldBoundary('<xml><a>1</a></xml>')).toBe(true);
    expect(holdsNoFieldBoundary('<?xml version="1.0"?><xml></xml>')).toBe(false);
  });
});
