import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { encryptedRefundNotification, encryptReqInfo, refundNotificationFields } from '../../dev/wechatpay-documents/refund-notification';
import { buildXml } from '../../lib/wechatpay/xml';
import { startTestStack, type TestStack } from '../support/stack';
import { callback, create, refund, refundCallback } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { reportFigures, scanTable } from './support';

/**
 * Hostile refund callbacks through the real refundNotify handler: each is refused (FAIL) or, where
 * WeChat Pay itself could have sent it, acknowledged; none changes anything stored, none gets a 5xx.
 */
const OTHER_KEY = 'ffffffffffffffffffffffffffffffff';
const figures = { hostileCallbacks: 0, answeredFail: 0, acknowledged: 0, answered5xx: 0, itemsChanged: 0 };
const reasons = new Map<string, number>();
const { appId, mchId, apiKey } = TEST_MERCHANT;

// Set up before the cases are listed: a paid order with one refund recorded SUCCESS (its genuine
// callback delivered) and one still PROCESSING, and an unpaid order.
const stack: TestStack = await startTestStack({ refunds: true });
await stack.sim.faults({ dropNotifies: 1_000_000_000 });
const order = (await create({ tradeType: 'NATIVE', totalFee: 100, description: 'hostile refunds' })).body.outTradeNo as string;
await stack.sim.pay(order);
const transactionId = (await stack.sim.order(order)).transaction_id as string;
expect((await callback(paidCallback(order, 100, { transaction_id: transactionId }))).returnCode).toBe('SUCCESS');
const settled = (await refund(order, { refundFee: 30, idempotencyKey: randomUUID() })).body;
await new Promise((resolve) => setTimeout(resolve, 70));
const open = (await refund(order, { refundFee: 20, idempotencyKey: randomUUID() })).body;
const unpaid = (await create({ tradeType: 'NATIVE', totalFee: 100, description: 'hostile unpaid' })).body.outTradeNo as string;

/** The fields of a genuine callback of a refund of `order`. */
const genuine = (refundNo: string, refundFee: number, refundId: string, extra: Record<string, string | undefined> = {}) => ({
  transaction_id: transactionId,
  out_trade_no: order,
  out_refund_no: refundNo,
  refund_id: refundId,
  total_fee: '100',
  refund_fee: String(refundFee),
  ...extra,
});
const settledFields = genuine(settled.outRefundNo as string, 30, settled.refundId as string);
const openFields = genuine(open.outRefundNo as string, 20, open.refundId as string);
const document = (
  fields: Parameters<typeof encryptedRefundNotification>[0]['fields'],
  outer: Record<string, string | undefined> = {},
  key: string = apiKey,
) => encryptedRefundNotification({ apiKey: key, appid: appId, mch_id: mchId, fields, outer });
const settledDocument = document(settledFields);
const reqInfo = (fields: Record<string, string>, key: string = apiKey) =>
  encryptReqInfo(refundNotificationFields({ fields: fields as never }), key);
const outer = (req_info: string | undefined, extra: Record<string, string | undefined> = {}) =>
  buildXml({ return_code: 'SUCCESS', appid: appId, mch_id: mchId, nonce_str: 'n0nce', req_info, ...extra });

const goodCipher = reqInfo(openFields);
const flipped = Buffer.from(goodCipher, 'base64');
flipped[20] = (flipped[20] as number) ^ 0x55;

/** name, body, what the reply must be. */
const CASES: Array<[string, string | Uint8Array, 'FAIL' | 'SUCCESS']> = [
  ['req_info encrypted with another key', document(openFields, {}, OTHER_KEY), 'FAIL'],
  ['a byte of the ciphertext changed', outer(flipped.toString('base64')), 'FAIL'],
  ['ciphertext truncated inside a block', outer(goodCipher.slice(0, -8)), 'FAIL'],
  ['ciphertext truncated by a whole block', outer(Buffer.from(goodCipher, 'base64').subarray(0, -16).toString('base64')), 'FAIL'],
  ['ciphertext with its first block dropped', outer(Buffer.from(goodCipher, 'base64').subarray(16).toString('base64')), 'FAIL'],
  ['req_info that is not base64', outer('!!not*base64!!'), 'FAIL'],
  ['req_info in non-canonical base64', outer(`${goodCipher.slice(0, -2)}${goodCipher.at(-2) === 'A' ? 'B' : 'A'}=`), 'FAIL'],
  ['an empty req_info', outer(''), 'FAIL'],
  ['no req_info', outer(undefined), 'FAIL'],
  ['a foreign appid', document(openFields, { appid: 'wx0000000000000bad' }), 'FAIL'],
  ['a foreign mch_id', document(openFields, { mch_id: '1900000999' }), 'FAIL'],
  ['no appid', document(openFields, { appid: undefined }), 'FAIL'],
  ['an unknown order', document({ ...openFields, out_trade_no: '20990101unknownOrder000000' }), 'FAIL'],
  ['a refund of an unpaid order', document({ ...openFields, out_trade_no: unpaid, out_refund_no: 'Rforged1' }), 'FAIL'],
  ['the open refund with a changed refund_fee', document({ ...openFields, refund_fee: '21' }), 'FAIL'],
  ['the open refund with a changed total_fee', document({ ...openFields, total_fee: '101' }), 'FAIL'],
  ['the open refund with another transaction_id', document({ ...openFields, transaction_id: '4200000000000000000000000002' }), 'FAIL'],
  ['the open refund with another refund_id', document({ ...openFields, refund_id: '50300000000000000000000000009' }), 'FAIL'],
  ['a refund_fee over total_fee', document({ ...openFields, refund_fee: '101' }), 'FAIL'],
  ['an unknown refund_status', document({ ...openFields, refund_status: 'PAID' }), 'FAIL'],
  ['an out_refund_no with markup', document({ ...openFields, out_refund_no: 'R<x>' }), 'FAIL'],
  ['a success_time that is no time', document({ ...openFields, success_time: '2026-13-45 99:00:00' }), 'FAIL'],
  ['an unknown refund with a changed amount of the settled one', document({ ...settledFields, refund_fee: '31' }), 'FAIL'],
  [
    'XXE in the outer document',
    `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><return_code>SUCCESS</return_code><appid>${appId}</appid><mch_id>${mchId}</mch_id><req_info>&x;</req_info></xml>`,
    'FAIL',
  ],
  [
    'XXE inside req_info',
    outer(
      encryptReqInfo(
        '<?xml version="1.0"?><!DOCTYPE root [<!ENTITY x SYSTEM "file:///etc/passwd">]><root><out_refund_no>&x;</out_refund_no></root>',
        apiKey,
      ),
    ),
    'FAIL',
  ],
  [
    'entity expansion inside req_info',
    outer(
      encryptReqInfo(
        `<!DOCTYPE root [<!ENTITY a "${'a'.repeat(100)}"><!ENTITY b "&a;&a;&a;&a;">]><root><out_refund_no>&b;</out_refund_no></root>`,
        apiKey,
      ),
    ),
    'FAIL',
  ],
  ['an oversized body (1 MiB)', outer(`${goodCipher}${'A'.repeat(1024 * 1024)}`), 'FAIL'],
  [
    'an oversized plaintext (32 KiB)',
    outer(encryptReqInfo(`<root><out_refund_no>${'x'.repeat(32 * 1024)}</out_refund_no></root>`, apiKey)),
    'FAIL',
  ],
  ['a plaintext that is not <root>', outer(encryptReqInfo(`<xml><out_refund_no>R1</out_refund_no></xml>`, apiKey)), 'FAIL'],
  ['a plaintext that is not UTF-8', outer(encryptReqInfo(Uint8Array.from([0xff, 0xfe, 0x00, 0x3c]), apiKey)), 'FAIL'],
  ['a body that is not XML', '{"return_code":"SUCCESS"}', 'FAIL'],
  ['an empty body', '', 'FAIL'],
  ['bytes that are not UTF-8', Uint8Array.from([0x3c, 0x78, 0x6d, 0x6c, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x78, 0x6d, 0x6c, 0x3e]), 'FAIL'],
  ['nested elements in the outer document', `<xml><return_code>SUCCESS</return_code><appid><a>${appId}</a></appid></xml>`, 'FAIL'],
  // Acknowledged, as WeChat Pay could send them, and nothing changes:
  ["a replay of the settled refund's genuine callback", settledDocument, 'SUCCESS'],
  ['the settled refund reported CHANGE afterwards (kept as recorded)', document({ ...settledFields, refund_status: 'CHANGE' }), 'SUCCESS'],
  ['return_code FAIL', buildXml({ return_code: 'FAIL', return_msg: 'SYSTEMERROR' }), 'SUCCESS'],
];

describe('hostile refund callbacks', () => {
  it('the settled refund was recorded by its genuine callback first', async () => {
    expect((await refundCallback(settledDocument)).returnCode).toBe('SUCCESS');
  });

  it(`has at least 25 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  it.each(CASES)('%s: answered %s? nothing stored changes, never a 5xx', async (_name, body, expected) => {
    const before = await scanTable(stack);
    const reply = await refundCallback(body);
    figures.hostileCallbacks += 1;
    if (reply.status >= 500) figures.answered5xx += 1;
    expect(reply.status).toBe(200);
    expect(reply.returnCode, reply.returnMsg).toBe(expected);
    if (expected === 'FAIL') {
      figures.answeredFail += 1;
      expect(reply.returnMsg).toBeTruthy();
      const reason = (reply.returnMsg ?? '').replace(/[0-9A-Za-z_-]{20,}/g, '…').slice(0, 60);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    } else {
      figures.acknowledged += 1;
    }
    const after = await scanTable(stack);
    const changed = Object.keys({ ...before, ...after }).filter((pk) => JSON.stringify(before[pk]) !== JSON.stringify(after[pk]));
    figures.itemsChanged += changed.length;
    expect(changed).toEqual([]);
  });

  it('the open refund is still PROCESSING and its genuine callback still records it', async () => {
    const reply = await refundCallback(document(openFields));
    expect(reply.returnCode).toBe('SUCCESS');
    const stored = (await scanTable(stack))[order] as { refundedFee: number; refunds: Record<string, { status: string }> };
    expect(stored.refundedFee).toBe(50);
    expect(stored.refunds[open.outRefundNo as string]?.status).toBe('SUCCESS');
  });
});

afterAll(async () => {
  reportFigures('hostile refund callbacks', { ...figures, refusalReasons: Object.fromEntries(reasons) });
  await stack.close();
});
