import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../lib/wechatpay/client-options';
import { WechatPayCommunicationError, WechatPayConfigError } from '../../../lib/wechatpay/errors';
import { createTransport, signedXml, type AnswerReader, type Endpoint } from '../../../lib/wechatpay/transport';
import { verifySignature } from '../../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { answer, ScriptedWechatPay } from '../../support/scripted-wechatpay';

let wechat: ScriptedWechatPay;

beforeEach(async () => {
  wechat = new ScriptedWechatPay();
  await wechat.start();
});
afterEach(async () => {
  await wechat.close();
});

const transport = () => createTransport(resolveOptions({ ...TEST_MERCHANT, baseUrl: wechat.url, retryDelayMs: 1 }));

/** A refund-shaped declaration: WeChat Pay takes it only with the merchant's client certificate. */
const NEEDS_CERT: Endpoint<{ outTradeNo: string }, void> = {
  name: 'refund',
  method: 'refund',
  path: '/secapi/pay/refund',
  needsClientCert: true,
  required: ['out_trade_no'],
  fields: ({ outTradeNo }) => ({ out_trade_no: outTradeNo }),
  answer: signedXml(() => undefined),
};

/** A downloadbill-shaped reader: text (GZIP here) on success, WeChat Pay's XML only on failure. */
const billText: AnswerReader<{ billDate: string }, string> = (raw, context) => {
  if (raw.contentType?.includes('xml')) {
    const fields = parseXml(raw.bytes);
    throw new WechatPayCommunicationError(`${context.endpoint}: ${fields.return_msg ?? ''}`);
  }
  return gunzipSync(raw.bytes).toString('utf8');
};

const BILL: Endpoint<{ billDate: string }, string> = {
  name: 'downloadbill',
  method: 'downloadBill',
  path: '/pay/downloadbill',
  needsClientCert: false,
  required: ['bill_date', 'bill_type'],
  fields: ({ billDate }) => ({ bill_date: billDate, bill_type: 'ALL', tar_type: 'GZIP' }),
  answer: billText,
};

describe('declared endpoints', () => {
  it('posts the signed fields to the declared path and reads the answer with the declared reader', async () => {
    const bill = '交易时间,公众账号ID\n`2024-01-01 08:15:02,`wxd930ea5d5a258f4f\n';
    wechat.then({ body: gzipSync(bill), contentType: 'application/x-gzip' });
    await expect(transport().call(BILL, { billDate: '20240101' }, 'HMAC-SHA256')).resolves.toBe(bill);
    const [request] = wechat.received;
    expect(request?.path).toBe('/pay/downloadbill');
    expect(request?.fields).toMatchObject({
      bill_date: '20240101',
      bill_type: 'ALL',
      appid: TEST_MERCHANT.appId,
      sign_type: 'HMAC-SHA256',
    });
    expect(verifySignature(request!.fields, TEST_MERCHANT.apiKey).ok).toBe(true);
  });

  it('lets a reader refuse a failure answered in XML', async () => {
    wechat.then({ body: buildXml({ return_code: 'FAIL', return_msg: 'No Bill Exist' }) });
    await expect(transport().call(BILL, { billDate: '20240101' }, 'MD5')).rejects.toThrow(/No Bill Exist/);
  });

  it('refuses an endpoint that needs the client certificate, before sending anything', async () => {
    await expect(transport().call(NEEDS_CERT, { outTradeNo: '20240101AbCdEfGhIjKlMnOpQrSt' }, 'MD5')).rejects.toBeInstanceOf(
      WechatPayConfigError,
    );
    expect(wechat.received).toHaveLength(0);
  });

  it('refuses a request without a required field, naming the method and the field', async () => {
    await expect(transport().call(BILL, { billDate: '' }, 'MD5')).rejects.toThrow('downloadBill: bill_date is required');
    expect(wechat.received).toHaveLength(0);
  });

  it("checks signed XML answers in WeChat Pay's three layers before the endpoint reads them", async () => {
    const echo: Endpoint<Record<string, never>, string> = {
      name: 'echo',
      method: 'echo',
      path: '/pay/echo',
      needsClientCert: false,
      required: [],
      fields: () => ({}),
      answer: signedXml((fields) => fields.echo ?? ''),
    };
    wechat.then(answer({ echo: 'read' }), answer({ echo: 'forged' }, 'MD5', 'x'.repeat(32)));
    await expect(transport().call(echo, {}, 'MD5')).resolves.toBe('read');
    await expect(transport().call(echo, {}, 'MD5')).rejects.toMatchObject({ code: 'INVALID_SIGNATURE' });
  });
});
