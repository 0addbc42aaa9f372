/**
 * `/pay/downloadbill`: asks WeChat Pay for one day's trade bill and reads it (see bill.ts).
 *
 * Kept apart from the client for now; it becomes one of the client's declared endpoints later. The
 * request is signed like every other (signFields, buildXml) and needs no client certificate. The
 * answer is not signed: it is checked for what it can be checked for (the bill type asked, our
 * merchant id on every line, a summary that adds up).
 *
 * Resolves to the bill or to `{ ok: false, reason, message }` for anything WeChat Pay or the network
 * did; it throws only for a wrong configuration or request (WechatPayConfigError, TypeError). No
 * retries: the schedule that calls it runs again, and RETRYABLE_BILL_FAILURES says when that helps.
 */
import { DEFAULT_MAX_BILL_BYTES, readBillAnswer } from './bill';
import type { BillFailure, BillFailureReason, BillLayoutName, BillResult } from './bill';
import { checkBaseUrl, checkMerchant, DEFAULT_BASE_URL } from './client-options';
import { WechatPayConfigError } from './errors';
import { nonceStr } from './ids';
import { isSignType, signFields } from './sign';
import type { SignType } from './sign';
import { fromBeijingTimestamp } from './time';
import { buildXml } from './xml';

export interface DownloadBillOptions {
  appId: string;
  mchId: string;
  /** The 32-character API v2 key. */
  apiKey: string;
  /** Default `https://api.mch.weixin.qq.com`; the emulator's URL locally. */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** For the whole exchange, reading the bill included. Default 30000. */
  timeoutMs?: number;
  /** Default HMAC-SHA256. */
  signType?: SignType;
  /** Limit on the answer and on what it inflates to. Default DEFAULT_MAX_BILL_BYTES. */
  maxBytes?: number;
}

export type DownloadBillType = 'ALL' | 'SUCCESS' | 'REFUND';

export interface DownloadBillRequest {
  /** `yyyyMMdd`, a Beijing day before today and within the last three months. */
  billDate: string;
  /** Default ALL: payments and refunds. */
  billType?: DownloadBillType;
  /** Ask for the bill gzipped (`tar_type=GZIP`). Default false. */
  gzip?: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const LAYOUTS_OF: Record<DownloadBillType, readonly BillLayoutName[]> = {
  ALL: ['ALL', 'ALL_LEGACY'],
  SUCCESS: ['SUCCESS'],
  REFUND: ['REFUND'],
};

function failure(reason: BillFailureReason, message: string): BillFailure {
  return { ok: false, reason, message };
}

interface Checked {
  url: string;
  fetch: typeof fetch;
  timeoutMs: number;
  signType: SignType;
  maxBytes: number;
}

function checkOptions(options: DownloadBillOptions): Checked {
  checkMerchant(options);
  const baseUrl = checkBaseUrl('baseUrl', options.baseUrl ?? DEFAULT_BASE_URL);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new WechatPayConfigError(`timeoutMs must be a positive whole number of milliseconds, got ${timeoutMs}`);
  }
  const signType = options.signType ?? 'HMAC-SHA256';
  if (!isSignType(signType)) throw new WechatPayConfigError('signType must be MD5 or HMAC-SHA256');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BILL_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new WechatPayConfigError(`maxBytes must be a positive whole number, got ${maxBytes}`);
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new WechatPayConfigError('fetch must be a function');
  return { url: `${baseUrl.replace(/\/+$/, '')}/pay/downloadbill`, fetch: fetchImpl, timeoutMs, signType, maxBytes };
}

function checkRequest(request: DownloadBillRequest): DownloadBillType {
  const { billDate } = request;
  if (typeof billDate !== 'string' || !/^\d{8}$/.test(billDate) || !fromBeijingTimestamp(`${billDate}000000`)) {
    throw new TypeError(`downloadBill: billDate must be a real day written yyyyMMdd, got ${JSON.stringify(billDate)}`);
  }
  const billType = request.billType ?? 'ALL';
  if (typeof billType !== 'string' || !Object.hasOwn(LAYOUTS_OF, billType)) throw new TypeError('downloadBill: billType must be ALL, SUCCESS or REFUND');
  return billType;
}

function describeCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, ...) in cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (!(cause instanceof Error)) return String(cause).slice(0, 200);
  const code = (cause as { code?: unknown }).code;
  return (typeof code === 'string' ? `${code}: ${cause.message}` : cause.message).slice(0, 200);
}

/** The answer's bytes, or undefined once they pass `maxBytes` (the rest is not read). */
async function readLimited(response: Response, maxBytes: number): Promise<Uint8Array | undefined> {
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Downloads and reads one day's bill. */
export async function downloadBill(options: DownloadBillOptions, request: DownloadBillRequest): Promise<BillResult> {
  const config = checkOptions(options);
  const billType = checkRequest(request);
  const body = buildXml(
    signFields(
      {
        appid: options.appId,
        mch_id: options.mchId,
        nonce_str: nonceStr(),
        bill_date: request.billDate,
        bill_type: billType,
        tar_type: request.gzip ? 'GZIP' : undefined,
      },
      options.apiKey,
      config.signType,
    ),
  );
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), config.timeoutMs);
  let bytes: Uint8Array | undefined;
  try {
    const response = await config.fetch(config.url, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body,
      signal: controller.signal,
    });
    if (response.status < 200 || response.status >= 300) {
      await response.body?.cancel().catch(() => undefined);
      return failure('NETWORK_ERROR', `WeChat Pay downloadbill answered HTTP ${response.status} (is baseUrl right?)`);
    }
    bytes = await readLimited(response, config.maxBytes);
  } catch (error) {
    if (controller.signal.aborted) {
      return failure('NETWORK_ERROR', `WeChat Pay downloadbill did not answer within ${config.timeoutMs} ms`);
    }
    return failure('NETWORK_ERROR', `WeChat Pay downloadbill could not be reached at ${config.url} (${describeCause(error)})`);
  } finally {
    clearTimeout(timer);
  }
  if (bytes === undefined) return failure('TOO_LARGE', `the answer is over the ${config.maxBytes}-byte limit`);
  const result = readBillAnswer(bytes, { maxBytes: config.maxBytes });
  if (!result.ok) return result;
  if (!LAYOUTS_OF[billType].includes(result.layout)) {
    return failure('MALFORMED_BILL', `asked for the ${billType} bill, the answer is a ${result.layout} bill`);
  }
  const foreign = result.rows.find((row) => row.mchId !== options.mchId);
  if (foreign) {
    return failure('FOREIGN_BILL', `the bill has a line of merchant ${JSON.stringify(foreign.mchId.slice(0, 32))}, not ${options.mchId}`);
  }
  return result;
}
