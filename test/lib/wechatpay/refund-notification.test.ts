import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decryptReqInfo,
  readRefundNotification,
  reqInfoKey,
  type ReadRefundNotificationOptions,
  type RefundNotificationFailureReason,
} from '../../../lib/wechatpay/refund-notification';
import {
  buildRootXml,
  encryptedRefundNotification,
  encryptReqInfo,
  refundNotificationFields,
} from '../../../dev/wechatpay-documents/refund-notification';
import { buildXml, parseXml } from '../../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';

/*
 * WeChat Pay's refund callback test vector, from wechatpy: `tests/test_crypto.py`,
 * `WeChatCryptoTestCase.test_refund_notify_decrypt_message`, in github.com/wechatpy/wechatpy at commit
 * 5b8502e3bc4abfee3abae77983e01633ed47cebf. The outer document is copied byte for byte; the
 * plaintext below is what its req_info decrypts to (the test checks the four values wechatpy checks
 * and more).
 */
const VECTOR = {
  apiKey: 'OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk',
  md5Key: '63dfc0c1f53d9bc83a8fdc365b8141da',
  appId: 'wx4f4bc4dec97d474b',
  mchId: '12345678',
  body: `
<xml>
<return_code>SUCCESS</return_code>
<appid><![CDATA[wx4f4bc4dec97d474b]]></appid>
<mch_id><![CDATA[12345678]]></mch_id>
<nonce_str><![CDATA[c1c237efc87ee8dfcb3f9124b63a4d94]]></nonce_str>
<req_info><![CDATA[51A27s9LxbaEv52nBOrqa0FCs3HVIM31Wc3BpNqSCP5MQlS8HL1Vl7mZ21043B7PZy7adtOZGtZv44lGl0U8JXlVFL4Ltxsw6+pACjZBB0Qi1LUDjFlP2IyTxYX4eC57kxnCphDdIyRkU67kOWW/HN/efggTUlaPJkoL5kVe9Y1MZF55IHR4lwGI7WtVLtxATX1tkAVZF+/ri0WlPXo9+GkqeB2/id6Ozw09Tqp8C/TKbmKBpRhTCRU2TzfQoLa6fjbgETFHJ795aEMyUZPQYbbsz6U9Rj9lUzEh8+Oc8KYTXa9zVk+nnFr82+yjffb3d36ylTe0y/VmYf90rf9cbiJQdM00zZ8Qa99SlMTs2wjOO4Mi4Btlg1PebsLF8TkqbSZkRJDGs61UunUB8Km1b/VeBxXuv4D3H7DiVZ9Fj7lq2j07zFDpxxlhhen7kZvMWWO3lrfFpA9c4eFOqfF9SxcU9nBmHfDD1g/dsrMl6+a71xQHJ/gn80fZOefUBv92ggqutsuJ4gd4OqkmO0XUs8e4XQyLpra+LvpmahsU5lBIZuQcMq3FHrqe8hXTfp3+3qym2wGfvPI75jx41VZwmBQy9izB1Id+A5lUeXC5QJy+ryDu/dWkhB+aMjkElaI/Epmcc/IEPaI73W6Hc58hNednOM536rPnn+GDc98PdGszpLTjmaZSu8dtqwPaym66yRqFQowzFoBbooik57iHUFBCeWya7XcXYL9WKhRF3uIZM+Kfv9/Zs2pF+w9/EJpltuzPpT1GP2VTMSHz45zwphFlS2lX8wHyZ+k9n2dptzQqpOCPedt5iQAmAe1oNQMxNdPDH9g68x9UzWD1kfK/dPO+3NPAh0XG+io4x15fIknNf7JLjpAuWicMMzCdwC4hhqeYOzQ+pC9f2xJXi5YViNKIZY69oO8eoHYRitLZrHLgx3oB2zimmqX6BI+DMklKAzAqqgGmbFxcVTvxZB6cMCx+H7TTWXnjAG+6A3SrCcxg0l5+UB93pkAYR7SVJ+VaZoiBqlqnZvb7IM17n9XaaFntlzvbbFCIa7OnOQb5Lvw=]]></req_info>
</xml>`,
  plaintext: `<root>
<out_refund_no><![CDATA[1234]]></out_refund_no>
<out_trade_no><![CDATA[2020010418301551404339261814]]></out_trade_no>
<refund_account><![CDATA[REFUND_SOURCE_RECHARGE_FUNDS]]></refund_account>
<refund_fee><![CDATA[1]]></refund_fee>
<refund_id><![CDATA[50300103182020010413419046597]]></refund_id>
<refund_recv_accout><![CDATA[招商银行信用卡8915]]></refund_recv_accout>
<refund_request_source><![CDATA[API]]></refund_request_source>
<refund_status><![CDATA[SUCCESS]]></refund_status>
<settlement_refund_fee><![CDATA[1]]></settlement_refund_fee>
<settlement_total_fee><![CDATA[1]]></settlement_total_fee>
<success_time><![CDATA[2020-01-04 18:34:24]]></success_time>
<total_fee><![CDATA[1]]></total_fee>
<transaction_id><![CDATA[4200000483202001042069747825]]></transaction_id>
</root>`,
} as const;

const vectorReqInfo = (parseXml(VECTOR.body).req_info ?? '').trim();

const { appId, mchId, apiKey } = TEST_MERCHANT;
// The product serves several apps of one merchant.
const OTHER_APP = 'wx2421b1c4370ec43b';
const merchant: ReadRefundNotificationOptions = { apiKey, appIds: new Set([appId, OTHER_APP]), mchId };
const OTHER_KEY = 'Zq3mN8vT1xK5pL0wR7yB2cD9fG4hJ6sA';

/** A fixed refund (no random ids, fixed time): the same ciphertext on every run. */
const REFUND = {
  transaction_id: '4200000540202401011234567890',
  refund_id: '50300109602024010112345678901',
  out_trade_no: '20240101AbCdEfGhIjKlMnOpQrSt',
  out_refund_no: '20240101R0000000000000000001',
  total_fee: '1000',
  refund_fee: '300',
} as const;
const NOW = new Date('2024-01-01T04:05:06Z');

function callback(
  fields: Record<string, string | undefined> = {},
  outer: Record<string, string | undefined> = {},
  key: string = apiKey,
): string {
  return encryptedRefundNotification({ apiKey: key, appid: appId, mch_id: mchId, fields: { ...REFUND, ...fields }, outer, now: NOW });
}

/** The callback with its req_info replaced by another plaintext, encrypted with our key. */
function withPlaintext(plaintext: string | Uint8Array): string {
  return callback({}, { req_info: encryptReqInfo(plaintext, apiKey) });
}

/** The callback with its req_info's ciphertext bytes changed. */
function withCiphertext(change: (bytes: Buffer) => Buffer): string {
  const body = callback();
  const bytes = Buffer.from(parseXml(body).req_info ?? '', 'base64');
  return buildXml({ ...parseXml(body), req_info: change(Buffer.from(bytes)).toString('base64') });
}

function flipBit(bytes: Buffer, index: number, bit = 0): Buffer {
  const at = index < 0 ? bytes.length + index : index;
  bytes[at] = (bytes[at] as number) ^ (1 << bit);
  return bytes;
}

const goodPlaintext = buildRootXml(refundNotificationFields({ fields: REFUND, now: NOW }));

describe('the wechatpy refund callback vector', () => {
  it('derives the AES key as the lowercase hex MD5 of the API key', () => {
    expect(reqInfoKey(VECTOR.apiKey).toString('ascii')).toBe(VECTOR.md5Key);
    expect(createHash('md5').update(VECTOR.apiKey).digest('hex')).toBe(VECTOR.md5Key);
  });

  it('decrypts its req_info to the refund wechatpy reads', () => {
    const result = readRefundNotification(VECTOR.body, { apiKey: VECTOR.apiKey, appIds: [VECTOR.appId], mchId: VECTOR.mchId });
    expect(result).toEqual({
      ok: true,
      refund: {
        appId: VECTOR.appId,
        mchId: VECTOR.mchId,
        outRefundNo: '1234',
        outTradeNo: '2020010418301551404339261814',
        transactionId: '4200000483202001042069747825',
        refundId: '50300103182020010413419046597',
        totalFee: 1,
        settlementTotalFee: 1,
        refundFee: 1,
        settlementRefundFee: 1,
        refundStatus: 'SUCCESS',
        successTime: '2020-01-04 18:34:24',
        successAt: new Date('2020-01-04T10:34:24Z'),
        refundRecvAccount: '招商银行信用卡8915',
        refundAccount: 'REFUND_SOURCE_RECHARGE_FUNDS',
        refundRequestSource: 'API',
        fields: parseXml(VECTOR.plaintext, { rootName: 'root' }),
      },
    });
  });

  it('encrypting its plaintext gives its req_info back, byte for byte', () => {
    expect(encryptReqInfo(VECTOR.plaintext, VECTOR.apiKey)).toBe(vectorReqInfo);
    expect(decryptReqInfo(vectorReqInfo, VECTOR.apiKey)).toEqual({ ok: true, fields: parseXml(VECTOR.plaintext, { rootName: 'root' }) });
  });

  it('is refused for another app, another merchant or with another key', () => {
    const options = { apiKey: VECTOR.apiKey, appIds: [VECTOR.appId], mchId: VECTOR.mchId };
    expect(readRefundNotification(VECTOR.body, { ...options, appIds: [appId] })).toMatchObject({ ok: false, reason: 'FOREIGN_APPID' });
    expect(readRefundNotification(VECTOR.body, { ...options, mchId })).toMatchObject({ ok: false, reason: 'FOREIGN_MCH_ID' });
    expect(readRefundNotification(VECTOR.body, { ...options, apiKey })).toMatchObject({ ok: false, reason: 'BAD_CIPHERTEXT' });
  });
});

describe('encryptedRefundNotification', () => {
  it('builds what WeChat Pay sends: five outer fields, no sign, the refund encrypted', () => {
    const body = callback();
    const outer = parseXml(body);
    expect(Object.keys(outer).sort()).toEqual(['appid', 'mch_id', 'nonce_str', 'req_info', 'return_code']);
    expect(outer).toMatchObject({ return_code: 'SUCCESS', appid: appId, mch_id: mchId });
    expect(outer.nonce_str).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(body).not.toContain(REFUND.out_refund_no);
    const decrypted = decryptReqInfo(outer.req_info ?? '', apiKey);
    expect(decrypted).toEqual({
      ok: true,
      fields: {
        ...REFUND,
        settlement_total_fee: '1000',
        settlement_refund_fee: '300',
        refund_status: 'SUCCESS',
        success_time: '2024-01-01 12:05:06',
        refund_recv_accout: '支付用户的零钱',
        refund_account: 'REFUND_SOURCE_RECHARGE_FUNDS',
        refund_request_source: 'API',
      },
    });
  });

  it('makes realistic ids by default, and no success_time for a refund that did not succeed', () => {
    const sent = { out_trade_no: 'o1', out_refund_no: 'r1', total_fee: '5', refund_fee: '5', refund_status: 'CHANGE' };
    const fields = refundNotificationFields({ fields: sent });
    expect(fields.transaction_id).toMatch(/^4200\d{24}$/);
    expect(fields.refund_id).toMatch(/^503\d{26}$/);
    expect(fields.success_time).toBeUndefined();
    const read = readRefundNotification(encryptedRefundNotification({ apiKey, appid: OTHER_APP, mch_id: mchId, fields: sent }), merchant);
    expect(read).toMatchObject({ ok: true, refund: { appId: OTHER_APP, refundStatus: 'CHANGE', refundFee: 5 } });
    expect(read.ok ? read.refund.successTime : 'not read').toBeUndefined();
  });

  it('reads every status, and fields WeChat Pay may add', () => {
    for (const status of ['SUCCESS', 'CHANGE', 'REFUNDCLOSE'] as const) {
      const read = readRefundNotification(callback({ refund_status: status, cash_refund_fee: '300' }), merchant);
      expect(read).toMatchObject({ ok: true, refund: { refundStatus: status, fields: { cash_refund_fee: '300' } } });
    }
  });

  it('reads a refund without the optional fields', () => {
    const read = readRefundNotification(
      callback({
        settlement_total_fee: undefined,
        success_time: undefined,
        refund_recv_accout: undefined,
        refund_account: undefined,
        refund_request_source: undefined,
      }),
      merchant,
    );
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    for (const name of ['settlementTotalFee', 'successTime', 'successAt', 'refundRecvAccount', 'refundAccount', 'refundRequestSource']) {
      expect(read.refund).not.toHaveProperty(name);
    }
  });

  it('ignores refund fields in the clear in the outer document: only req_info counts', () => {
    const read = readRefundNotification(callback({}, { out_refund_no: 'FORGED', refund_fee: '999999', sign: 'ABC' }), merchant);
    expect(read).toMatchObject({ ok: true, refund: { outRefundNo: REFUND.out_refund_no, refundFee: 300 } });
  });
});

describe('the req_info cipher (properties)', () => {
  // What buildXml can carry (see xml.test.ts): no C0 controls but tab and LF, no CR, no U+FFFE/FFFF.
  // eslint-disable-next-line no-control-regex
  const UNCARRIABLE = /[\u0000-\u0008\u000B-\u001F\uFFFE\uFFFF]/;
  const value = fc
    .oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('&', '=', '<', ']]>', '支付用户的零钱', '  padded  ', '4200000483202001042069747825'),
    )
    .filter((v) => !UNCARRIABLE.test(v));
  const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/);
  const fields = fc.dictionary(name, value, { maxKeys: 15, noNullPrototype: true });
  const anyKey = fc.oneof(fc.string({ minLength: 32, maxLength: 32 }), fc.string({ unit: 'binary', maxLength: 64 }));

  it('any fields, any key: encrypt then decrypt gives the same fields', () => {
    fc.assert(
      fc.property(fields, anyKey, (original, key) => {
        expect(decryptReqInfo(encryptReqInfo(original, key), key)).toEqual({ ok: true, fields: original });
      }),
      { numRuns: 300 },
    );
  });

  it('any fields: another key never decrypts them', () => {
    fc.assert(
      fc.property(fields, anyKey, anyKey, (original, key, otherKey) => {
        fc.pre(key !== otherKey);
        expect(decryptReqInfo(encryptReqInfo(original, key), otherKey)).toMatchObject({ ok: false, reason: 'BAD_CIPHERTEXT' });
      }),
      { numRuns: 200 },
    );
  });

  it('any valid refund survives the whole callback', () => {
    const fen = fc.integer({ min: 1, max: 999_999_999_999 });
    const refund = fc
      .record({
        out_trade_no: fc.stringMatching(/^[0-9A-Za-z_\-|*@]{1,32}$/),
        out_refund_no: fc.stringMatching(/^[0-9A-Za-z_\-|*@]{1,64}$/),
        transaction_id: fc.stringMatching(/^[0-9]{28}$/),
        refund_id: fc.stringMatching(/^[0-9]{29}$/),
        total: fen,
        refundShare: fc.double({ min: 0, max: 1, noNaN: true }),
        refund_status: fc.constantFrom('SUCCESS', 'CHANGE', 'REFUNDCLOSE'),
        refund_recv_accout: fc.constantFrom('支付用户的零钱', '招商银行信用卡8915', 'Bank & Co = 1'),
        app: fc.constantFrom(appId, OTHER_APP),
      })
      .map(({ total, refundShare, app, ...rest }) => ({
        app,
        fields: { ...rest, total_fee: String(total), refund_fee: String(Math.max(1, Math.floor(total * refundShare))) },
      }));
    fc.assert(
      fc.property(refund, ({ app, fields: sent }) => {
        const body = encryptedRefundNotification({ apiKey, appid: app, mch_id: mchId, fields: sent });
        const read = readRefundNotification(body, merchant);
        expect(read).toMatchObject({
          ok: true,
          refund: {
            appId: app,
            outTradeNo: sent.out_trade_no,
            outRefundNo: sent.out_refund_no,
            transactionId: sent.transaction_id,
            refundId: sent.refund_id,
            totalFee: Number(sent.total_fee),
            refundFee: Number(sent.refund_fee),
            refundStatus: sent.refund_status,
            refundRecvAccount: sent.refund_recv_accout,
          },
        });
      }),
      { numRuns: 200 },
    );
  });

  it('a flipped bit anywhere in the ciphertext is refused, never read as a refund', () => {
    const length = Buffer.from(parseXml(callback()).req_info ?? '', 'base64').length;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: length - 1 }), fc.integer({ min: 0, max: 7 }), (index, bit) => {
        const result = readRefundNotification(
          withCiphertext((bytes) => flipBit(bytes, index, bit)),
          merchant,
        );
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws, whatever the body or the req_info', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), (body) => {
        expect(readRefundNotification(body, merchant).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.base64String({ maxLength: 200 }), fc.string({ maxLength: 200 })), (reqInfo) => {
        expect(readRefundNotification(callback({}, { req_info: reqInfo }), merchant).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('hostile refund callbacks', () => {
  const bomb = (() => {
    let entities = '<!ENTITY lol0 "lol">';
    for (let i = 1; i <= 9; i++) entities += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
    return `<?xml version="1.0"?><!DOCTYPE root [${entities}]><root><refund_recv_accout>&lol9;</refund_recv_accout></root>`;
  })();
  const xxe = (root: string, inside: string) =>
    `<?xml version="1.0"?><!DOCTYPE ${root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><${root}>${inside}</${root}>`;
  const innerFields = buildRootXml(refundNotificationFields({ fields: REFUND, now: NOW })).slice('<root>'.length, -'</root>'.length);

  const cases: ReadonlyArray<readonly [string, () => string | Uint8Array, RefundNotificationFailureReason]> = [
    // The cipher
    ['encrypted with another merchant key', () => callback({}, {}, OTHER_KEY), 'BAD_CIPHERTEXT'],
    ['a bit flipped in the last block (padding)', () => withCiphertext((b) => flipBit(b, -1)), 'BAD_CIPHERTEXT'],
    ['a bit flipped in the first block', () => withCiphertext((b) => flipBit(b, 3)), 'BAD_CIPHERTEXT'],
    ['a bit flipped in a middle block', () => withCiphertext((b) => flipBit(b, 200, 7)), 'BAD_CIPHERTEXT'],
    ['the last block cut off', () => withCiphertext((b) => b.subarray(0, b.length - 16)), 'BAD_CIPHERTEXT'],
    ['cut inside a block', () => withCiphertext((b) => b.subarray(0, b.length - 5)), 'BAD_CIPHERTEXT'],
    // ECB blocks decrypt on their own: what is left is text, but not a document.
    ['the first block dropped', () => withCiphertext((b) => b.subarray(16)), 'BAD_PLAINTEXT'],
    ['base64 cut mid-quantum', () => callback({}, { req_info: (parseXml(callback()).req_info ?? '').slice(0, -3) }), 'BAD_CIPHERTEXT'],
    [
      'base64 with characters outside the alphabet',
      () =>
        callback(
          {},
          { req_info: `${(parseXml(callback()).req_info ?? '').slice(0, 8)}!*${(parseXml(callback()).req_info ?? '').slice(10)}` },
        ),
      'BAD_CIPHERTEXT',
    ],
    [
      'base64 wrapped over lines',
      () => callback({}, { req_info: (parseXml(callback()).req_info ?? '').replace(/(.{76})/g, '$1\n') }),
      'BAD_CIPHERTEXT',
    ],
    [
      'URL-safe base64',
      () => callback({}, { req_info: (parseXml(callback()).req_info ?? '').replaceAll('+', '-').replaceAll('/', '_') }),
      'BAD_CIPHERTEXT',
    ],
    ['non-canonical base64 (unused bits set)', () => callback({}, { req_info: 'AAAAAAAAAAAAAAAAAAAAAB==' }), 'BAD_CIPHERTEXT'],
    ['req_info in the clear', () => callback({}, { req_info: goodPlaintext }), 'BAD_CIPHERTEXT'],
    [
      'the plaintext base64-encoded but not encrypted',
      () => callback({}, { req_info: Buffer.from(goodPlaintext).toString('base64') }),
      'BAD_CIPHERTEXT',
    ],
    [
      'a plaintext that is not UTF-8',
      () =>
        withPlaintext(
          Buffer.concat([
            Buffer.from('<root><refund_recv_accout>'),
            Buffer.from([0xc3, 0x28, 0xff]),
            Buffer.from('</refund_recv_accout></root>'),
          ]),
        ),
      'BAD_CIPHERTEXT',
    ],
    ['empty req_info', () => callback({}, { req_info: '' }), 'MISSING_FIELD'],
    ['no req_info', () => callback({}, { req_info: undefined }), 'MISSING_FIELD'],
    // The outer document
    ['return_code FAIL', () => callback({}, { return_code: 'FAIL', return_msg: 'system busy' }), 'RETURN_CODE_NOT_SUCCESS'],
    ['no return_code', () => callback({}, { return_code: undefined }), 'RETURN_CODE_NOT_SUCCESS'],
    ['a foreign appid', () => callback({}, { appid: 'wx0000000000000bad' }), 'FOREIGN_APPID'],
    ['our appid in another case', () => callback({}, { appid: appId.toUpperCase() }), 'FOREIGN_APPID'],
    ['no appid', () => callback({}, { appid: undefined }), 'MISSING_FIELD'],
    ['a foreign mch_id', () => callback({}, { mch_id: '10000101' }), 'FOREIGN_MCH_ID'],
    ['our mch_id padded with a space', () => callback({}, { mch_id: ` ${mchId}` }), 'FOREIGN_MCH_ID'],
    ['no mch_id', () => callback({}, { mch_id: undefined }), 'MISSING_FIELD'],
    ['XXE in the outer document', () => xxe('xml', `<return_code>SUCCESS</return_code><appid>&xxe;</appid>`), 'MALFORMED_XML'],
    ['an oversized outer document', () => callback({}, { padding: 'x'.repeat(70_000) }), 'MALFORMED_XML'],
    [
      'an outer document that is not UTF-8',
      () => Buffer.concat([Buffer.from(callback().replace('</xml>', '<x>')), Buffer.from([0xfe, 0xff]), Buffer.from('</x></xml>')]),
      'MALFORMED_XML',
    ],
    [
      'a nested outer field',
      () => callback({}, { appid: undefined }).replace('<xml>', `<xml><appid><id>${appId}</id></appid>`),
      'MALFORMED_XML',
    ],
    ['a truncated outer document', () => callback().slice(0, -20), 'MALFORMED_XML'],
    ['an empty body', () => '', 'MALFORMED_XML'],
    ['a JSON body', () => JSON.stringify({ return_code: 'SUCCESS', appid: appId }), 'MALFORMED_XML'],
    // The decrypted document
    [
      'XXE in the decrypted document',
      () => withPlaintext(xxe('root', `${innerFields}<refund_recv_accout>&xxe;</refund_recv_accout>`)),
      'BAD_PLAINTEXT',
    ],
    ['entity expansion in the decrypted document', () => withPlaintext(bomb), 'BAD_PLAINTEXT'],
    [
      'an oversized decrypted document',
      () => withPlaintext(`<root>${innerFields}<padding>${'x'.repeat(20_000)}</padding></root>`),
      'BAD_PLAINTEXT',
    ],
    ['a nested decrypted field', () => withPlaintext(`<root>${innerFields}<coupon><id>1</id></coupon></root>`), 'BAD_PLAINTEXT'],
    ['a repeated decrypted field', () => withPlaintext(`<root>${innerFields}<refund_fee>1</refund_fee></root>`), 'BAD_PLAINTEXT'],
    ['a decrypted document with an <xml> root', () => withPlaintext(`<xml>${innerFields}</xml>`), 'BAD_PLAINTEXT'],
    ['a truncated decrypted document', () => withPlaintext(goodPlaintext.slice(0, -30)), 'BAD_PLAINTEXT'],
    ['a decrypted JSON object', () => withPlaintext(JSON.stringify(REFUND)), 'BAD_PLAINTEXT'],
    ['an empty decrypted document', () => withPlaintext(''), 'BAD_PLAINTEXT'],
    // The decrypted fields
    ['no out_refund_no', () => callback({ out_refund_no: undefined }), 'MISSING_FIELD'],
    ['no out_trade_no', () => callback({ out_trade_no: undefined }), 'MISSING_FIELD'],
    ['no refund_fee', () => callback({ refund_fee: undefined }), 'MISSING_FIELD'],
    ['no refund_status', () => callback({ refund_status: undefined }), 'MISSING_FIELD'],
    ['an empty transaction_id', () => callback({ transaction_id: '' }), 'MISSING_FIELD'],
    ['refund_fee in yuan', () => callback({ refund_fee: '3.00' }), 'BAD_REFUND_FEE'],
    ['a negative refund_fee', () => callback({ refund_fee: '-300' }), 'BAD_REFUND_FEE'],
    ['refund_fee with a leading zero', () => callback({ refund_fee: '0300' }), 'BAD_REFUND_FEE'],
    ['refund_fee in full-width digits', () => callback({ refund_fee: '３００' }), 'BAD_REFUND_FEE'],
    ['refund_fee in exponent form', () => callback({ refund_fee: '3e2' }), 'BAD_REFUND_FEE'],
    ['refund_fee padded with spaces', () => callback({ refund_fee: ' 300' }), 'BAD_REFUND_FEE'],
    ['refund_fee 0', () => callback({ refund_fee: '0', settlement_refund_fee: '0' }), 'BAD_REFUND_FEE'],
    ['refund_fee over total_fee', () => callback({ refund_fee: '1001' }), 'BAD_REFUND_FEE'],
    ['refund_fee of 13 digits', () => callback({ refund_fee: '1000000000000' }), 'BAD_REFUND_FEE'],
    ['settlement_refund_fee over refund_fee', () => callback({ settlement_refund_fee: '301' }), 'BAD_REFUND_FEE'],
    ['a non-digit total_fee', () => callback({ total_fee: '10.00' }), 'BAD_TOTAL_FEE'],
    ['settlement_total_fee over total_fee', () => callback({ settlement_total_fee: '1001' }), 'BAD_TOTAL_FEE'],
    ['& and = injected into out_refund_no', () => callback({ out_refund_no: 'R1&refund_fee=1' }), 'BAD_FIELD'],
    ['& and = injected into out_trade_no', () => callback({ out_trade_no: '20240101A&total_fee=1' }), 'BAD_FIELD'],
    ['= injected into transaction_id', () => callback({ transaction_id: '4200=1' }), 'BAD_FIELD'],
    ['& injected into refund_id', () => callback({ refund_id: '5030&1' }), 'BAD_FIELD'],
    ['markup escaped into out_refund_no', () => callback({ out_refund_no: 'R1<script>' }), 'BAD_FIELD'],
    ['an out_refund_no over 64 characters', () => callback({ out_refund_no: 'R'.repeat(65) }), 'BAD_FIELD'],
    ['& injected into refund_account', () => callback({ refund_account: 'REFUND_SOURCE&x=1' }), 'BAD_FIELD'],
    ['a control character in refund_recv_accout', () => callback({ refund_recv_accout: 'bank\tcard' }), 'BAD_FIELD'],
    ['an impossible success_time', () => callback({ success_time: '2024-02-30 12:00:00' }), 'BAD_FIELD'],
    ['a success_time in another format', () => callback({ success_time: '20240101120506' }), 'BAD_FIELD'],
    ['refund_status PROCESSING', () => callback({ refund_status: 'PROCESSING' }), 'BAD_REFUND_STATUS'],
    ['refund_status in lower case', () => callback({ refund_status: 'success' }), 'BAD_REFUND_STATUS'],
  ];

  it('has at least 25 hostile callbacks', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases)('%s', (_label, body, reason) => {
    let result: ReturnType<typeof readRefundNotification> | undefined;
    expect(() => {
      result = readRefundNotification(body(), merchant);
    }).not.toThrow();
    expect(result).toMatchObject({ ok: false, reason });
    const message = result && !result.ok ? result.message : '';
    expect(message.length).toBeGreaterThan(0);
    // Neither the API key nor the AES key derived from it is ever in a message.
    expect(message).not.toContain(apiKey);
    expect(message).not.toContain(reqInfoKey(apiKey).toString('ascii'));
  });

  it('a FAIL reply can be built from every message (no control characters)', () => {
    for (const [, body] of cases) {
      const result = readRefundNotification(body(), merchant);
      // eslint-disable-next-line no-control-regex
      if (!result.ok) expect(result.message).not.toMatch(/[\u0000-\u001F]/);
    }
  });
});
