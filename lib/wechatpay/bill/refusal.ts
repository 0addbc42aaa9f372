import { failure } from '../../result';
import { XmlFormatError } from '../errors';
import { parseXml } from '../xml';
import { describe, quote, type BillFailure } from './model';

/** WeChat Pay's refusal of a bill request: a small unsigned XML document, told apart by what it says. */

/** `return_msg` values (case-insensitive) and error codes, by what they mean. */
const NO_BILL = new Set(['no bill exist', 'no_bill_exist', '20002']);
const BILL_CREATING = new Set(['bill creating', 'bill_creating']);
const SYSTEM_ERROR = new Set(['systemerror', 'system error', 'compressgzip error', 'uncompressgzip error']);

/** What a refusal in XML means (a `return_code` other than FAIL is no refusal: a malformed answer). */
export function readRefusal(xml: string): BillFailure {
  let fields: Record<string, string>;
  try {
    fields = parseXml(xml);
  } catch (error) {
    const why = error instanceof XmlFormatError ? error.message : describe(error);
    return failure('MALFORMED_BILL', `the answer starts like XML but is not a WeChat Pay document: ${why}`);
  }
  if (fields.return_code !== 'FAIL') {
    return failure('MALFORMED_BILL', `the answer is XML with return_code ${quote(fields.return_code ?? '')}, neither a bill nor a refusal`);
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
