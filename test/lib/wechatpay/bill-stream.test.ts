import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_BILL_LINE_CHARS,
  readBillAnswer,
  type BillFailure,
  type BillOutline,
  type BillResult,
  type BillRow,
} from '../../../lib/wechatpay/bill';
import { LineSplitter, streamBillAnswer } from '../../../lib/wechatpay/bill-stream';
import { paymentRow, refundRow, writeBill } from '../../../dev/wechatpay-documents/bill';

/** `bytes` cut at `cuts` (any positions, in any order, repeated or not), as a stream hands them on. */
function pieces(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((cut) => cut % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...at, bytes.byteLength]) {
    if (cut > from) out.push(bytes.subarray(from, cut));
    from = Math.max(from, cut);
  }
  return out;
}

async function* chunks(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield part;
}

/** The lines a splitter gives of these pieces. */
function split(parts: readonly Uint8Array[]): string[] {
  const splitter = new LineSplitter();
  return [...parts.flatMap((part) => splitter.push(part)), ...splitter.end()];
}

/** What the stream reads of these pieces, as readBillAnswer answers: the bill with its rows, or the failure. */
async function streamed(parts: readonly Uint8Array[], maxBytes?: number): Promise<BillResult> {
  const rows: BillRow[] = [];
  const reading = streamBillAnswer(chunks(parts), { maxBytes });
  for (;;) {
    const next = await reading.next();
    if (next.done) {
      const end: BillOutline | BillFailure = next.value;
      return end.ok ? { ...end, rows } : end;
    }
    rows.push(next.value);
  }
}

async function drain(reading: AsyncGenerator<unknown, unknown>): Promise<void> {
  while (!(await reading.next()).done);
}

/** The same answer as readBillAnswer gives: the same bill, or a failure for the same reason. */
function expectSameAnswer(actual: BillResult, whole: BillResult) {
  if (whole.ok) expect(actual).toEqual(whole);
  else expect(actual).toMatchObject({ ok: false, reason: whole.reason });
}

const ROWS = [
  paymentRow({
    tradeTime: '2026-11-30 12:00:00',
    appId: 'wxd930ea5d5a258f4f',
    mchId: '10000100',
    transactionId: '4200000540202611301234567890',
    outTradeNo: '20261130abcdefghijABCDEFGHIJ',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    tradeType: 'JSAPI',
    totalFeeFen: 1000,
    productName: '咖啡 ☕ 𝄞',
  }),
  refundRow({
    tradeTime: '2026-11-30 13:00:00',
    appId: 'wxd930ea5d5a258f4f',
    mchId: '10000100',
    transactionId: '4200000540202611301234567890',
    outTradeNo: '20261130abcdefghijABCDEFGHIJ',
    openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    tradeType: 'JSAPI',
    refundId: '50000000000000000000000000001',
    outRefundNo: 'R1',
    refundFeeFen: 500,
    productName: '退款',
  }),
];
const BILL = writeBill(ROWS, { bom: true, lineEnding: '\r\n' });

/** Text with what line breaking can trip on: CR, LF, CRLF, lone CRs, 2-, 3- and 4-byte characters. */
const TRICKY_TEXT = fc
  .array(
    fc.oneof(
      fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', '`', ',', 'é', '咖', '𝄞', '\uFEFF'),
      fc.string({ unit: 'grapheme', maxLength: 8 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(''));
const CUTS = fc.array(fc.nat(), { maxLength: 12 });

describe('the line splitter', () => {
  it('gives the lines text.split(/\\r?\\n/) gives, wherever the bytes are cut: inside a character, inside \\r\\n', () => {
    fc.assert(
      fc.property(TRICKY_TEXT, CUTS, (text, cuts) => {
        expect(split(pieces(Buffer.from(text), cuts))).toEqual(text.split(/\r?\n/));
      }),
      { numRuns: 500 },
    );
  });

  it('cut into single bytes, reads a real bill with a BOM, CRLF and Chinese text', () => {
    const bytes = Buffer.from(BILL);
    expect(split(Array.from(bytes, (byte) => Uint8Array.of(byte)))).toEqual(BILL.split(/\r?\n/));
  });

  it('a \\r\\n split between two chunks is one line end; a lone \\r stays in its line', () => {
    expect(split([Buffer.from('a\r'), Buffer.from('\nb')])).toEqual(['a', 'b']);
    expect(split([Buffer.from('a\r'), Buffer.from('b\r')])).toEqual(['a\rb\r']);
  });

  it('throws for bytes that are not UTF-8, and for a character cut short at the end', () => {
    expect(() => split([Buffer.from('ok\n'), Uint8Array.of(0xff)])).toThrow(TypeError);
    const coffee = Buffer.from('咖');
    expect(() => split([coffee.subarray(0, 2)])).toThrow(TypeError);
    // Cut inside the character but whole in the end: no error.
    expect(split([coffee.subarray(0, 1), coffee.subarray(1)])).toEqual(['咖']);
  });

  it('never holds a line longer than the limit: it hands it on in pieces the reader refuses', () => {
    const splitter = new LineSplitter();
    const handed = splitter.push(Buffer.from('x'.repeat(MAX_BILL_LINE_CHARS * 3)));
    expect(handed.length).toBeGreaterThanOrEqual(2);
    expect(handed.every((line) => line.length === MAX_BILL_LINE_CHARS + 1)).toBe(true);
  });
});

describe('streamBillAnswer', () => {
  it('reads a bill, plain and gzipped, in pieces cut anywhere, as readBillAnswer reads it whole', async () => {
    const whole = readBillAnswer(BILL);
    expect(whole.ok).toBe(true);
    await fc.assert(
      fc.asyncProperty(fc.boolean(), CUTS, async (gzip, cuts) => {
        const bytes = gzip ? gzipSync(BILL) : Buffer.from(BILL);
        expect(await streamed(pieces(bytes, cuts))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it('any answer at all, cut anywhere, plain or gzipped: the same bill or a failure for the same reason as readBillAnswer', async () => {
    const lines = BILL.split('\r\n');
    const answer = fc.oneof(
      TRICKY_TEXT,
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
      // A real bill with lines dropped, repeated, or cut.
      fc.array(fc.constantFrom(...lines), { maxLength: 8 }).map((picked) => picked.join('\r\n')),
      fc.tuple(fc.nat(), fc.constantFrom('\n', '\r\n')).map(([at, end]) => BILL.slice(0, at % BILL.length).replaceAll('\r\n', end)),
      fc.constantFrom(
        'No Bill Exist',
        '\uFEFFNo Bill Exist\r\n',
        '<xml><return_code>FAIL</return_code><return_msg>No Bill Exist</return_msg></xml>',
        '<xml>\r\n<return_code>FAIL</return_code>\r\n<return_msg>Bill Creating</return_msg></xml>',
        '',
      ),
    );
    await fc.assert(
      fc.asyncProperty(answer, fc.boolean(), fc.boolean(), CUTS, async (text, asBytes, gzip, cuts) => {
        const bytes = gzip ? gzipSync(text) : asBytes ? Buffer.from(text, 'latin1') : Buffer.from(text);
        expectSameAnswer(await streamed(pieces(bytes, cuts)), readBillAnswer(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('refuses an answer over the limit as it arrives, and a bill that inflates past the limit as it inflates', async () => {
    expect(await streamed([Buffer.from(BILL)], 100)).toEqual({
      ok: false,
      reason: 'TOO_LARGE',
      message: 'the answer is over the 100-byte limit',
    });
    // A header, then the same line again and again: 40 MB of bill in 100 KB of gzip (concatenated members).
    const [header, payment] = BILL.split('\r\n') as [string, string];
    const member = gzipSync(`${payment}\r\n`.repeat(40_000), { level: 9 });
    const bomb = Buffer.concat([gzipSync(`${header}\r\n`), ...Array.from({ length: 4 }, () => member)]);
    const parts = pieces(
      bomb,
      Array.from({ length: Math.ceil(bomb.length / 16_384) }, (_, i) => i * 16_384),
    );
    expect(await streamed(parts, 4 * 1024 * 1024)).toEqual({
      ok: false,
      reason: 'TOO_LARGE',
      message: 'the gzip answer inflates to over 4194304 bytes (a gzip bomb?)',
    });
  });

  it('stops a gzip bomb of 1 GiB of zeros in 1 MB of gzip at once: no line is that long', async () => {
    const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 1024 }, () => member));
    const started = performance.now();
    expect(await streamed([bomb])).toMatchObject({
      ok: false,
      reason: 'MALFORMED_BILL',
      message: expect.stringMatching(/line 1 is over 16384 characters/),
    });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses gzip that is corrupt or cut short, and a line without end', async () => {
    const zipped = gzipSync(BILL);
    expect(await streamed([zipped.subarray(0, zipped.length - 10)])).toMatchObject({
      ok: false,
      reason: 'MALFORMED_BILL',
      message: expect.stringMatching(/gzip/),
    });
    expect(await streamed([Buffer.from('x'.repeat(MAX_BILL_LINE_CHARS + 1))])).toMatchObject({
      ok: false,
      reason: 'MALFORMED_BILL',
      message: expect.stringMatching(/line 1 is over/),
    });
  });

  it('stops reading its source once the answer is refused', async () => {
    let pulled = 0;
    let stopped = false;
    async function* endless() {
      try {
        yield Buffer.from('not a bill header\n');
        for (;;) {
          pulled += 1;
          yield Buffer.from('`x\n');
        }
      } finally {
        stopped = true;
      }
    }
    const reading = streamBillAnswer(endless());
    const first = await reading.next();
    expect(first).toMatchObject({ done: true, value: { ok: false, reason: 'MALFORMED_BILL' } });
    expect(stopped).toBe(true);
    expect(pulled).toBeLessThan(1000);
  });

  it('passes on what its source throws (a network failure)', async () => {
    async function* failing() {
      yield Buffer.from(BILL.slice(0, 300));
      throw new Error('socket hang up');
    }
    await expect(drain(streamBillAnswer(failing()))).rejects.toThrow('socket hang up');
    const zipped = gzipSync(BILL);
    async function* failingGzip() {
      yield zipped.subarray(0, 50);
      throw new Error('socket hang up');
    }
    await expect(drain(streamBillAnswer(failingGzip()))).rejects.toThrow('socket hang up');
  });
});
