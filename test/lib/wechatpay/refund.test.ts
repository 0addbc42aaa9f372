import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWechatPayClient } from '../../../lib/wechatpay/client';
import { readClientCertificatePem } from '../../../lib/wechatpay/client-certificate';
import {
  WechatPayBusinessError,
  WechatPayCommunicationError,
  WechatPayConfigError,
  WechatPayNetworkError,
} from '../../../lib/wechatpay/errors';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { makeLocalCertificates } from '../../../dev/emulator/certs';
import { call, control, localCertificates, MERCHANT, orderFields, splitPem, startTestEmulator } from '../../support/emulator';

let emulator: RunningEmulator;
const certs = localCertificates(MERCHANT.mchId);
const certificate = async () => ({ ...splitPem(certs.clientPem), ca: certs.caPem });

beforeAll(async () => {
  emulator = await startTestEmulator({ tls: certs });
});
afterAll(() => emulator?.close());

const client = (overrides: Parameters<typeof createWechatPayClient>[0] extends infer O ? Partial<O> : never = {}) =>
  createWechatPayClient({
    ...MERCHANT,
    baseUrl: emulator.url,
    secapiBaseUrl: emulator.secapiUrl,
    clientCertificate: certificate,
    retryDelayMs: 1,
    ...overrides,
  });

async function paidOrder(totalFee = 100): Promise<string> {
  const fields = orderFields({ total_fee: String(totalFee) });
  await call(emulator, 'unifiedorder', fields);
  await control(emulator, 'POST', '/__sim/pay', { out_trade_no: fields.out_trade_no });
  return fields.out_trade_no as string;
}

describe('refund over mutual TLS', () => {
  it('presents the client certificate to /secapi/ and reads the accepted refund', async () => {
    const outTradeNo = await paidOrder();
    const accepted = await client().refund(
      { outTradeNo, outRefundNo: `R${outTradeNo}`, totalFee: 100, refundFee: 30, reason: '退货', notifyUrl: 'http://127.0.0.1:9/refund' },
      { signType: 'HMAC-SHA256' },
    );
    expect(accepted).toMatchObject({ outTradeNo, outRefundNo: `R${outTradeNo}`, refundFee: 30 });
    expect(accepted.refundId).toMatch(/^503/);
    const queried = await client().refundQuery({ outRefundNo: `R${outTradeNo}` }, { signType: 'MD5' });
    expect(queried.refunds).toEqual([
      expect.objectContaining({ outRefundNo: `R${outTradeNo}`, refundId: accepted.refundId, refundFee: 30 }),
    ]);
    expect(queried.outTradeNo).toBe(outTradeNo);
  });

  it('loads the certificate once, on the first call that needs it', async () => {
    let loads = 0;
    const counting = client({ clientCertificate: async () => ((loads += 1), certificate()) });
    const outTradeNo = await paidOrder();
    await counting.orderQuery({ outTradeNo }, { signType: 'MD5' });
    expect(loads).toBe(0);
    await counting.refund({ outTradeNo, outRefundNo: `A${outTradeNo}`, totalFee: 100, refundFee: 1 }, { signType: 'MD5' });
    await counting.refund({ outTradeNo, outRefundNo: `A${outTradeNo}`, totalFee: 100, refundFee: 1 }, { signType: 'MD5' });
    expect(loads).toBe(1);
  });

  it('without a certificate nothing is sent; a failed load is tried again on the next call', async () => {
    const outTradeNo = await paidOrder();
    await expect(
      client({ clientCertificate: undefined }).refund(
        { outTradeNo, outRefundNo: 'Rnone', totalFee: 100, refundFee: 1 },
        { signType: 'MD5' },
      ),
    ).rejects.toThrow(WechatPayConfigError);
    let attempts = 0;
    const flaky = client({
      clientCertificate: async () => {
        attempts += 1;
        if (attempts === 1) throw new Error('SSM unavailable');
        return certificate();
      },
    });
    await expect(flaky.refund({ outTradeNo, outRefundNo: 'Rflaky', totalFee: 100, refundFee: 1 }, { signType: 'MD5' })).rejects.toThrow(
      /SSM unavailable/,
    );
    await expect(
      flaky.refund({ outTradeNo, outRefundNo: 'Rflaky', totalFee: 100, refundFee: 1 }, { signType: 'MD5' }),
    ).resolves.toMatchObject({ outRefundNo: 'Rflaky' });
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(1);
  });

  it('the emulator refuses a refund sent without the client certificate (the plain port), and refunds nothing', async () => {
    const outTradeNo = await paidOrder();
    const error = await client({ secapiBaseUrl: emulator.url })
      .refund({ outTradeNo, outRefundNo: 'Rplain', totalFee: 100, refundFee: 1 }, { signType: 'MD5' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WechatPayCommunicationError);
    expect((error as Error).message).toMatch(/证书/);
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(0);
  });

  it('a certificate the server does not trust: a network error (retryable), nothing refunded', async () => {
    const stranger = makeLocalCertificates({ days: 1 });
    const outTradeNo = await paidOrder();
    const error = await client({ clientCertificate: async () => ({ ...splitPem(stranger.clientPem), ca: certs.caPem }), maxAttempts: 1 })
      .refund({ outTradeNo, outRefundNo: 'Rstranger', totalFee: 100, refundFee: 1 }, { signType: 'MD5' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WechatPayNetworkError);
    expect(((await control(emulator, 'GET', `/__sim/orders/${outTradeNo}`)).json.refunds as unknown[]).length).toBe(0);
  });

  it("WeChat Pay's refusals are business errors with its code; REFUNDNOTEXIST from refundquery", async () => {
    const outTradeNo = await paidOrder(100);
    const over = await client().refund({ outTradeNo, outRefundNo: 'Rover', totalFee: 100, refundFee: 100 }, { signType: 'MD5' });
    expect(over.refundFee).toBe(100);
    await new Promise((resolve) => setTimeout(resolve, 70));
    const error = await client()
      .refund({ outTradeNo, outRefundNo: 'Rover2', totalFee: 100, refundFee: 1 }, { signType: 'MD5' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WechatPayBusinessError);
    expect((error as WechatPayBusinessError).code).toBe('NOTENOUGH');
    expect((error as WechatPayBusinessError).retryable).toBe(false);
    const missing = await client()
      .refundQuery({ outRefundNo: 'Rnever' }, { signType: 'MD5' })
      .catch((e: unknown) => e);
    expect((missing as WechatPayBusinessError).code).toBe('REFUNDNOTEXIST');
  });

  it('refuses requests WeChat Pay would refuse, before sending', async () => {
    const refund = (request: Record<string, unknown>) =>
      client().refund({ outTradeNo: 'T0000000001', outRefundNo: 'R1', totalFee: 100, refundFee: 1, ...request } as never, {
        signType: 'MD5',
      });
    await expect(refund({ outRefundNo: 'bad no' })).rejects.toThrow(TypeError);
    await expect(refund({ refundFee: 0 })).rejects.toThrow(TypeError);
    await expect(refund({ refundFee: 101 })).rejects.toThrow(/over totalFee/);
    await expect(refund({ reason: 'x'.repeat(81) })).rejects.toThrow(TypeError);
    await expect(refund({ reason: '😀' })).rejects.toThrow(TypeError);
  });
});

describe('the client certificate PEM', () => {
  it('reads the certificate and key as wxpay cert writes them', () => {
    const read = readClientCertificatePem(certs.clientPem, 'test');
    expect(read.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(read.key).toMatch(/PRIVATE KEY-----$/);
  });

  it('refuses a PEM without a key, without a certificate, with a key of another certificate, or expired', () => {
    const { cert, key } = splitPem(certs.clientPem);
    const other = splitPem(makeLocalCertificates({ days: 1 }).clientPem);
    expect(() => readClientCertificatePem(cert, 'P')).toThrow(/exactly one private key/);
    expect(() => readClientCertificatePem(key, 'P')).toThrow(/no certificate/);
    expect(() => readClientCertificatePem(`${cert}\n${other.key}`, 'P')).toThrow(/does not belong/);
    expect(() => readClientCertificatePem(certs.clientPem, 'P', new Date(Date.now() + 400 * 24 * 3600 * 1000))).toThrow(/expired/);
    expect(() => readClientCertificatePem('garbage', 'P')).toThrow(WechatPayConfigError);
  });
});
