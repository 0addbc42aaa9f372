/**
 * WeChat Pay's trade bill (`/pay/downloadbill`): what its answer means, and the bill text itself.
 *
 * The answer is one of: the bill as text (a header line, one line per payment or refund, a summary
 * header, a summary line); the same text gzipped (`tar_type=GZIP`); or, for any refusal, a small
 * unsigned XML document (`return_code` FAIL, `return_msg`, `error_code`), e.g. `No Bill Exist`
 * (20002) for a day without transactions. Peers tell XML from a bill by its leading `<`
 * (WxJava BaseWxPayServiceImpl.downloadRawBill); gzip is told by its magic bytes.
 *
 * Bill text: fields are separated by commas and every data field starts with a backquote (so that
 * spreadsheets keep 28-digit ids); header lines have none; an empty field is a bare backquote.
 * Amounts are yuan with up to two decimals (`0.01`, `6.00`, `0.0` and `0` in older bills), the fee
 * with five (`0.04000`), and are read here into integer fen with string arithmetic only.
 * Real files may start with a UTF-8 BOM and end lines with CRLF.
 *
 * Never throws: every input gives `{ ok: true, ... }` or `{ ok: false, reason, message }`.
 */
import { gunzipSync } from 'node:zlib';
import { XmlFormatError } from './errors';
import { parseXml } from './xml';

/** One line of the bill: a payment (交易状态 SUCCESS), a refund (REFUND), or another state. */
export interface BillRow {
  /** `payment` for 交易状态 SUCCESS, `refund` for REFUND, `other` for anything else (REVOKED, ...). */
  kind: 'payment' | 'refund' | 'other';
  /** 交易时间, `yyyy-MM-dd HH:mm:ss` Beijing: when it was paid, or when the refund was accepted. */
  tradeTime: string;
  /** 公众账号ID: the appid the trade was made with. */
  appId: string;
  /** 商户号 */
  mchId: string;
  /** 特约商户号 (older bills: 子商户号); `0` for a direct merchant. */
  subMchId: string;
  /** 设备号 */
  deviceInfo: string;
  /** 微信订单号 */
  transactionId: string;
  /** 商户订单号 */
  outTradeNo: string;
  /** 用户标识 */
  openid: string;
  /** 交易类型: JSAPI, NATIVE, APP, MWEB, MICROPAY, ... */
  tradeType: string;
  /** 交易状态: SUCCESS, REFUND, REVOKED, ... */
  tradeState: string;
  /** 付款银行 */
  bankType: string;
  /** 货币种类 */
  feeType: string;
  /** 应结订单金额: the order amount less non-recharge coupons; 0 on a refund row. (Older bills: 总金额.) */
  settlementTotalFeeFen: number;
  /** 代金券金额 (older bills: 代金券或立减优惠金额). */
  couponFeeFen: number;
  /** 微信退款单号; `0` on a payment row. */
  refundId: string;
  /** 商户退款单号; `0` on a payment row. */
  outRefundNo: string;
  /** 退款金额: the refund as settled; 0 on a payment row. */
  refundFeeFen: number;
  /** 充值券退款金额 (older bills: 代金券或立减优惠退款金额). */
  couponRefundFeeFen: number;
  /** 退款类型: ORIGINAL, BALANCE, ...; empty on a payment row. */
  refundType: string;
  /** 退款状态 when the bill was made: SUCCESS, PROCESSING, ...; empty on a payment row. */
  refundStatus: string;
  /** 商品名称 (the order's `body`). */
  productName: string;
  /** 商户数据包 (the order's `attach`). */
  attach: string;
  /** 手续费, signed: a refund row gives fee back with a negative amount. */
  feeFen: number;
  /** 费率, as written (`0.60%`). */
  rate: string;
  /** 订单金额: the order's `total_fee`; 0 on a refund row. (Older bills: 总金额.) */
  totalFeeFen: number;
  /** 申请退款金额: the refund asked for; 0 on a payment row. (Older bills: 退款金额.) */
  appliedRefundFeeFen: number;
  /** 费率备注 (older bills have none: empty). */
  rateRemark: string;
  /** 退款申请时间: REFUND bills only. */
  refundRequestTime?: string;
  /** 退款成功时间: REFUND bills only. */
  refundSuccessTime?: string;
}

/** The summary line. Older bills have five columns; the two they lack are filled as noted. */
export interface BillSummary {
  /** 总交易单数: the number of lines above. */
  tradeCount: number;
  /** 应结订单总金额 (older bills: 总交易额). */
  settlementTotalFeeFen: number;
  /** 退款总金额 (older bills: 总退款金额). */
  refundFeeFen: number;
  /** 充值券退款总金额 (older bills: 总代金券或立减优惠退款金额). */
  couponRefundFeeFen: number;
  /** 手续费总金额, signed. */
  feeFen: number;
  /** 订单总金额 (older bills: 总交易额). */
  totalFeeFen: number;
  /** 申请退款总金额 (older bills: 总退款金额). */
  appliedRefundFeeFen: number;
}

/**
 * Which bill the text is: the 27-column `ALL` bill of merchants since 2018 (免充值券 settlement),
 * the 24-column `ALL` bill before it, or the current `SUCCESS` (20) and `REFUND` (29) bills.
 */
export type BillLayoutName = 'ALL' | 'ALL_LEGACY' | 'SUCCESS' | 'REFUND';

export interface Bill {
  ok: true;
  layout: BillLayoutName;
  rows: BillRow[];
  summary: BillSummary;
}

/** A bill read through without keeping its rows: which bill it is, and its summary (which counts them). */
export interface BillOutline {
  ok: true;
  layout: BillLayoutName;
  summary: BillSummary;
}

export type BillFailureReason =
  /** WeChat Pay has no bill for that day: no transactions (`No Bill Exist`, error_code 20002). */
  | 'NO_BILL'
  /** The bill is not made yet: ask again after 10:00 Beijing (`Bill Creating`). */
  | 'BILL_CREATING'
  /** WeChat Pay failed on its side (`SYSTEMERROR`, `CompressGZip Error`): ask again later. */
  | 'SYSTEM_ERROR'
  /** WeChat Pay refused the request (`invalid bill_date`, `sign error`, ...): fix it before asking again. */
  | 'REFUSED'
  /** The answer is not a bill this code can read whole: cut short, wrong columns, bad amounts, bad gzip. */
  | 'MALFORMED_BILL'
  /** The answer, or what it decompresses to, is over the size limit (a gzip bomb, or a wrong URL). */
  | 'TOO_LARGE'
  /** The bill could not be fetched: network failure, timeout or an HTTP error (the download call only). */
  | 'NETWORK_ERROR'
  /** A row belongs to another merchant: this is not the bill that was asked for (the download call only). */
  | 'FOREIGN_BILL';

export interface BillFailure {
  ok: false;
  reason: BillFailureReason;
  message: string;
}

export type BillResult = Bill | BillFailure;

/** Failures after which asking again later can succeed. */
export const RETRYABLE_BILL_FAILURES: ReadonlySet<BillFailureReason> = new Set<BillFailureReason>([
  'BILL_CREATING',
  'SYSTEM_ERROR',
  'NETWORK_ERROR',
]);

/**
 * Default limit on the answer and on what it decompresses to: a bill line is about 300 bytes, so
 * this holds some 300,000 lines, far beyond this product's day.
 */
export const DEFAULT_MAX_BILL_BYTES = 100 * 1024 * 1024;

export interface ReadBillOptions {
  /** Limit on the answer's bytes and on its decompressed bytes. Default DEFAULT_MAX_BILL_BYTES. */
  maxBytes?: number;
}

/**
 * Longest line read, in characters. A bill line is a few hundred; the limit keeps a reader that
 * gets lines one at a time from holding a whole answer without line breaks, and bounds every value
 * a line can hand on (the reconciliation report stores some).
 */
export const MAX_BILL_LINE_CHARS = 16 * 1024;

/** Longest refusal read: WeChat Pay's XML refusals are a few hundred bytes. */
const MAX_REFUSAL_CHARS = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Amounts

/** Yuan with at most two decimals, no sign, no exponent, no leading zeros; at most 12 integer digits. */
const YUAN = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/;
/**
 * The fee: signed (refund rows give fee back), up to five decimals of which the last three must be
 * zero: WeChat Pay charges whole fen (`0.04000`), and a fraction of a fen is refused, not rounded.
 */
const FEE_YUAN = /^(-?)(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2})0{0,3})?$/;
/** The count: an integer, written `45.0` in some bills. */
const COUNT = /^(0|[1-9][0-9]{0,11})(?:\.0+)?$/;

function digitsToFen(integer: string, decimals: string | undefined): number {
  // Both parts are short digit strings, so these are exact integer operations, never a float parse.
  return Number(integer) * 100 + Number((decimals ?? '').padEnd(2, '0'));
}

/**
 * Exact integer fen of a yuan amount (`0.01` → 1, `100.00` → 10000, `0.0` → 0); undefined for
 * anything else: more than two decimals, a sign, an exponent, spaces, an empty string.
 */
export function yuanToFen(text: string): number | undefined {
  const match = YUAN.exec(text);
  return match ? digitsToFen(match[1] as string, match[2]) : undefined;
}

/** Exact integer fen of a (signed) fee written with up to five decimals, whole fen only. */
export function feeYuanToFen(text: string): number | undefined {
  const match = FEE_YUAN.exec(text);
  if (!match) return undefined;
  const fen = digitsToFen(match[2] as string, match[3]);
  // No negative zero: `-0.00000` is plain 0.
  return match[1] === '-' && fen !== 0 ? -fen : fen;
}

/** Yuan text of a whole number of fen: 1 → `0.01`, 10000 → `100.00`, -4 → `-0.04`. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new TypeError(`fen must be a safe integer, got ${fen}`);
  const abs = Math.abs(fen);
  return `${fen < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Layouts

type TextField =
  | 'tradeTime'
  | 'appId'
  | 'mchId'
  | 'subMchId'
  | 'deviceInfo'
  | 'transactionId'
  | 'outTradeNo'
  | 'openid'
  | 'tradeType'
  | 'tradeState'
  | 'bankType'
  | 'feeType'
  | 'refundId'
  | 'outRefundNo'
  | 'refundType'
  | 'refundStatus'
  | 'productName'
  | 'attach'
  | 'rate'
  | 'rateRemark'
  | 'refundRequestTime'
  | 'refundSuccessTime';
type AmountField =
  | 'settlementTotalFeeFen'
  | 'couponFeeFen'
  | 'refundFeeFen'
  | 'couponRefundFeeFen'
  | 'totalFeeFen'
  | 'appliedRefundFeeFen';

/** A column: its header (and the other names WeChat Pay has used for it) and how it is read. */
export type BillColumn =
  | { names: readonly string[]; field: TextField; type: 'text' | 'time' }
  | { names: readonly string[]; field: AmountField; type: 'amount' }
  | { names: readonly string[]; field: 'feeFen'; type: 'fee' };

export type SummaryColumn =
  | { names: readonly string[]; field: 'tradeCount'; type: 'count' }
  | { names: readonly string[]; field: Exclude<keyof BillSummary, 'tradeCount' | 'feeFen'>; type: 'amount' }
  | { names: readonly string[]; field: 'feeFen'; type: 'fee' };

export interface BillLayout {
  name: BillLayoutName;
  columns: readonly BillColumn[];
  summary: readonly SummaryColumn[];
}

const text = (field: TextField, ...names: string[]): BillColumn => ({ names, field, type: 'text' });
const time = (field: TextField, ...names: string[]): BillColumn => ({ names, field, type: 'time' });
const amount = (field: AmountField, ...names: string[]): BillColumn => ({ names, field, type: 'amount' });
const FEE: BillColumn = { names: ['手续费'], field: 'feeFen', type: 'fee' };

// The columns every layout starts with. 公众账号ID is 服务商的APPID and 特约商户号 is 子商户号 in some
// bills and documentation copies (CSDN copy of the old 9_6 page; WxJava WxPayBillResultTest).
const TRADE_COLUMNS: readonly BillColumn[] = [
  time('tradeTime', '交易时间'),
  text('appId', '公众账号ID', '服务商的APPID'),
  text('mchId', '商户号'),
  text('subMchId', '特约商户号', '子商户号'),
  text('deviceInfo', '设备号'),
  text('transactionId', '微信订单号'),
  text('outTradeNo', '商户订单号'),
  text('openid', '用户标识'),
  text('tradeType', '交易类型'),
  text('tradeState', '交易状态'),
  text('bankType', '付款银行'),
  text('feeType', '货币种类'),
];

const REFUND_COLUMNS: readonly BillColumn[] = [
  text('refundId', '微信退款单号'),
  text('outRefundNo', '商户退款单号'),
  amount('refundFeeFen', '退款金额'),
  amount('couponRefundFeeFen', '充值券退款金额'),
  text('refundType', '退款类型'),
  text('refundStatus', '退款状态'),
];

// After the trade columns of every current layout (the pre-2018 ALL bill had neither).
const SETTLEMENT_COLUMNS: readonly BillColumn[] = [
  amount('settlementTotalFeeFen', '应结订单金额'),
  amount('couponFeeFen', '代金券金额'),
];

// What was sold and WeChat Pay's fee on it: the same four columns in every layout.
const PRODUCT_COLUMNS: readonly BillColumn[] = [
  text('productName', '商品名称'),
  text('attach', '商户数据包'),
  FEE,
  text('rate', '费率'),
];

const SUMMARY: readonly SummaryColumn[] = [
  { names: ['总交易单数'], field: 'tradeCount', type: 'count' },
  { names: ['应结订单总金额'], field: 'settlementTotalFeeFen', type: 'amount' },
  { names: ['退款总金额'], field: 'refundFeeFen', type: 'amount' },
  { names: ['充值券退款总金额'], field: 'couponRefundFeeFen', type: 'amount' },
  { names: ['手续费总金额'], field: 'feeFen', type: 'fee' },
  { names: ['订单总金额'], field: 'totalFeeFen', type: 'amount' },
  { names: ['申请退款总金额'], field: 'appliedRefundFeeFen', type: 'amount' },
];

/**
 * The bills WeChat Pay writes. Sources: the 27-column `ALL` header and 7-column summary of
 * pay.weixin.qq.com/doc/v2/merchant/4011985040 and of a downloaded bill
 * (TheNorthMemory/wechatpay-axios-plugin tests/fixtures/bill.ALL.csv); the 24-column `ALL` and
 * 5-column summary of the pre-2018 documentation (old 9_6 page, copied at
 * blog.csdn.net/weixin_33268205/article/details/111897134, and WxJava WxPayBillResultTest); the
 * `SUCCESS` and `REFUND` headers of WxJava WxPayBillResultTest.
 */
export const BILL_LAYOUTS: Readonly<Record<BillLayoutName, BillLayout>> = {
  ALL: {
    name: 'ALL',
    columns: [
      ...TRADE_COLUMNS,
      ...SETTLEMENT_COLUMNS,
      ...REFUND_COLUMNS,
      ...PRODUCT_COLUMNS,
      amount('totalFeeFen', '订单金额'),
      amount('appliedRefundFeeFen', '申请退款金额'),
      text('rateRemark', '费率备注'),
    ],
    summary: SUMMARY,
  },
  ALL_LEGACY: {
    name: 'ALL_LEGACY',
    columns: [
      ...TRADE_COLUMNS,
      // Before 免充值券 settlement, the order amount was the amount settled.
      amount('totalFeeFen', '总金额'),
      amount('couponFeeFen', '代金券或立减优惠金额', '企业红包金额'),
      text('refundId', '微信退款单号'),
      text('outRefundNo', '商户退款单号'),
      amount('refundFeeFen', '退款金额'),
      amount('couponRefundFeeFen', '代金券或立减优惠退款金额', '企业红包退款金额'),
      text('refundType', '退款类型'),
      text('refundStatus', '退款状态'),
      ...PRODUCT_COLUMNS,
    ],
    summary: [
      { names: ['总交易单数'], field: 'tradeCount', type: 'count' },
      { names: ['总交易额'], field: 'totalFeeFen', type: 'amount' },
      { names: ['总退款金额'], field: 'refundFeeFen', type: 'amount' },
      { names: ['总代金券或立减优惠退款金额', '总企业红包退款金额'], field: 'couponRefundFeeFen', type: 'amount' },
      { names: ['手续费总金额'], field: 'feeFen', type: 'fee' },
    ],
  },
  SUCCESS: {
    name: 'SUCCESS',
    columns: [
      ...TRADE_COLUMNS,
      ...SETTLEMENT_COLUMNS,
      ...PRODUCT_COLUMNS,
      amount('totalFeeFen', '订单金额'),
      text('rateRemark', '费率备注'),
    ],
    summary: SUMMARY,
  },
  REFUND: {
    name: 'REFUND',
    columns: [
      ...TRADE_COLUMNS,
      ...SETTLEMENT_COLUMNS,
      time('refundRequestTime', '退款申请时间'),
      time('refundSuccessTime', '退款成功时间'),
      ...REFUND_COLUMNS,
      ...PRODUCT_COLUMNS,
      amount('totalFeeFen', '订单金额'),
      amount('appliedRefundFeeFen', '申请退款金额'),
      text('rateRemark', '费率备注'),
    ],
    summary: SUMMARY,
  },
};

/** The first header name of the summary: the line that ends the rows. */
const SUMMARY_HEADER_START = '总交易单数';

// ---------------------------------------------------------------------------------------------
// Reading an answer

function failure(reason: BillFailureReason, message: string): BillFailure {
  return { ok: false, reason, message };
}

function quote(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}...` : value);
}

// A BOM is kept, as in a string answer: BillTextReader skips it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads what `/pay/downloadbill` answered, whole: a bill (plain or gzip), a refusal in XML, or a
 * bare `No Bill Exist`. Gzip is recognised by its magic bytes whatever was asked, and inflated with
 * a limit, so a gzip bomb stops at `maxBytes`. bill-stream.ts reads the same answers as they arrive.
 */
export function readBillAnswer(body: Uint8Array | string, options: ReadBillOptions = {}): BillResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BILL_BYTES;
  const size = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  if (size > maxBytes) return failure('TOO_LARGE', `the answer has ${size} bytes, over the ${maxBytes}-byte limit`);
  if (typeof body === 'string') return parseBillText(body);
  let bytes = body;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: maxBytes });
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') return inflatedTooLarge(maxBytes);
      return corruptGzip(error);
    }
  }
  let decoded: string;
  try {
    decoded = utf8.decode(bytes);
  } catch {
    return notUtf8();
  }
  return parseBillText(decoded);
}

/** The failures of reading an answer's bytes, the same whether read whole or as they arrive. */
export const inflatedTooLarge = (maxBytes: number) => failure('TOO_LARGE', `the gzip answer inflates to over ${maxBytes} bytes (a gzip bomb?)`);
export const corruptGzip = (error: unknown) => failure('MALFORMED_BILL', `the gzip answer is corrupt or cut short (${describe(error)})`);
export const notUtf8 = () => failure('MALFORMED_BILL', 'the answer is not valid UTF-8 (gzip bytes read as text, or another encoding?)');

function describe(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 100) : String(error).slice(0, 100);
}

/** `return_msg` values (case-insensitive) and error codes, by what they mean. */
const NO_BILL = new Set(['no bill exist', 'no_bill_exist', '20002']);
const BILL_CREATING = new Set(['bill creating', 'bill_creating']);
const SYSTEM_ERROR = new Set(['systemerror', 'system error', 'compressgzip error', 'uncompressgzip error']);

function readRefusal(xml: string): BillFailure {
  let fields: Record<string, string>;
  try {
    fields = parseXml(xml);
  } catch (error) {
    const why = error instanceof XmlFormatError ? error.message : describe(error);
    return failure('MALFORMED_BILL', `the answer starts like XML but is not a WeChat Pay document: ${why}`);
  }
  if (fields.return_code !== 'FAIL') {
    return failure(
      'MALFORMED_BILL',
      `the answer is XML with return_code ${quote(fields.return_code ?? '')}, neither a bill nor a refusal`,
    );
  }
  const returnMsg = fields.return_msg ?? '';
  const codes = [returnMsg, fields.error_code, fields.err_code].map((value) => (value ?? '').trim().toLowerCase());
  const said = `${quote(returnMsg, 100)}${fields.error_code ? ` (error_code ${quote(fields.error_code)})` : ''}`;
  if (codes.some((code) => NO_BILL.has(code))) return failure('NO_BILL', `WeChat Pay has no bill for that day: ${said}`);
  if (codes.some((code) => BILL_CREATING.has(code))) {
    return failure('BILL_CREATING', `WeChat Pay is still making that bill, ask again after 10:00 Beijing: ${said}`);
  }
  if (codes.some((code) => SYSTEM_ERROR.has(code))) {
    return failure('SYSTEM_ERROR', `WeChat Pay failed on its side, ask again later: ${said}`);
  }
  return failure('REFUSED', `WeChat Pay refused the bill request: ${said}`);
}

// ---------------------------------------------------------------------------------------------
// Parsing bill text

const TRADE_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/**
 * A real `yyyy-MM-dd HH:mm:ss`, or undefined. The documentation's own sample of the old bill writes
 * full-width colons (`16：33：45`); they are read as colons.
 */
function readTime(value: string): string | undefined {
  const normalized = value.replaceAll('：', ':');
  const m = TRADE_TIME.exec(normalized);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  const same =
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s;
  return same ? normalized : undefined;
}

function headerMatches(names: readonly string[], columns: readonly { names: readonly string[] }[]): boolean {
  return names.length === columns.length && columns.every((column, i) => column.names.includes(names[i] as string));
}

/** Splits a data line: it starts with a backquote, and its fields are separated by ",`". */
function dataFields(line: string): string[] {
  return line.slice(1).split(',`');
}

function kindOf(tradeState: string): BillRow['kind'] {
  if (tradeState === 'SUCCESS') return 'payment';
  if (tradeState === 'REFUND') return 'refund';
  return 'other';
}

function emptyRow(): BillRow {
  return {
    kind: 'other',
    tradeTime: '',
    appId: '',
    mchId: '',
    subMchId: '',
    deviceInfo: '',
    transactionId: '',
    outTradeNo: '',
    openid: '',
    tradeType: '',
    tradeState: '',
    bankType: '',
    feeType: '',
    settlementTotalFeeFen: 0,
    couponFeeFen: 0,
    refundId: '',
    outRefundNo: '',
    refundFeeFen: 0,
    couponRefundFeeFen: 0,
    refundType: '',
    refundStatus: '',
    productName: '',
    attach: '',
    feeFen: 0,
    rate: '',
    totalFeeFen: 0,
    appliedRefundFeeFen: 0,
    rateRemark: '',
  };
}

function readRow(layout: BillLayout, line: string, lineNo: number): BillRow | BillFailure {
  const values = dataFields(line);
  if (values.length !== layout.columns.length) {
    return failure(
      'MALFORMED_BILL',
      `line ${lineNo} has ${values.length} fields, the header has ${layout.columns.length} (a line cut short, or a value holding ",\`"?)`,
    );
  }
  const row = emptyRow();
  for (const [i, column] of layout.columns.entries()) {
    const value = values[i] as string;
    // Only for a failure: quoting every value costs more than reading it.
    const where = () => `line ${lineNo} ${column.names[0]} ${quote(value)}`;
    switch (column.type) {
      case 'text':
        row[column.field] = value;
        break;
      case 'time': {
        const read = readTime(value);
        // Refund times are empty while a refund is still processing.
        if (read === undefined && !(column.field !== 'tradeTime' && value === '')) {
          return failure('MALFORMED_BILL', `${where()} is not a time yyyy-MM-dd HH:mm:ss`);
        }
        row[column.field] = read ?? '';
        break;
      }
      case 'amount': {
        const fen = yuanToFen(value);
        if (fen === undefined) return failure('MALFORMED_BILL', `${where()} is not an amount in yuan with at most 2 decimals`);
        row[column.field] = fen;
        break;
      }
      case 'fee': {
        const fen = feeYuanToFen(value);
        if (fen === undefined) return failure('MALFORMED_BILL', `${where()} is not a fee in whole fen`);
        row.feeFen = fen;
        break;
      }
    }
  }
  if (row.tradeState === '') return failure('MALFORMED_BILL', `line ${lineNo} has no 交易状态`);
  row.kind = kindOf(row.tradeState);
  if (layout.name === 'ALL_LEGACY') {
    row.settlementTotalFeeFen = row.totalFeeFen;
    row.appliedRefundFeeFen = row.refundFeeFen;
  }
  return row;
}

/** The amounts the summary adds up over the rows (its other field is their count). */
export const SUMMED_FIELDS: ReadonlyArray<Exclude<keyof BillSummary, 'tradeCount'>> = [
  'settlementTotalFeeFen',
  'refundFeeFen',
  'couponRefundFeeFen',
  'feeFen',
  'totalFeeFen',
  'appliedRefundFeeFen',
];

/** The summary of no rows: every field 0. */
export function emptySummary(): BillSummary {
  return { tradeCount: 0, settlementTotalFeeFen: 0, refundFeeFen: 0, couponRefundFeeFen: 0, feeFen: 0, totalFeeFen: 0, appliedRefundFeeFen: 0 };
}

function readSummary(layout: BillLayout, line: string, lineNo: number): BillSummary | BillFailure {
  const values = dataFields(line);
  if (values.length !== layout.summary.length) {
    return failure('MALFORMED_BILL', `the summary (line ${lineNo}) has ${values.length} fields, its header ${layout.summary.length}`);
  }
  const summary = emptySummary();
  for (const [i, column] of layout.summary.entries()) {
    const value = values[i] as string;
    const where = `summary ${column.names[0]} ${quote(value)}`;
    if (column.type === 'count') {
      const m = COUNT.exec(value);
      if (!m) return failure('MALFORMED_BILL', `${where} is not a count`);
      summary.tradeCount = Number(m[1]);
    } else {
      const fen = column.type === 'fee' ? feeYuanToFen(value) : yuanToFen(value);
      if (fen === undefined) return failure('MALFORMED_BILL', `${where} is not an amount in yuan`);
      summary[column.field] = fen;
    }
  }
  if (layout.name === 'ALL_LEGACY') {
    summary.settlementTotalFeeFen = summary.totalFeeFen;
    summary.appliedRefundFeeFen = summary.refundFeeFen;
  }
  return summary;
}

/** The summary must describe exactly the rows above it: a bill that lost lines is not read. */
function checkSummary(rowCount: number, sums: readonly bigint[], summary: BillSummary): BillFailure | undefined {
  if (summary.tradeCount !== rowCount) {
    return failure(
      'MALFORMED_BILL',
      `the summary counts ${summary.tradeCount} trades but the bill has ${rowCount} lines (cut short?)`,
    );
  }
  for (const [i, field] of SUMMED_FIELDS.entries()) {
    const sum = sums[i] as bigint;
    if (sum !== BigInt(summary[field])) {
      return failure(
        'MALFORMED_BILL',
        `the summary's ${field} is ${fenToYuan(summary[field])} yuan but the lines add up to ${sum} fen`,
      );
    }
  }
  return undefined;
}

/**
 * Reads a downloadbill answer's text one line at a time (without its line end; the first may start
 * with a BOM), keeping nothing of the rows but their count and their sums: each line gives its row,
 * a failure (after which the reader reads nothing more), or nothing (a blank line, a header); `end`
 * says how the answer ended. The header says which bill it is; every line must have the header's
 * number of fields; the summary, the last line, must count and add up the lines. An answer that
 * starts with `<` is a refusal in XML, and `No Bill Exist` alone says there is no bill.
 * Blank lines carry nothing; line numbers still count them, to point at the right line.
 */
export class BillTextReader {
  #lineNo = 0;
  #state: 'start' | 'noBill' | 'refusal' | 'rows' | 'summaryHeader' | 'summary' | 'failed' = 'start';
  #layout: BillLayout | undefined;
  #rowCount = 0;
  /** Sums of SUMMED_FIELDS, in its order. BigInt: a long bill's sum may pass Number's exact range even when every amount is within it. */
  readonly #sums: bigint[] = SUMMED_FIELDS.map(() => 0n);
  #noBillLine = '';
  #refusal: string[] = [];
  #refusalChars = 0;
  #summary: { line: string; no: number } | undefined;
  #failure: BillFailure | undefined;

  line(text: string): BillRow | BillFailure | undefined {
    if (this.#failure) return this.#failure;
    this.#lineNo += 1;
    const line = this.#lineNo === 1 && text.startsWith('\uFEFF') ? text.slice(1) : text;
    if (line.length > MAX_BILL_LINE_CHARS) return this.#fail(failure('MALFORMED_BILL', `line ${this.#lineNo} is over ${MAX_BILL_LINE_CHARS} characters: no bill line is`));
    if (this.#state === 'refusal') return this.#refusalLine(line);
    if (line.trim() === '') return undefined;
    switch (this.#state) {
      case 'start': {
        const trimmed = line.trim();
        if (trimmed.startsWith('<')) return this.#refusalLine(line);
        if (/^no bill exist$/i.test(trimmed)) {
          this.#state = 'noBill';
          this.#noBillLine = line;
          return undefined;
        }
        return this.#header(line);
      }
      case 'noBill':
        // Not a bare `No Bill Exist` after all: read as the header it then stands for (no bill's).
        return this.#header(this.#noBillLine);
      case 'rows':
        if (line.startsWith('`')) return this.#row(line);
        return this.#summaryHeader(line);
      case 'summaryHeader':
        if (!line.startsWith('`')) return this.#fail(failure('MALFORMED_BILL', 'the bill ends after its summary header without the summary (cut short?)'));
        this.#summary = { line, no: this.#lineNo };
        this.#state = 'summary';
        return undefined;
      default:
        return this.#fail(failure('MALFORMED_BILL', `line ${this.#lineNo} follows the summary`));
    }
  }

  end(): BillOutline | BillFailure {
    if (this.#failure) return this.#failure;
    switch (this.#state) {
      case 'start':
        return failure('MALFORMED_BILL', 'the bill is empty');
      case 'noBill':
        return failure('NO_BILL', 'WeChat Pay has no bill for that day (No Bill Exist)');
      case 'refusal':
        return readRefusal(this.#refusal.join('\n').trim());
      case 'rows':
        return failure('MALFORMED_BILL', `the bill ends after ${this.#rowCount} lines without its summary (cut short?)`);
      case 'summaryHeader':
        return failure('MALFORMED_BILL', 'the bill ends after its summary header without the summary (cut short?)');
      default: {
        const layout = this.#layout as BillLayout;
        const { line, no } = this.#summary as { line: string; no: number };
        const summary = readSummary(layout, line, no);
        if ('ok' in summary) return summary;
        return checkSummary(this.#rowCount, this.#sums, summary) ?? { ok: true, layout: layout.name, summary };
      }
    }
  }

  #fail(failed: BillFailure): BillFailure {
    this.#state = 'failed';
    this.#failure = failed;
    return failed;
  }

  #refusalLine(line: string): BillFailure | undefined {
    this.#state = 'refusal';
    this.#refusalChars += line.length + 1;
    if (this.#refusalChars > MAX_REFUSAL_CHARS) return this.#fail(failure('MALFORMED_BILL', `the answer starts like XML but is over ${MAX_REFUSAL_CHARS} characters: not a WeChat Pay refusal`));
    this.#refusal.push(line);
    return undefined;
  }

  #header(line: string): BillFailure | undefined {
    if (line.startsWith('`')) return this.#fail(failure('MALFORMED_BILL', 'the bill has no header line: it starts with data'));
    const names = line.split(',');
    this.#layout = Object.values(BILL_LAYOUTS).find((candidate) => headerMatches(names, candidate.columns));
    if (!this.#layout) {
      return this.#fail(failure('MALFORMED_BILL', `unknown bill header of ${names.length} columns starting ${quote(names.slice(0, 3).join(','))}`));
    }
    this.#state = 'rows';
    return undefined;
  }

  #row(line: string): BillRow | BillFailure {
    const row = readRow(this.#layout as BillLayout, line, this.#lineNo);
    if ('ok' in row) return this.#fail(row);
    this.#rowCount += 1;
    for (const [i, field] of SUMMED_FIELDS.entries()) this.#sums[i] = (this.#sums[i] as bigint) + BigInt(row[field]);
    return row;
  }

  #summaryHeader(line: string): BillFailure | undefined {
    const layout = this.#layout as BillLayout;
    if (!line.startsWith(SUMMARY_HEADER_START)) {
      return this.#fail(failure('MALFORMED_BILL', `line ${this.#lineNo} is neither a data line (\`...) nor the summary header`));
    }
    if (!headerMatches(line.split(','), layout.summary)) {
      return this.#fail(failure('MALFORMED_BILL', `line ${this.#lineNo} is not the summary header of a ${layout.name} bill`));
    }
    this.#state = 'summaryHeader';
    return undefined;
  }
}

/**
 * Reads a downloadbill answer's text whole (a leading BOM and CRLF line ends allowed): the bill with
 * its rows, or the failure BillTextReader finds.
 */
export function parseBillText(input: string): BillResult {
  const reader = new BillTextReader();
  const rows: BillRow[] = [];
  for (const line of input.split(/\r?\n/)) {
    const read = reader.line(line);
    if (read === undefined) continue;
    if ('ok' in read) return read;
    rows.push(read);
  }
  const outline = reader.end();
  return outline.ok ? { ok: true, layout: outline.layout, rows, summary: outline.summary } : outline;
}
