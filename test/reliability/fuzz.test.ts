import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFrontendOrderRequest, parseMerchantOrderRequest } from '../../lib/orders/create-request';
import { InvalidOrderRequestError } from '../../lib/orders/errors';
import { XmlFormatError } from '../../lib/wechatpay/errors';
import { parseNotification, verifyNotification } from '../../lib/wechatpay/notification';
import { sign, signFields, verifySignature, type Fields } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { reportFigures, scale } from './support';

const RUNS = scale(300, 3_000);
const figures: Record<string, number> = {};
const run = <T>(name: string, property: fc.IProperty<T> | fc.IAsyncProperty<T>) => {
  fc.assert(property as fc.IProperty<T>, { numRuns: RUNS });
  figures[name] = RUNS;
};
afterAll(() => reportFigures('fuzzing', { runsPerProperty: RUNS, ...figures }));

const fieldName = fc.stringMatching(/^[a-z_][a-z0-9_]{0,15}$/).filter((name) => name !== 'sign' && name !== 'sign_type');
// Values XML can carry (no C0 controls but tab/newline, no CR which parsers turn into LF).
// eslint-disable-next-line no-control-regex
const fieldValue = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((v) => !/[\u0000-\u0008\u000B-\u001F\r\uFFFE\uFFFF]/.test(v));
const document = fc.dictionary(fieldName, fieldValue, { minKeys: 1, maxKeys: 12 });
const key = fc.string({ unit: fc.constantFrom(...'abcdef0123456789'), minLength: 32, maxLength: 32 });
const signType = fc.constantFrom('MD5' as const, 'HMAC-SHA256' as const);

/** Calls `f`; anything thrown that is not one of `allowed` fails the property. */
function onlyThrows(allowed: Array<new (...args: never[]) => Error>, f: () => unknown): { threw: boolean } {
  try {
    f();
    return { threw: false };
  } catch (error) {
    if (!allowed.some((type) => error instanceof type)) throw error;
    return { threw: true };
  }
}

describe('the XML parser', () => {
  it('never throws anything but XmlFormatError, and what it returns is a flat map of strings', () => {
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      // Mutations of real documents: a piece cut, inserted or replaced.
      fc.tuple(document, fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 12 })).map(([fields, at, cut, insert]) => {
        const xml = buildXml(fields);
        const i = at % (xml.length + 1);
        return xml.slice(0, i) + insert + xml.slice(i + cut);
      }),
    );
    run(
      'xmlParserInputs',
      fc.property(input, (raw) => {
        let out: Fields | undefined;
        onlyThrows([XmlFormatError], () => (out = parseXml(raw)));
        if (out) {
          expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
          for (const value of Object.values(out)) expect(typeof value).toBe('string');
        }
      }),
    );
  });

  it('returns exactly the fields a document was built from (no coercion, no trimming)', () => {
    run(
      'xmlRoundTrips',
      fc.property(document, (fields) => {
        expect(parseXml(buildXml(fields))).toEqual(fields);
      }),
    );
  });

  it('refuses every document with a DOCTYPE or ENTITY declaration', () => {
    run(
      'xmlDeclarationsRefused',
      fc.property(
        document,
        fc.constantFrom('<!DOCTYPE xml>', '<!DOCTYPE xml [<!ENTITY e "x">]>', '<!doctype xml SYSTEM "http://x">'),
        (fields, declaration) => {
          expect(() => parseXml(declaration + buildXml(fields))).toThrow(XmlFormatError);
        },
      ),
    );
  });
});

describe('signature verification', () => {
  it('accepts exactly what was signed with the key and sign type', () => {
    run(
      'signaturesAccepted',
      fc.property(document, key, signType, (fields, apiKey, type) => {
        const signed = { ...fields, sign: sign(fields, apiKey, type) };
        expect(verifySignature(signed, apiKey, type)).toMatchObject({ ok: true });
      }),
    );
  });

  it('refuses any changed value, added field, other key, other sign type or random sign, and never throws', () => {
    const change = fc.oneof(
      fc.record({
        kind: fc.constant('value' as const),
        suffix: fc.string({ minLength: 1, maxLength: 4 }).filter((s) => s.trim() !== '' || s.length > 0),
      }),
      fc.record({ kind: fc.constant('add' as const), name: fieldName, value: fieldValue.filter((v) => v !== '') }),
      fc.record({ kind: fc.constant('key' as const), other: key }),
      fc.record({ kind: fc.constant('type' as const) }),
      fc.record({ kind: fc.constant('random' as const), sign: fc.string({ maxLength: 80 }) }),
    );
    run(
      'tamperingRefused',
      fc.property(document, key, signType, change, (fields, apiKey, type, how) => {
        let check;
        const signed: Fields = { ...fields, sign: sign(fields, apiKey, type) };
        const names = Object.keys(fields).filter((name) => name !== 'sign' && name !== 'sign_type');
        switch (how.kind) {
          case 'value': {
            fc.pre(names.length > 0);
            signed[names[0]!] = `${signed[names[0]!]}${how.suffix}`;
            fc.pre(signed[names[0]!] !== '');
            check = verifySignature(signed, apiKey, type);
            break;
          }
          case 'add':
            fc.pre(!(how.name in signed));
            signed[how.name] = how.value;
            check = verifySignature(signed, apiKey, type);
            break;
          case 'key':
            fc.pre(how.other !== apiKey);
            check = verifySignature(signed, how.other, type);
            break;
          case 'type':
            fc.pre(fields.sign_type === undefined);
            check = verifySignature(signed, apiKey, type === 'MD5' ? 'HMAC-SHA256' : 'MD5');
            break;
          case 'random':
            fc.pre(how.sign.toUpperCase() !== signed.sign);
            signed.sign = how.sign;
            check = verifySignature(signed, apiKey, type);
            break;
        }
        expect(check.ok).toBe(false);
      }),
    );
  });

  it('a callback is never verified without our key, whatever its fields', () => {
    const callbackFields = fc.record({
      return_code: fc.constantFrom('SUCCESS', 'FAIL', ''),
      result_code: fc.constantFrom('SUCCESS', 'FAIL', ''),
      appid: fc.constantFrom(TEST_MERCHANT.appId, 'wx0000000000000bad'),
      mch_id: fc.constantFrom(TEST_MERCHANT.mchId, '1'),
      out_trade_no: fc.stringMatching(/^[0-9A-Za-z_-]{6,32}$/),
      total_fee: fc.oneof(fc.nat().map(String), fc.string({ maxLength: 6 })),
      transaction_id: fc.stringMatching(/^[0-9]{28}$/),
      sign_type: fc.constantFrom(undefined, 'MD5', 'HMAC-SHA256', 'SHA1'),
    });
    run(
      'forgedCallbacksRefused',
      fc.property(callbackFields, key, signType, (f, otherKey, type) => {
        fc.pre(otherKey !== TEST_MERCHANT.apiKey);
        const parsed = parseNotification(buildXml(signFields(f, otherKey, type, { declareSignType: false })));
        if (!parsed.ok) return;
        const verified = verifyNotification(parsed, {
          apiKey: TEST_MERCHANT.apiKey,
          appId: TEST_MERCHANT.appId,
          mchId: TEST_MERCHANT.mchId,
          orderSignType: type,
        });
        expect(verified.ok).toBe(false);
      }),
    );
  });
});

describe('create-order validation', () => {
  const context = { clientIp: '203.0.113.7' };
  const text = fc.oneof(fc.string({ maxLength: 140 }), fc.string({ unit: 'grapheme', maxLength: 140 }), fc.constant(''));
  const body = fc.record(
    {
      tradeType: fc.oneof(fc.constantFrom('JSAPI', 'NATIVE', 'MWEB', 'APP'), fc.string({ maxLength: 8 }), fc.anything()),
      totalFee: fc.oneof(fc.integer({ min: -10, max: 200_000_000 }), fc.double(), fc.string({ maxLength: 5 }), fc.anything()),
      description: fc.oneof(text, fc.anything()),
      openid: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/), fc.string({ maxLength: 10 }), fc.anything()),
      productId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/), fc.string({ maxLength: 40 })),
      attach: fc.oneof(text, fc.anything()),
      sceneInfo: fc.oneof(fc.record({ h5_info: fc.record({ type: fc.constantFrom('Wap', 'IOS', 'Android', 'Web') }) }), fc.anything()),
      idempotencyKey: fc.oneof(fc.stringMatching(/^[\x21-\x7E]{1,70}$/), fc.string({ maxLength: 10 })),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  );

  it('throws nothing but InvalidOrderRequestError, and accepts only what the contract allows (merchant orders)', () => {
    run(
      'createBodies',
      fc.property(fc.oneof(body, fc.anything()), (input) => {
        const verifiedOpenid = undefined;
        let request: ReturnType<typeof parseMerchantOrderRequest> | undefined;
        onlyThrows([InvalidOrderRequestError], () => (request = parseMerchantOrderRequest(input, context)));
        if (!request) return;
        expect(input).not.toHaveProperty('extra');
        expect(['JSAPI', 'NATIVE', 'MWEB', 'APP']).toContain(request.tradeType);
        expect(Number.isInteger(request.totalFee) && request.totalFee >= 1 && request.totalFee <= 100_000_000).toBe(true);
        expect(request.description.length).toBeGreaterThanOrEqual(1);
        expect(request.description.length).toBeLessThanOrEqual(128);
        for (const value of [request.description, request.attach ?? '']) {
          // eslint-disable-next-line no-control-regex
          expect(value).not.toMatch(/[\u0000-\u001F\u007F\uD800-\uDFFF]/);
          expect(value.trim()).toBe(value);
        }
        if (request.attach) expect(Buffer.byteLength(request.attach)).toBeLessThanOrEqual(127);
        expect(request.clientIp).toBe(context.clientIp);
        if (request.tradeType === 'JSAPI') expect(request.openid).toBe(verifiedOpenid ?? (input as { openid: string }).openid);
        else expect(request.openid).toBeUndefined();
        if (request.sceneInfo) expect(request.tradeType).toBe('MWEB');
        if (request.productId) expect(request.tradeType).toBe('NATIVE');
      }),
    );
  });

  it('accepts every well-formed request', () => {
    const valid = fc.record({
      tradeType: fc.constantFrom('NATIVE', 'APP'),
      totalFee: fc.integer({ min: 1, max: 100_000_000 }),
      description: fc.stringMatching(/^[A-Za-z0-9\u4e00-\u9fa5][A-Za-z0-9 \u4e00-\u9fa5]{0,40}[A-Za-z0-9\u4e00-\u9fa5]$/),
    });
    run(
      'validCreateBodies',
      fc.property(valid, (input) => {
        expect(parseMerchantOrderRequest(input, context)).toMatchObject(input);
      }),
    );
  });

  it('a frontend order is items by sku and never an amount: throws nothing but InvalidOrderRequestError', () => {
    const item = fc.oneof(
      fc.record({
        sku: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
        quantity: fc.oneof(fc.integer({ min: -5, max: 1_200 }), fc.double(), fc.string({ maxLength: 4 })),
      }),
      fc.record({ sku: fc.anything(), quantity: fc.anything(), priceFen: fc.anything() }, { requiredKeys: [] }),
      fc.anything(),
    );
    const frontendBody = fc.record(
      {
        tradeType: fc.constantFrom('NATIVE', 'APP', 'JSAPI', 'MWEB'),
        items: fc.oneof(fc.array(item, { maxLength: 25 }), fc.anything()),
        totalFee: fc.integer({ min: 1, max: 100 }),
        description: text,
        openid: fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/),
      },
      { requiredKeys: ['tradeType'] },
    );
    const payer = fc.option(
      fc.record({ appId: fc.stringMatching(/^wx[0-9a-f]{16}$/), openid: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/) }),
      { nil: undefined },
    );
    run(
      'frontendBodies',
      fc.property(fc.oneof(frontendBody, fc.anything()), payer, (input, verified) => {
        let request: ReturnType<typeof parseFrontendOrderRequest> | undefined;
        onlyThrows([InvalidOrderRequestError], () => (request = parseFrontendOrderRequest(input, { ...context, payer: verified })));
        if (!request) return;
        expect(input).not.toHaveProperty('totalFee');
        expect(input).not.toHaveProperty('description');
        expect(request.items.length).toBeGreaterThanOrEqual(1);
        expect(request.items.length).toBeLessThanOrEqual(20);
        expect(new Set(request.items.map((line) => line.sku)).size).toBe(request.items.length);
        for (const line of request.items) {
          expect(Object.keys(line).sort()).toEqual(['quantity', 'sku']);
          expect(Number.isInteger(line.quantity) && line.quantity >= 1 && line.quantity <= 999).toBe(true);
        }
        // A verified payer's app and openid are the order's, and their keys are theirs alone.
        if (verified) {
          expect(request.appId).toBe(verified.appId);
          if (request.tradeType === 'JSAPI') expect(request.openid).toBe(verified.openid);
          expect(request.idempotencyScope).toBe(`payer:${verified.appId}:${verified.openid}`);
        } else {
          expect(request.idempotencyScope).toBe('anonymous');
        }
      }),
    );
  });
});
