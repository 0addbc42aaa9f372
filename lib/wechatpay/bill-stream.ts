/**
 * A downloadbill answer read as it arrives: bytes → gunzip (when gzip) → UTF-8 lines → rows
 * (BillTextReader), holding no more of it than a chunk and a line, whatever its size. The size limit
 * holds on the bytes received and on what they inflate to, as they stream. It reads exactly what
 * readBillAnswer (bill.ts) reads whole.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BillTextReader, corruptGzip, DEFAULT_MAX_BILL_BYTES, inflatedTooLarge, MAX_BILL_LINE_CHARS, notUtf8 } from './bill';
import type { BillFailure, BillOutline, BillRow, ReadBillOptions } from './bill';

/**
 * Splits UTF-8 bytes, in chunks cut anywhere (inside a character, inside `\r\n`), into the lines
 * `text.split(/\r?\n/)` gives of the whole text. A line longer than MAX_BILL_LINE_CHARS is handed
 * on in pieces of MAX_BILL_LINE_CHARS + 1 characters, which BillTextReader refuses: the splitter
 * never holds more than that.
 */
export class LineSplitter {
  // A BOM is kept, as in the text; the reader skips it.
  readonly #decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #pending = '';

  /** The lines these bytes end; throws a TypeError for bytes that are not UTF-8. */
  push(bytes: Uint8Array): string[] {
    return this.#split(this.#decoder.decode(bytes, { stream: true }));
  }

  /** The last line (empty after a final line break); throws a TypeError for a character cut short. */
  end(): string[] {
    const lines = this.#split(this.#decoder.decode());
    lines.push(this.#pending);
    this.#pending = '';
    return lines;
  }

  #split(text: string): string[] {
    const lines: string[] = [];
    const joined = this.#pending + text;
    let from = 0;
    for (let at = joined.indexOf('\n'); at >= 0; at = joined.indexOf('\n', from)) {
      lines.push(joined.slice(from, at > from && joined.charCodeAt(at - 1) === 0x0d ? at - 1 : at));
      from = at + 1;
    }
    // A `\r` at the end may be the first half of `\r\n`: it stays pending with the rest of its line.
    let pending = joined.slice(from);
    while (pending.length > MAX_BILL_LINE_CHARS + 1) {
      lines.push(pending.slice(0, MAX_BILL_LINE_CHARS + 1));
      pending = pending.slice(MAX_BILL_LINE_CHARS + 1);
    }
    this.#pending = pending;
    return lines;
  }
}

/** A failure found while streaming, carried through the stream's iterators to streamBillAnswer. */
class StreamFailure extends Error {
  constructor(readonly failure: BillFailure) {
    super(failure.message);
  }
}

/** The bytes, failing once there are more than `maxBytes` of them. */
async function* limited(chunks: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.byteLength;
    if (size > maxBytes)
      throw new StreamFailure({ ok: false, reason: 'TOO_LARGE', message: `the answer is over the ${maxBytes}-byte limit` });
    yield chunk;
  }
}

/** The first bytes (at least two, unless the answer is shorter) and the rest, to tell gzip by its magic. */
async function peek(chunks: AsyncIterable<Uint8Array>): Promise<{ head: Uint8Array; rest: AsyncIterator<Uint8Array> }> {
  const rest = chunks[Symbol.asyncIterator]();
  let head: Uint8Array = new Uint8Array(0);
  while (head.byteLength < 2) {
    const next = await rest.next();
    if (next.done) break;
    head = head.byteLength === 0 ? next.value : Buffer.concat([head, next.value]);
  }
  return { head, rest };
}

async function* prepended(head: Uint8Array, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    if (head.byteLength > 0) yield head;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    // Stops the source (a download is cancelled) when the reading stops early.
    await rest.return?.();
  }
}

/** What the gzip bytes inflate to, failing past `maxBytes`; corrupt or cut-short gzip is MALFORMED_BILL. */
async function* inflated(chunks: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  const source = Readable.from(chunks, { objectMode: false });
  const gunzip = createGunzip();
  // The source's own failures (the answer over the limit, the network) reach the loop below through gunzip.
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  let size = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > maxBytes) throw new StreamFailure(inflatedTooLarge(maxBytes));
      yield chunk;
    }
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw new StreamFailure(corruptGzip(error));
    throw error;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
}

async function* lines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const splitter = new LineSplitter();
  const split = (read: () => string[]) => {
    try {
      return read();
    } catch {
      throw new StreamFailure(notUtf8());
    }
  };
  for await (const chunk of chunks) yield* split(() => splitter.push(chunk));
  yield* split(() => splitter.end());
}

/**
 * Reads a downloadbill answer as its bytes arrive: yields each row as soon as its line is read, and
 * returns how the answer ended (the bill's outline, or the failure readBillAnswer would give; its
 * rows already yielded are then not a bill). Stopping early stops reading `chunks`. Throws only
 * what `chunks` throws (a network failure).
 */
export async function* streamBillAnswer(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadBillOptions = {},
): AsyncGenerator<BillRow, BillOutline | BillFailure, undefined> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BILL_BYTES;
  const reader = new BillTextReader();
  try {
    const { head, rest } = await peek(limited(chunks, maxBytes));
    const bytes = prepended(head, rest);
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    for await (const line of lines(gzip ? inflated(bytes, maxBytes) : bytes)) {
      const read = reader.line(line);
      if (read === undefined) continue;
      if ('ok' in read) return read;
      yield read;
    }
  } catch (error) {
    if (error instanceof StreamFailure) return error.failure;
    throw error;
  }
  return reader.end();
}
