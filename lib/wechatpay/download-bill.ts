/**
 * `/pay/downloadbill`: asks WeChat Pay for one day's trade bill and reads it (see bill.ts).
 *
 * Kept apart from the client for now; it becomes one of the client's declared endpoints later. The
 * request is signed like every other (signFields, buildXml) and needs no client certificate. The
 * answer is not signed: it is checked for what it can be checked for (the bill type asked, our
 * merchant id on every line, a summary that adds up).
 *
 * The answer is read as it arrives (bill-stream.ts) and checked whole before anything of it is
 * handed on, while its bytes, as received (gzip), are copied to a file under the system's temporary
 * directory (Lambda's /tmp); the rows are then read again from that copy. So a bill of any size
 * costs a chunk and a line of memory, and nobody acts on rows of a bill that turns out cut short,
 * malformed or another merchant's.
 *
 * Resolves to the bill or to `{ ok: false, reason, message }` for anything WeChat Pay or the network
 * did; it throws only for a wrong configuration or request (WechatPayConfigError, TypeError), or
 * when the temporary directory cannot take the copy (the caller's run fails, to run again). No
 * retries: the schedule that calls it runs again, and RETRYABLE_BILL_FAILURES says when that helps.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MAX_BILL_BYTES } from './bill';
import type { BillFailure, BillFailureReason, BillLayoutName, BillOutline, BillResult, BillRow } from './bill';
import { streamBillAnswer } from './bill-stream';
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
  if (typeof billType !== 'string' || !Object.hasOwn(LAYOUTS_OF, billType))
    throw new TypeError('downloadBill: billType must be ALL, SUCCESS or REFUND');
  return billType;
}

function describeCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, ...) in cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (!(cause instanceof Error)) return String(cause).slice(0, 200);
  const code = (cause as { code?: unknown }).code;
  return (typeof code === 'string' ? `${code}: ${cause.message}` : cause.message).slice(0, 200);
}

/** A copy of the answer's bytes in a file that nobody else can open: removed from the directory at once, gone with its handle. */
interface Spool {
  file: FileHandle;
  /** Removes the file if it could not be removed at once (a system that keeps open files named). */
  close(): Promise<void>;
}

async function openSpool(): Promise<Spool> {
  const dir = await mkdtemp(join(tmpdir(), 'wechatpay-bill-'));
  const file = await open(join(dir, 'answer'), 'w+', 0o600);
  // Unnamed now: the space is freed when the handle closes, even if the process dies first.
  const removed = await rm(dir, { recursive: true, force: true }).then(
    () => true,
    () => false,
  );
  return {
    file,
    close: async () => {
      await file.close().catch(() => undefined);
      if (!removed) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** The bytes of an answer without a body. */
async function* noBytes(): AsyncGenerator<Uint8Array> {}

/** The answer's bytes, each written to the spool before it is handed on. */
async function* spooled(body: AsyncIterable<Uint8Array>, spool: Spool): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    await spool.file.write(chunk);
    yield chunk;
  }
}

/** A day's bill, read and checked whole; its rows are read again, from a copy, as often as asked. */
export interface OpenedBill extends BillOutline {
  /** The rows, in bill order, read from the copy. */
  rows(): AsyncGenerator<BillRow, void, undefined>;
  /** Removes the copy; always call it once done. */
  close(): Promise<void>;
}

/**
 * Reads the answer as it streams in, to the end: the bill's outline, or the first failure. Every
 * row must carry `mchId`, and the bill must be of one of `layouts`.
 */
async function readThrough(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  mchId: string,
  billType: DownloadBillType,
): Promise<BillOutline | BillFailure> {
  const reading = streamBillAnswer(body, { maxBytes });
  for (;;) {
    const next = await reading.next();
    if (next.done) {
      const outline = next.value;
      if (outline.ok && !LAYOUTS_OF[billType].includes(outline.layout)) {
        return failure('MALFORMED_BILL', `asked for the ${billType} bill, the answer is a ${outline.layout} bill`);
      }
      return outline;
    }
    if (next.value.mchId !== mchId) {
      const foreign = failure(
        'FOREIGN_BILL',
        `the bill has a line of merchant ${JSON.stringify(next.value.mchId.slice(0, 32))}, not ${mchId}`,
      );
      // Nothing more of it is read.
      await reading.return(foreign);
      return foreign;
    }
  }
}

/**
 * Downloads one day's bill and checks it whole, keeping a copy of it: its rows are then read from
 * the copy, in bill order, with `rows()`. The caller closes it.
 */
export async function openBill(options: DownloadBillOptions, request: DownloadBillRequest): Promise<OpenedBill | BillFailure> {
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
  const spool = await openSpool();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), config.timeoutMs);
  let outline: BillOutline | BillFailure;
  try {
    const response = await config.fetch(config.url, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body,
      signal: controller.signal,
    });
    if (response.status < 200 || response.status >= 300) {
      await response.body?.cancel().catch(() => undefined);
      outline = failure('NETWORK_ERROR', `WeChat Pay downloadbill answered HTTP ${response.status} (is baseUrl right?)`);
    } else {
      outline = await readThrough(spooled(response.body ?? noBytes(), spool), config.maxBytes, options.mchId, billType);
    }
  } catch (error) {
    outline = controller.signal.aborted
      ? failure('NETWORK_ERROR', `WeChat Pay downloadbill did not answer within ${config.timeoutMs} ms`)
      : failure('NETWORK_ERROR', `WeChat Pay downloadbill could not be reached at ${config.url} (${describeCause(error)})`);
  } finally {
    clearTimeout(timer);
  }
  if (!outline.ok) {
    await spool.close();
    return outline;
  }
  const { maxBytes } = config;
  return {
    ...outline,
    async *rows() {
      const reading = streamBillAnswer(spool.file.createReadStream({ start: 0, autoClose: false }), { maxBytes });
      for (;;) {
        const next = await reading.next();
        if (next.done) {
          // Read and checked whole once already: only the copy itself can fail now.
          if (!next.value.ok) throw new Error(`the copy of the bill could not be read again: ${next.value.message}`);
          return;
        }
        yield next.value;
      }
    },
    close: () => spool.close(),
  };
}

/** Downloads and reads one day's bill, every row in memory: for small bills (openBill reads any size). */
export async function downloadBill(options: DownloadBillOptions, request: DownloadBillRequest): Promise<BillResult> {
  const bill = await openBill(options, request);
  if (!bill.ok) return bill;
  try {
    const rows: BillRow[] = [];
    for await (const row of bill.rows()) rows.push(row);
    return { ok: true, layout: bill.layout, rows, summary: bill.summary };
  } finally {
    await bill.close();
  }
}
