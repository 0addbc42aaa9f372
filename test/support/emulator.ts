import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { nonceStr } from '../../lib/wechatpay/ids';
import { signFields } from '../../lib/wechatpay/sign';
import type { Fields, SignableFields, SignType } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import { listen, readBody } from '../../dev/emulator/http-server';
import { startEmulator } from '../../dev/emulator/server';
import type { EmulatorOptions, RunningEmulator } from '../../dev/emulator/server';

export const MERCHANT = TEST_MERCHANT;

export function startTestEmulator(options: Partial<EmulatorOptions> = {}): Promise<RunningEmulator> {
  return startEmulator({ ...MERCHANT, timeScale: 0.001, log: () => {}, ...options });
}

export function newOutTradeNo(): string {
  return `T${randomBytes(12).toString('hex')}`;
}

/** A valid NATIVE unified order, unsigned; overrides replace or (with undefined) remove fields. */
export function orderFields(overrides: SignableFields = {}): SignableFields {
  return {
    appid: MERCHANT.appId,
    mch_id: MERCHANT.mchId,
    nonce_str: nonceStr(),
    body: '测试商品-emulator',
    out_trade_no: newOutTradeNo(),
    total_fee: '101',
    spbill_create_ip: '203.0.113.7',
    // Nothing listens there: callbacks of orders a test pays without a receiver fail fast, locally.
    notify_url: 'http://127.0.0.1:9/wechatpay/notify',
    trade_type: 'NATIVE',
    product_id: 'sku-1',
    ...overrides,
  };
}

export interface ApiReply {
  status: number;
  text: string;
  fields: Fields;
}

/** Posts a raw body to a WeChat Pay endpoint of the emulator and reads its XML answer. */
export async function postRaw(emulator: RunningEmulator, path: string, body: string | undefined, method = 'POST'): Promise<ApiReply> {
  const response = await fetch(`${emulator.url}${path}`, { method, body, headers: { 'content-type': 'text/xml' } });
  const text = await response.text();
  return { status: response.status, text, fields: parseXml(text) };
}

/** Signs the fields (the product's signing code) and posts them as XML. */
export function call(
  emulator: RunningEmulator,
  endpoint: 'unifiedorder' | 'orderquery' | 'closeorder' | 'refundquery',
  fields: SignableFields,
  signType: SignType = 'MD5',
  key: string = MERCHANT.apiKey,
): Promise<ApiReply> {
  return postRaw(emulator, `/pay/${endpoint}`, buildXml(signFields(fields, key, signType)));
}

export function query(emulator: RunningEmulator, outTradeNo: string, signType: SignType = 'MD5'): Promise<ApiReply> {
  const fields = { appid: MERCHANT.appId, mch_id: MERCHANT.mchId, nonce_str: nonceStr(), out_trade_no: outTradeNo };
  return call(emulator, 'orderquery', fields, signType);
}

export function close(emulator: RunningEmulator, outTradeNo: string, signType: SignType = 'MD5'): Promise<ApiReply> {
  const fields = { appid: MERCHANT.appId, mch_id: MERCHANT.mchId, nonce_str: nonceStr(), out_trade_no: outTradeNo };
  return call(emulator, 'closeorder', fields, signType);
}

export async function control(
  emulator: RunningEmulator,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${emulator.url}${path}`, {
    method,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

export interface ReceivedCallback {
  at: number;
  fields: Fields;
}

export interface Receiver {
  url: string;
  received: ReceivedCallback[];
  close(): Promise<void>;
}

/**
 * A merchant's notify endpoint on 127.0.0.1: records every callback and answers with the XML
 * `answer` returns for the n-th (0-based) callback, or never answers when it returns undefined.
 */
export async function startReceiver(answer: (n: number) => string | undefined = () => 'SUCCESS'): Promise<Receiver> {
  const received: ReceivedCallback[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    void readBody(request).then((body) => {
      const n = received.length;
      received.push({ at: performance.now(), fields: parseXml(body as Buffer) });
      const returnCode = answer(n);
      if (returnCode === undefined) return;
      response
        .writeHead(200, { 'content-type': 'text/xml' })
        .end(buildXml({ return_code: returnCode, return_msg: returnCode === 'SUCCESS' ? 'OK' : 'not yet' }));
    });
  });
  const listening = await listen(server);
  return { url: `${listening.origin}/wechatpay/notify`, received, close: listening.close };
}

/**
 * The payment fields WeChat Pay reports of a paid JSAPI order of `orderFields` (1.01 yuan), alike in
 * orderquery's answer and in the callback.
 */
export function paidJsapiFields(outTradeNo: string, openid: string, attach: string): Fields {
  return {
    openid,
    is_subscribe: 'N',
    trade_type: 'JSAPI',
    total_fee: '101',
    fee_type: 'CNY',
    cash_fee: '101',
    out_trade_no: outTradeNo,
    attach,
  };
}

/** The local certificates, once per test process (three RSA keys: about a second). */
export { localCertificates } from '../../dev/emulator/certs';

export interface TlsIdentity {
  /** The CA the client trusts the server by. */
  ca: string;
  /** The client certificate and key (one PEM, as the product holds it); none to present no certificate. */
  clientPem?: string;
}

/** Splits a PEM holding a certificate and a private key. */
export function splitPem(pem: string): { cert: string; key: string } {
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0] ?? '';
  const key = /-----BEGIN (?:RSA )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA )?PRIVATE KEY-----/.exec(pem)?.[0] ?? '';
  return { cert, key };
}

/**
 * Posts raw XML over (mutual) TLS and reads the answer; rejects when the TLS handshake is refused.
 */
export function postTls(url: string, body: string, identity: TlsIdentity): Promise<ApiReply> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        ca: identity.ca,
        agent: false,
        ...(identity.clientPem ? splitPem(identity.clientPem) : {}),
      },
      (response) => {
        void readBody(response).then((raw) => {
          const text = (raw as Buffer).toString('utf8');
          let fields: Fields = {};
          try {
            fields = parseXml(text);
          } catch {
            fields = {};
          }
          resolve({ status: response.statusCode ?? 0, text, fields });
        }, reject);
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

/** A signed `/secapi/pay/refund` over mutual TLS to the emulator's TLS port. */
export function refundCall(
  emulator: RunningEmulator,
  fields: SignableFields,
  identity: TlsIdentity,
  signType: SignType = 'MD5',
): Promise<ApiReply> {
  return postTls(`${emulator.secapiUrl}/secapi/pay/refund`, buildXml(signFields(fields, MERCHANT.apiKey, signType)), identity);
}
