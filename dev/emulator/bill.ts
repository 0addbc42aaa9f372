import { gzipSync } from 'node:zlib';
import type { BillLayoutName, BillRow } from '../../lib/wechatpay/bill';
import { paymentRow, refundRow, writeBill } from '../wechatpay-documents/bill';
import { verifySignature } from '../../lib/wechatpay/sign';
import type { Fields } from '../../lib/wechatpay/sign';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../lib/wechatpay/time';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import type { ApiContext, Merchant } from './api';
import { SIM_PAYER_OPENID } from './identifiers';
import type { EmulatorState, Order } from './state';

/**
 * `/pay/downloadbill`: the day's trade bill, made from the emulator's own orders (and refunds, once
 * it keeps any: see BillRefundRecord). Unlike the other endpoints its success is not XML but the
 * bill text itself, gzipped when asked, and its refusals are unsigned XML with an `error_code`.
 */
export const DOWNLOADBILL_PATH = '/pay/downloadbill';

export const BILL_TYPES = ['ALL', 'SUCCESS', 'REFUND', 'RECHARGE_REFUND'] as const;

export interface BillAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/**
 * What the bill reads of a refund. The emulator keeps its refunds in `state.refunds` (dev/emulator/refunds.ts,
 * records with at least these fields), and each one appears as a REFUND line of the Beijing day it
 * was accepted.
 */
export interface BillRefundRecord {
  outTradeNo: string;
  outRefundNo: string;
  /** WeChat Pay's refund_id. */
  refundId: string;
  /** Fen. */
  refundFee: number;
  /** `yyyyMMddHHmmss` Beijing: when the refund was accepted; its bill day. */
  requestedAt: string;
  /** SUCCESS, PROCESSING, CHANGE or REFUNDCLOSE, as it stands when the bill is made. */
  status: string;
  /** `yyyyMMddHHmmss` Beijing, once it succeeded. */
  succeededAt?: string;
}

function refundsOf(state: EmulatorState): BillRefundRecord[] {
  const refunds = (state as EmulatorState & { refunds?: Iterable<BillRefundRecord> | Map<string, BillRefundRecord> }).refunds;
  if (refunds === undefined) return [];
  return refunds instanceof Map ? [...refunds.values()] : [...refunds];
}

/** `yyyyMMddHHmmss` → `yyyy-MM-dd HH:mm:ss`, the bill's time format. */
function billTime(compact: string): string {
  return `${compact.slice(0, 4)}-${compact.slice(4, 6)}-${compact.slice(6, 8)} ${compact.slice(8, 10)}:${compact.slice(10, 12)}:${compact.slice(12, 14)}`;
}

function lineOf(order: Order, merchant: Merchant) {
  return {
    appId: order.appId,
    mchId: merchant.mchId,
    transactionId: order.transactionId ?? '',
    outTradeNo: order.outTradeNo,
    openid: order.openid ?? SIM_PAYER_OPENID,
    tradeType: order.tradeType,
    productName: order.body,
    attach: order.attach,
    deviceInfo: order.deviceInfo,
  };
}

/**
 * The lines of one Beijing day (`yyyyMMdd`): payments by their time_end and refunds by when they
 * were accepted, in time order, as the layout of the bill type wants them. The fee is WeChat Pay's
 * standard 0.60%, rounded to whole fen (see wechatPayFeeFen).
 */
export function billRows(state: EmulatorState, merchant: Merchant, billDate: string, layout: BillLayoutName): BillRow[] {
  const rows: BillRow[] = [];
  if (layout !== 'REFUND') {
    for (const order of state.orders.values()) {
      if (order.timeEnd === undefined || !order.timeEnd.startsWith(billDate)) continue;
      rows.push(paymentRow({ ...lineOf(order, merchant), tradeTime: billTime(order.timeEnd), totalFeeFen: order.totalFee }));
    }
  }
  if (layout !== 'SUCCESS') {
    for (const refund of refundsOf(state)) {
      if (!refund.requestedAt.startsWith(billDate)) continue;
      const order = state.orders.get(refund.outTradeNo);
      if (!order) continue;
      rows.push(
        refundRow({
          ...lineOf(order, merchant),
          tradeTime: billTime(refund.requestedAt),
          refundId: refund.refundId,
          outRefundNo: refund.outRefundNo,
          refundFeeFen: refund.refundFee,
          refundStatus: refund.status,
          ...(layout === 'REFUND' ? { refundSuccessTime: refund.succeededAt ? billTime(refund.succeededAt) : '' } : {}),
        }),
      );
    }
  }
  return rows.sort((a, b) => a.tradeTime.localeCompare(b.tradeTime) || a.outTradeNo.localeCompare(b.outTradeNo));
}

/**
 * WeChat Pay's refusal: `return_code` FAIL, `return_msg`, `error_code`, unsigned. Known codes:
 * 20001 with `invalid bill_date` (w7corp/easywechat's tests; yansongda/pay#267) and `sign error`
 * (WeChat developer community); 20002 with `No Bill Exist` (WeChat Pay's documentation). The other
 * messages are those of WeChat Pay's error table; their error_code 20001 is assumed.
 */
function refusal(returnMsg: string, errorCode = '20001'): { answer: BillAnswer; outcome: Record<string, unknown> } {
  return {
    answer: {
      status: 200,
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: buildXml({ return_code: 'FAIL', return_msg: returnMsg, error_code: errorCode }),
    },
    outcome: { return_code: 'FAIL', return_msg: returnMsg, error_code: errorCode },
  };
}

const THREE_MONTHS = 3;

/**
 * A bill can be asked for a day that is over: before today (Beijing), and no more than three months
 * back (WeChat Pay: "对账单接口只能下载三个月以内的账单"); three calendar months, counted from today.
 */
export function checkBillDate(billDate: string, now: Date): boolean {
  const day = fromBeijingTimestamp(`${billDate}000000`);
  if (!/^\d{8}$/.test(billDate) || !day) return false;
  const today = toBeijingTimestamp(now).slice(0, 8);
  const [y, m, d] = [Number(today.slice(0, 4)), Number(today.slice(4, 6)), Number(today.slice(6, 8))];
  const earliest = new Date(Date.UTC(y, m - 1 - THREE_MONTHS, d)).toISOString().slice(0, 10).replaceAll('-', '');
  return billDate < today && billDate >= earliest;
}

const REQUIRED = ['appid', 'mch_id', 'nonce_str', 'sign', 'bill_date'] as const;

/** Answers one `/pay/downloadbill` call as WeChat Pay does, and logs it (never the key). */
export function answerDownloadBill(ctx: ApiContext, method: string, body: Buffer, now: Date = new Date()): BillAnswer {
  const { answer, outcome } = evaluate(ctx, method, body, now);
  ctx.log({ event: 'api_call', endpoint: 'downloadbill', ...outcome });
  return answer;
}

function evaluate(ctx: ApiContext, method: string, body: Buffer, now: Date): { answer: BillAnswer; outcome: Record<string, unknown> } {
  if (method !== 'POST') return refusal('require POST method');
  if (body.toString('utf8').trim() === '') return refusal('empty post data');
  let fields: Fields;
  try {
    fields = parseXml(body);
  } catch {
    return refusal('data format error');
  }
  if (REQUIRED.some((name) => !fields[name])) return refusal('missing parameter');
  if ((fields.nonce_str as string).length > 32) return refusal('nonce_str too long');
  const { merchant, state } = ctx;
  // Another merchant's request is checked against that merchant's key, which this one is not.
  if (fields.mch_id !== merchant.mchId || !verifySignature(fields, merchant.apiKey).ok) return refusal('sign error');
  if (fields.appid !== merchant.appId) return refusal('invalid appid');
  const billType = fields.bill_type || 'ALL';
  if (!(BILL_TYPES as readonly string[]).includes(billType)) return refusal('invalid bill_type');
  const gzip = fields.tar_type !== undefined && fields.tar_type !== '';
  if (gzip && fields.tar_type !== 'GZIP') return refusal('invalid tar_type, Only GZIP supported');
  const billDate = fields.bill_date as string;
  if (!checkBillDate(billDate, now)) return refusal('invalid bill_date');
  // The emulator has no recharge coupons, so it has no recharge refunds.
  const rows = billType === 'RECHARGE_REFUND' ? [] : billRows(state, merchant, billDate, billType as BillLayoutName);
  if (rows.length === 0) return refusal('No Bill Exist', '20002');
  // Written as the bill downloaded from WeChat Pay that the tests keep (a BOM, CRLF line ends).
  const text = writeBill(rows, { layout: billType as BillLayoutName, bom: true, lineEnding: '\r\n' });
  const outcome = { return_code: 'SUCCESS', bill_date: billDate, bill_type: billType, rows: rows.length, gzip };
  return {
    answer: gzip
      ? { status: 200, headers: { 'content-type': 'application/x-gzip' }, body: gzipSync(text) }
      : { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text },
    outcome,
  };
}
