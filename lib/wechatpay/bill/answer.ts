import { gunzipSync } from 'node:zlib';
import { failure } from '../../result';
import { DEFAULT_MAX_BILL_BYTES, describe, type BillFailureReason, type BillResult, type ReadBillOptions } from './model';
import { parseBillText } from './parse';

/** Reading `/pay/downloadbill`'s answer as bytes: its size, gzip, UTF-8; then the text (parse.ts). */

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
export const inflatedTooLarge = (maxBytes: number) =>
  failure<BillFailureReason>('TOO_LARGE', `the gzip answer inflates to over ${maxBytes} bytes (a gzip bomb?)`);
export const corruptGzip = (error: unknown) =>
  failure<BillFailureReason>('MALFORMED_BILL', `the gzip answer is corrupt or cut short (${describe(error)})`);
export const notUtf8 = () =>
  failure<BillFailureReason>('MALFORMED_BILL', 'the answer is not valid UTF-8 (gzip bytes read as text, or another encoding?)');
