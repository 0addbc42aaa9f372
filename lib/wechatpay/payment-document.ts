/**
 * Checks that a signed document reporting a payment (a payment callback or an orderquery answer) is
 * one WeChat Pay could have written, beyond its signature.
 *
 * Why the signature is not enough: the v2 string to sign is `k1=v1&k2=v2&...` with nothing escaped,
 * so one signed string can be split into fields in more than one way. A value the payer chose and
 * WeChat Pay echoes back (`attach`) holding `&out_trade_no=<another order>&...` lets a genuine
 * callback be regrouped into a document that names another order as paid, under the same valid
 * signature. WeChat Pay never writes `&` or `=` in a payment document's values, and always sends the
 * fields required below, so a regrouped document is refused here whatever it claims.
 */
import { failure, type Failure } from '../result';
import { isBeijingTimestamp } from './time';
import type { Fields } from './sign';

export type PaymentDocumentFailureReason = 'FORGED_FIELD_BOUNDARY' | 'MISSING_FIELD' | 'BAD_FIELD';

export type PaymentDocumentFailure = Failure<PaymentDocumentFailureReason>;

const FIELD_BOUNDARY = /[&=]/;
const FEN = /^(0|[1-9][0-9]{0,11})$/;

/** The fields WeChat Pay sends with every successful payment, and what each must look like. */
const REQUIRED: ReadonlyArray<readonly [name: string, pattern: RegExp, shape: string]> = [
  ['nonce_str', /^[0-9A-Za-z]{1,32}$/, 'up to 32 letters and digits'],
  ['fee_type', /^CNY$/, 'CNY (orders are made in yuan)'],
  ['cash_fee', FEN, 'a whole number of fen'],
  ['total_fee', FEN, 'a whole number of fen'],
  ['transaction_id', /^[0-9]{28}$/, '28 digits'],
  ['time_end', /^[0-9]{14}$/, 'yyyyMMddHHmmss'],
];

/**
 * Whether the raw document (bytes or text) holds neither `&` nor `=` anywhere. Then none of the
 * values read from it can: a value is text of the document, either as it stands (CDATA, plain text)
 * or through an entity reference, and every entity reference begins with `&`. In UTF-8 the bytes of
 * `&` and `=` stand only for themselves. One look over the bytes instead of one per value.
 */
export function holdsNoFieldBoundary(source: string | Uint8Array): boolean {
  if (typeof source === 'string') return source.indexOf('&') === -1 && source.indexOf('=') === -1;
  const bytes = Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  return bytes.indexOf(0x26) === -1 && bytes.indexOf(0x3d) === -1;
}

export interface CheckPaymentDocumentOptions {
  /**
   * `fields` were read, unchanged since, from a document for which `holdsNoFieldBoundary` is true:
   * no value can hold a field boundary, and the values need not be looked at one by one.
   */
  readFromSourceWithoutBoundary?: boolean;
}

/**
 * `what` names the document in messages ("callback", "orderquery answer"). Checks every value for
 * a field boundary, then the fields every successful payment carries.
 */
export function checkPaymentDocument(
  fields: Fields,
  what: string,
  options: CheckPaymentDocumentOptions = {},
): { ok: true } | PaymentDocumentFailure {
  const names = options.readFromSourceWithoutBoundary ? [] : Object.keys(fields);
  for (let i = 0; i < names.length; i += 1) {
    const name = names[i] as string;
    if (FIELD_BOUNDARY.test(fields[name] as string)) {
      return failure(
        'FORGED_FIELD_BOUNDARY',
        `${what} field ${name} holds "&" or "=", which WeChat Pay never sends: its fields may have been regrouped under a genuine signature`,
      );
    }
  }
  for (const [name, pattern, shape] of REQUIRED) {
    const value = fields[name];
    if (value === undefined || value === '') return failure('MISSING_FIELD', `${what} has no ${name}`);
    if (!pattern.test(value)) return failure('BAD_FIELD', `${what} ${name} "${value.slice(0, 40)}" is not ${shape}`);
  }
  if (!isBeijingTimestamp(fields.time_end as string)) {
    return failure('BAD_FIELD', `${what} time_end "${fields.time_end}" is not a real Beijing time`);
  }
  return { ok: true };
}
