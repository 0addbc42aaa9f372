import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  explainStringToSign,
  sign,
  signFields,
  stringToSign,
  verifySignature,
  type Fields,
  type SignType,
} from '../../../lib/wechatpay/sign';

// WeChat Pay's signature algorithm page (pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=4_3),
// worked example: these fields, this key, these two published signatures.
const DOC_FIELDS: Fields = {
  appid: 'wxd930ea5d5a258f4f',
  mch_id: '10000100',
  device_info: '1000',
  body: 'test',
  nonce_str: 'ibuaiVcKdpRxkhJA',
};
const DOC_KEY = '192006250b4c09247ec02edce69f6a2d';

// Mini-program payment doc (wx.requestPayment), worked paySign example.
const MINIPROGRAM_FIELDS: Fields = {
  appId: 'wxd678efh567hg6787',
  nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
  package: 'prepay_id=wx2017033010242291fcfe0db70013231072',
  signType: 'MD5',
  timeStamp: '1490840662',
};
const MINIPROGRAM_KEY = 'qazwsxedcrfvtgbyhnujmikolp111111';

describe('WeChat Pay published vectors', () => {
  it('signs the signature-algorithm page example with MD5', () => {
    expect(stringToSign(DOC_FIELDS, DOC_KEY)).toBe(
      'appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d',
    );
    expect(sign(DOC_FIELDS, DOC_KEY, 'MD5')).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
  });

  it('signs the same example with HMAC-SHA256 keyed by the API key', () => {
    expect(sign(DOC_FIELDS, DOC_KEY, 'HMAC-SHA256')).toBe('6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6');
  });

  it('reproduces the mini-program paySign example (inner "=" of package kept raw)', () => {
    expect(sign(MINIPROGRAM_FIELDS, MINIPROGRAM_KEY, 'MD5')).toBe('22D9B4E54AB1950F51E0649E8810ACD6');
  });

  it('verifies the published document and rejects it with one character changed', () => {
    const signed = { ...DOC_FIELDS, sign: '9A0A8659F005D6984697E2CA0A9CF3B7' };
    expect(verifySignature(signed, DOC_KEY)).toEqual({ ok: true, signType: 'MD5' });
    const tampered = { ...signed, body: 'tesT' };
    expect(verifySignature(tampered, DOC_KEY)).toMatchObject({
      ok: false,
      reason: 'SIGN_MISMATCH',
      message: expect.stringMatching(/does not match/),
    });
  });

  it('accepts a lower-case hex signature as WeChat Pay compares case-insensitively', () => {
    const signed = { ...DOC_FIELDS, sign: '9a0a8659f005d6984697e2ca0a9cf3b7' };
    expect(verifySignature(signed, DOC_KEY).ok).toBe(true);
  });
});

describe('string to sign', () => {
  it('covers fields it does not know, such as coupon_fee_0 and rate_value', () => {
    const fields = { ...DOC_FIELDS, coupon_fee_0: '10', rate_value: '6.5' };
    expect(stringToSign(fields, 'k')).toContain('coupon_fee_0=10&device_info=1000');
    expect(stringToSign(fields, 'k')).toContain('nonce_str=ibuaiVcKdpRxkhJA&rate_value=6.5&key=k');
    const signed = signFields(fields, DOC_KEY, 'MD5');
    expect(verifySignature(signed, DOC_KEY).ok).toBe(true);
    // Dropping an unknown field, as typed-model SDKs do, must break the signature.
    const withoutCoupon = { ...signed };
    delete withoutCoupon.coupon_fee_0;
    expect(verifySignature(withoutCoupon, DOC_KEY).ok).toBe(false);
  });

  it('includes sign_type whenever it is present, and never sign', () => {
    const text = stringToSign({ ...DOC_FIELDS, sign_type: 'HMAC-SHA256', sign: 'X' }, 'k');
    expect(text).toContain('&sign_type=HMAC-SHA256&key=k');
    expect(text).not.toContain('sign=X');
    const signed = signFields(DOC_FIELDS, DOC_KEY, 'HMAC-SHA256');
    expect(signed.sign_type).toBe('HMAC-SHA256');
    // Stripping sign_type before verifying (helei112g/payment#211) must fail.
    const stripped = { ...signed };
    delete stripped.sign_type;
    expect(verifySignature(stripped, DOC_KEY, 'HMAC-SHA256').ok).toBe(false);
  });

  it('leaves out empty and undefined values', () => {
    expect(sign({ ...DOC_FIELDS, attach: '', detail: undefined }, DOC_KEY, 'MD5')).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
  });

  it('sorts names by bytes, upper case before lower case', () => {
    expect(stringToSign({ b: '1', B: '2', a_b: '3', ab: '4' }, 'k')).toBe('B=2&a_b=3&ab=4&b=1&key=k');
  });

  it('hashes the UTF-8 bytes of Chinese values', () => {
    const fields = { ...DOC_FIELDS, attach: '支付测试' };
    expect(verifySignature({ ...fields, sign: sign(fields, DOC_KEY, 'MD5') }, DOC_KEY).ok).toBe(true);
    // Hashing Latin-1 bytes instead would give another signature.
    expect(sign(fields, DOC_KEY, 'MD5')).not.toBe(sign({ ...fields, attach: 'æ\u0094¯ä»\u0098æµ\u008Bè¯\u0095' }, DOC_KEY, 'MD5'));
  });

  it('masks the key when explaining', () => {
    const explained = explainStringToSign(DOC_FIELDS);
    expect(explained).toMatch(/&key=\*+$/);
    expect(explained).not.toContain(DOC_KEY);
  });
});

describe('verification diagnostics', () => {
  it('hints at HMAC-SHA256 when a 64-character signature is checked as MD5', () => {
    const hmacSigned = { ...DOC_FIELDS, sign: sign(DOC_FIELDS, DOC_KEY, 'HMAC-SHA256') };
    const check = verifySignature(hmacSigned, DOC_KEY, 'MD5');
    expect(check.ok).toBe(false);
    expect(!check.ok && check.message).toMatch(/was it signed with HMAC-SHA256\?/);
    expect(verifySignature(hmacSigned, DOC_KEY, 'HMAC-SHA256').ok).toBe(true);
  });

  it('hints at MD5 when a 32-character signature is checked as HMAC-SHA256', () => {
    const md5Signed = { ...DOC_FIELDS, sign: '9A0A8659F005D6984697E2CA0A9CF3B7' };
    const check = verifySignature(md5Signed, DOC_KEY, 'HMAC-SHA256');
    expect(!check.ok && check.message).toMatch(/was it signed with MD5\?/);
  });

  it('refuses a missing sign and an unknown sign_type, and never names the key', () => {
    const unsigned = verifySignature(DOC_FIELDS, DOC_KEY);
    expect(unsigned).toMatchObject({ ok: false, reason: 'NO_SIGN', message: 'the document has no sign field' });
    const unknown = verifySignature({ ...DOC_FIELDS, sign_type: 'SHA1', sign: 'x' }, DOC_KEY);
    expect(unknown).toMatchObject({
      ok: false,
      reason: 'UNKNOWN_SIGN_TYPE',
      message: expect.stringMatching(/neither MD5 nor HMAC-SHA256/),
    });
    const wrongKey = verifySignature({ ...DOC_FIELDS, sign: '9A0A8659F005D6984697E2CA0A9CF3B7' }, 'x'.repeat(32));
    expect(JSON.stringify([unsigned, unknown, wrongKey])).not.toContain(DOC_KEY);
  });
});

describe('sign/verify round trip (property)', () => {
  const value = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom('&', '=', '<', ']]>', '支付测试', '007', '4200000540202005511234567890'),
    fc.stringMatching(/^[0-9]{1,60}$/),
  );
  const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/).filter((n) => n !== 'sign' && n !== 'sign_type');
  const signType = fc.constantFrom<SignType>('MD5', 'HMAC-SHA256');
  const key = fc.string({ minLength: 32, maxLength: 32 });

  it('verifies what it signed and rejects any changed value', () => {
    fc.assert(
      fc.property(fc.dictionary(name, value, { minKeys: 1 }), signType, key, (fields, type, apiKey) => {
        const signed = signFields(fields, apiKey, type);
        expect(verifySignature(signed, apiKey, type).ok).toBe(true);
        const [first] = Object.keys(signed).filter((n) => n !== 'sign' && n !== 'sign_type');
        if (first !== undefined) {
          const changed = { ...signed, [first]: `${signed[first]}x` };
          expect(verifySignature(changed, apiKey, type).ok).toBe(false);
        }
      }),
    );
  });
});

describe('verifySignature compares digests as it compared upper-case hex (property)', () => {
  /** The comparison before it decoded the received hex: upper-cased text, byte length, then bytes. */
  function textCompare(received: string, expected: string): 'ok' | 'SIGN_LENGTH' | 'SIGN_MISMATCH' {
    const receivedBytes = Buffer.from(received.toUpperCase(), 'utf8');
    const expectedBytes = Buffer.from(expected, 'utf8');
    if (receivedBytes.length !== expectedBytes.length) return 'SIGN_LENGTH';
    return receivedBytes.equals(expectedBytes) ? 'ok' : 'SIGN_MISMATCH';
  }

  const signType = fc.constantFrom<SignType>('MD5', 'HMAC-SHA256');
  // The genuine sign, changed in one place: case, a hex digit, a non-hex character, a character
  // that grows or shrinks in UTF-8 or when upper-cased, a character more or less.
  const edit = fc.tuple(fc.nat(), fc.constantFrom('lower', 'upper', 'A', '0', 'g', 'G', ' ', 'é', 'ß', 'ı', '支', '\u0000', 'drop', 'add'));

  it('accepts and refuses exactly the same signs, for the same reason', () => {
    fc.assert(
      fc.property(signType, fc.array(edit, { maxLength: 2 }), (type, edits) => {
        const fields = { ...DOC_FIELDS, sign_type: type };
        const expected = sign(fields, DOC_KEY, type);
        let received = expected;
        for (const [at, change] of edits) {
          const i = at % received.length;
          if (change === 'lower') received = received.toLowerCase();
          else if (change === 'upper') received = received.toUpperCase();
          else if (change === 'drop') received = received.slice(0, i) + received.slice(i + 1);
          else if (change === 'add') received = `${received.slice(0, i)}a${received.slice(i)}`;
          else received = received.slice(0, i) + change + received.slice(i + 1);
        }
        const check = verifySignature({ ...fields, sign: received }, DOC_KEY);
        expect(check.ok ? 'ok' : check.reason).toBe(textCompare(received, expected));
      }),
      { numRuns: 2000 },
    );
  });

  it('signs with one key, then another, then the first again', () => {
    const other = 'ffffffffffffffffffffffffffffffff';
    const first = sign(DOC_FIELDS, DOC_KEY, 'HMAC-SHA256');
    expect(sign(DOC_FIELDS, other, 'HMAC-SHA256')).not.toBe(first);
    expect(sign(DOC_FIELDS, DOC_KEY, 'HMAC-SHA256')).toBe(first);
    expect(verifySignature({ ...DOC_FIELDS, sign: first }, other, 'HMAC-SHA256').ok).toBe(false);
    expect(verifySignature({ ...DOC_FIELDS, sign: first }, DOC_KEY, 'HMAC-SHA256').ok).toBe(true);
  });
});

describe('stringToSign remembers sorted name lists (property)', () => {
  /** The string to sign as it was built before sorted lists were remembered. */
  function sortedEveryTime(fields: Record<string, string | undefined>, apiKey: string): string {
    const names = Object.keys(fields)
      .filter((name) => name !== 'sign' && fields[name] !== undefined && fields[name] !== '')
      .sort();
    return `${names.map((name) => `${name}=${fields[name]}&`).join('')}key=${apiKey}`;
  }

  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/);
  const value = fc.oneof(fc.string({ maxLength: 8 }), fc.constant(''), fc.constant(undefined));
  // Few names, so that lists repeat, in the same order or another, with other values.
  const document = fc
    .uniqueArray(fc.constantFrom('appid', 'mch_id', 'sign', 'Zeta', 'total_fee', 'coupon_fee_0', 'a', 'B'), { maxLength: 8 })
    .chain((names) => fc.tuple(fc.constant(names), fc.array(value, { minLength: names.length, maxLength: names.length })));

  it('gives the same text as sorting every time, whatever the lists seen before', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(document, fc.tuple(fc.uniqueArray(name, { maxLength: 70 }), fc.constant([] as Array<string | undefined>))), {
          minLength: 1,
          maxLength: 30,
        }),
        (documents) => {
          for (const [names, values] of documents) {
            const fields = Object.fromEntries(names.map((n, i) => [n, values[i] ?? `v${i}`]));
            expect(stringToSign(fields, DOC_KEY)).toBe(sortedEveryTime(fields, DOC_KEY));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
