/**
 * Writes WeChat Pay trade bills: the emulator serves what this writes, and the tests check the
 * parser against it, so both sides of a bill share one writer. Not used by the product's functions.
 *
 * Format (see bill.ts): a header line, one line per row with every field behind a backquote, the
 * summary header and the summary line. Amounts are yuan with two decimals, the fee with five.
 */
import { BILL_LAYOUTS, emptySummary, fenToYuan, SUMMED_FIELDS } from '../../lib/wechatpay/bill';
import type { BillLayoutName, BillRow, BillSummary } from '../../lib/wechatpay/bill';

/** WeChat Pay's standard rate for most merchants (费率 column as WeChat Pay writes it). */
export const WECHATPAY_STANDARD_RATE = '0.60%';

const RATE = /^(0|[1-9][0-9]?)\.([0-9]{2})%$/;

/**
 * The fee WeChat Pay charges on an amount: the amount times the rate, rounded to the nearest fen,
 * half up. Rounding to whole fen (not truncating) fits every bill sample found: 6.00 at 0.60% is
 * 0.04000 (0.036 rounded up; WxJava WxPayBillResultTest), 0.03 at 39.00% is 0.01000 (0.0117) and
 * 0.01 at 39.00% is 0.00000 (0.0039; wechatpay-axios-plugin tests/fixtures/bill.ALL.csv), 0.01 at
 * 0.90% is 0.00000 (WeChat cloud hosting's bill sample). WeChat Pay documents no rule for exact
 * halves; half up is assumed. Integer arithmetic only: the rate is read as hundredths of a percent.
 */
export function wechatPayFeeFen(amountFen: number, rate: string = WECHATPAY_STANDARD_RATE): number {
  if (!Number.isSafeInteger(amountFen) || amountFen < 0) throw new TypeError(`amountFen must be a whole number >= 0, got ${amountFen}`);
  const m = RATE.exec(rate);
  if (!m) throw new TypeError(`rate must be written like 0.60%, got ${JSON.stringify(rate)}`);
  const basisPoints = Number(m[1]) * 100 + Number(m[2]);
  return Math.floor((amountFen * basisPoints + 5000) / 10000);
}

/** What every line needs; the rest is filled as WeChat Pay fills it. */
interface TradeLine {
  /** `yyyy-MM-dd HH:mm:ss` Beijing: the payment's time_end, or when the refund was accepted (not when it succeeded). */
  tradeTime: string;
  appId: string;
  mchId: string;
  transactionId: string;
  outTradeNo: string;
  openid: string;
  tradeType: string;
  productName: string;
  attach?: string;
  deviceInfo?: string;
  subMchId?: string;
  bankType?: string;
  rate?: string;
}

/** The columns a payment line and a refund line fill alike, from what the line says. */
function tradeColumns(line: TradeLine, rate: string) {
  return {
    tradeTime: line.tradeTime,
    appId: line.appId,
    mchId: line.mchId,
    subMchId: line.subMchId ?? '0',
    deviceInfo: line.deviceInfo ?? '',
    transactionId: line.transactionId,
    outTradeNo: line.outTradeNo,
    openid: line.openid,
    tradeType: line.tradeType,
    bankType: line.bankType ?? 'OTHERS',
    feeType: 'CNY',
    productName: line.productName,
    attach: line.attach ?? '',
    rate,
    rateRemark: '',
  };
}

/** What a payment line needs. */
export interface PaymentLine extends TradeLine {
  totalFeeFen: number;
  couponFeeFen?: number;
  /** Default totalFeeFen: no non-recharge coupon. */
  settlementTotalFeeFen?: number;
  /** Default: wechatPayFeeFen of the settled amount. */
  feeFen?: number;
}

/** A payment line (交易状态 SUCCESS): refund columns `0` and empty, as in WeChat Pay's bills. */
export function paymentRow(line: PaymentLine): BillRow {
  const rate = line.rate ?? WECHATPAY_STANDARD_RATE;
  const settled = line.settlementTotalFeeFen ?? line.totalFeeFen;
  // Assigned, not spread: spreading into a literal this size is slow enough to show in the bench's bills.
  return Object.assign(tradeColumns(line, rate), {
    kind: 'payment' as const,
    tradeState: 'SUCCESS',
    settlementTotalFeeFen: settled,
    couponFeeFen: line.couponFeeFen ?? 0,
    refundId: '0',
    outRefundNo: '0',
    refundFeeFen: 0,
    couponRefundFeeFen: 0,
    refundType: '',
    refundStatus: '',
    feeFen: line.feeFen ?? wechatPayFeeFen(settled, rate),
    totalFeeFen: line.totalFeeFen,
    appliedRefundFeeFen: 0,
  });
}

/** What a refund line needs. */
export interface RefundLine extends TradeLine {
  refundId: string;
  outRefundNo: string;
  refundFeeFen: number;
  /** Default SUCCESS. */
  refundStatus?: string;
  /** Default ORIGINAL (back the way it was paid). */
  refundType?: string;
  /** Default refundFeeFen. */
  appliedRefundFeeFen?: number;
  /**
   * REFUND bills only: `yyyy-MM-dd HH:mm:ss`, or empty while the refund is processing. When given,
   * the row also carries refundRequestTime (= tradeTime).
   */
  refundSuccessTime?: string;
  /** Default: minus wechatPayFeeFen of the refund (the fee given back). */
  feeFen?: number;
}

/** A refund line (交易状态 REFUND): order amounts 0, the fee given back as a negative amount. */
export function refundRow(line: RefundLine): BillRow {
  const rate = line.rate ?? WECHATPAY_STANDARD_RATE;
  const returned = wechatPayFeeFen(line.refundFeeFen, rate);
  return Object.assign(
    tradeColumns(line, rate),
    {
      kind: 'refund' as const,
      tradeState: 'REFUND',
      settlementTotalFeeFen: 0,
      couponFeeFen: 0,
      refundId: line.refundId,
      outRefundNo: line.outRefundNo,
      refundFeeFen: line.refundFeeFen,
      couponRefundFeeFen: 0,
      refundType: line.refundType ?? 'ORIGINAL',
      refundStatus: line.refundStatus ?? 'SUCCESS',
      feeFen: line.feeFen ?? (returned === 0 ? 0 : -returned),
      totalFeeFen: 0,
      appliedRefundFeeFen: line.appliedRefundFeeFen ?? line.refundFeeFen,
    },
    // Only REFUND bills have these columns; an ALL bill's refund line has neither.
    line.refundSuccessTime === undefined ? {} : { refundRequestTime: line.tradeTime, refundSuccessTime: line.refundSuccessTime },
  );
}

export interface WriteBillOptions {
  /** Default ALL (27 columns). */
  layout?: BillLayoutName;
  /** Start with a UTF-8 byte order mark, as some downloaded bills do. Default false. */
  bom?: boolean;
  /** Default `\n`; real bills also come with `\r\n`. */
  lineEnding?: '\n' | '\r\n';
}

/** The summary WeChat Pay writes under these rows: their count and their sums. */
export function summarize(rows: readonly BillRow[]): BillSummary {
  const summary = { ...emptySummary(), tradeCount: rows.length };
  for (const row of rows) {
    for (const field of SUMMED_FIELDS) summary[field] += row[field];
  }
  return summary;
}

function writeText(name: string, value: string | undefined): string {
  const text = value ?? '';
  // A value holding ",`" or a line break would move every field after it: no bill could carry it.
  if (text.includes(',`') || /[\r\n]/.test(text)) {
    throw new TypeError(`bill column ${name} cannot carry ${JSON.stringify(text.slice(0, 40))} (",\`" or a line break)`);
  }
  return text;
}

function writeAmount(name: string, fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new TypeError(`bill column ${name} must be whole fen >= 0, got ${fen}`);
  return fenToYuan(fen);
}

function writeFee(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new TypeError(`bill column 手续费 must be whole fen, got ${fen}`);
  return `${fenToYuan(fen)}000`;
}

/**
 * The lines of the bill of these rows, in order, each with its line end, the summary WeChat Pay adds
 * last: one line at a time, so a bill of any size can be written as a stream (the summary is summed
 * on the way).
 */
export function* billLines(rows: Iterable<BillRow>, options: WriteBillOptions = {}): Generator<string> {
  const layout = BILL_LAYOUTS[options.layout ?? 'ALL'];
  const end = options.lineEnding ?? '\n';
  yield `${options.bom ? '\uFEFF' : ''}${layout.columns.map((column) => column.names[0]).join(',')}${end}`;
  const summary = emptySummary();
  for (const row of rows) {
    const values = layout.columns.map((column) => {
      const name = column.names[0] as string;
      switch (column.type) {
        case 'text':
        case 'time':
          return writeText(name, row[column.field]);
        case 'amount':
          return writeAmount(name, row[column.field]);
        case 'fee':
          return writeFee(row.feeFen);
      }
    });
    summary.tradeCount += 1;
    for (const field of SUMMED_FIELDS) summary[field] += row[field];
    yield `\`${values.join(',`')}${end}`;
  }
  yield `${layout.summary.map((column) => column.names[0]).join(',')}${end}`;
  const written = layout.summary.map((column) => {
    if (column.type === 'count') return String(summary.tradeCount);
    if (column.type === 'fee') return writeFee(summary.feeFen);
    return fenToYuan(summary[column.field]);
  });
  yield `\`${written.join(',`')}${end}`;
}

/** Writes the bill of these rows, in order, with the summary WeChat Pay adds. */
export function writeBill(rows: readonly BillRow[], options: WriteBillOptions = {}): string {
  return [...billLines(rows, options)].join('');
}
