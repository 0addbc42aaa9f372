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
 * By job: the shapes and limits (model.ts), amounts in fen (amounts.ts), the layouts' columns
 * (layouts.ts), the answer's bytes (answer.ts), a refusal (refusal.ts), the text (parse.ts).
 *
 * Never throws: every input gives `{ ok: true, ... }` or `{ ok: false, reason, message }`.
 */
export { feeYuanToFen, fenToYuan, yuanToFen } from './amounts';
export { corruptGzip, inflatedTooLarge, notUtf8, readBillAnswer } from './answer';
export { BILL_LAYOUTS, type BillColumn, type BillLayout, type SummaryColumn } from './layouts';
export {
  DEFAULT_MAX_BILL_BYTES,
  MAX_BILL_LINE_CHARS,
  RETRYABLE_BILL_FAILURES,
  type Bill,
  type BillFailure,
  type BillFailureReason,
  type BillLayoutName,
  type BillOutline,
  type BillResult,
  type BillRow,
  type BillSummary,
  type ReadBillOptions,
} from './model';
export { BillTextReader, emptySummary, parseBillText, SUMMED_FIELDS } from './parse';
