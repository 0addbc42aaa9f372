import { failure } from '../../result';
import { feeYuanToFen, fenToYuan, readCount, yuanToFen } from './amounts';
import { BILL_LAYOUTS, SUMMARY_HEADER_START, type BillLayout } from './layouts';
import { MAX_BILL_LINE_CHARS, quote, type BillFailure, type BillOutline, type BillResult, type BillRow, type BillSummary } from './model';
import { readRefusal } from './refusal';

/**
 * The bill text, line by line: the header says which layout it is, every data line is a row (its
 * fields start with a backquote, so that spreadsheets keep 28-digit ids; an empty field is a bare
 * backquote), and the summary, the last line, must count and add up the rows.
 */

/** Longest refusal read: WeChat Pay's XML refusals are a few hundred bytes. */
const MAX_REFUSAL_CHARS = 64 * 1024;

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
  return {
    tradeCount: 0,
    settlementTotalFeeFen: 0,
    refundFeeFen: 0,
    couponRefundFeeFen: 0,
    feeFen: 0,
    totalFeeFen: 0,
    appliedRefundFeeFen: 0,
  };
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
      const count = readCount(value);
      if (count === undefined) return failure('MALFORMED_BILL', `${where} is not a count`);
      summary.tradeCount = count;
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
    return failure('MALFORMED_BILL', `the summary counts ${summary.tradeCount} trades but the bill has ${rowCount} lines (cut short?)`);
  }
  for (const [i, field] of SUMMED_FIELDS.entries()) {
    const sum = sums[i] as bigint;
    if (sum !== BigInt(summary[field])) {
      return failure('MALFORMED_BILL', `the summary's ${field} is ${fenToYuan(summary[field])} yuan but the lines add up to ${sum} fen`);
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
    if (line.length > MAX_BILL_LINE_CHARS)
      return this.#fail(failure('MALFORMED_BILL', `line ${this.#lineNo} is over ${MAX_BILL_LINE_CHARS} characters: no bill line is`));
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
        if (!line.startsWith('`'))
          return this.#fail(failure('MALFORMED_BILL', 'the bill ends after its summary header without the summary (cut short?)'));
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
    if (this.#refusalChars > MAX_REFUSAL_CHARS)
      return this.#fail(
        failure('MALFORMED_BILL', `the answer starts like XML but is over ${MAX_REFUSAL_CHARS} characters: not a WeChat Pay refusal`),
      );
    this.#refusal.push(line);
    return undefined;
  }

  #header(line: string): BillFailure | undefined {
    if (line.startsWith('`')) return this.#fail(failure('MALFORMED_BILL', 'the bill has no header line: it starts with data'));
    const names = line.split(',');
    this.#layout = Object.values(BILL_LAYOUTS).find((candidate) => headerMatches(names, candidate.columns));
    if (!this.#layout) {
      return this.#fail(
        failure('MALFORMED_BILL', `unknown bill header of ${names.length} columns starting ${quote(names.slice(0, 3).join(','))}`),
      );
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
