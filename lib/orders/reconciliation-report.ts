/**
 * A reconciliation report, stored in pages: a DynamoDB item holds at most 400 KB, and a day's report
 * has no bound (a merchant id shared with another system puts each of its payments in the bill, each
 * an UNKNOWN_ORDER item of about 200 bytes). So the items are written as they come, in page items of
 * at most PAGE_BYTES, under keys of their run (`reconciliation#<billDate>#<runId>#<page>`), and the
 * report's head (`reconciliation#<billDate>`: status, counts, ranAt, the run id and its page count),
 * written last, makes them the day's report. A later run of the same day writes its own pages, then
 * replaces the head (only a head of an earlier run: two runs at once leave the later one's), then
 * deletes the pages of the run it replaced: a reader follows the head, so it never sees a page of
 * another run, and nothing of a longer earlier run shows through a shorter later one.
 *
 * Reports stored whole before pages (the head holds `items`, no run id) are read as one page.
 */
import { randomBytes } from 'node:crypto';
import { logger } from '../log';
import { InvalidRequestError } from '../validation';
import { OrderConflictError } from './errors';
import type { ReportStore } from './store';

/** What the daily reconciliation (reconcile.ts) found about one payment or refund. */
export type ReconciliationItemKind =
  /** In the bill, not recorded here before: recorded now (PAID, or flagged if the order had moved on). */
  | 'REPAIRED'
  /** In the bill for an order this backend never made. */
  | 'UNKNOWN_ORDER'
  /** Recorded here as paid that day, absent from the bill. */
  | 'MISSING_FROM_BILL'
  /** In both, with different amounts. */
  | 'AMOUNT_MISMATCH'
  /** In the bill, but recording it here was refused (its amount differs from the order's). */
  | 'NOT_RECORDED'
  /** In the bill under another app than its order was made under: not recorded as the order's payment, flagged. */
  | 'APP_MISMATCH'
  /** In the bill, not recorded here, and WeChat Pay's signed orderquery does not show that payment: not recorded. */
  | 'NOT_CONFIRMED'
  /** In the bill, not recorded here, and WeChat Pay could not be asked to confirm it: left for the next run. */
  | 'UNCONFIRMED'
  /** A successful refund in the bill that was not recorded here as such: recorded now (flagged if made outside the backend, or recorded FAILED). */
  | 'REFUND_REPAIRED'
  /** A successful refund in the bill that is recorded otherwise here, or could not be recorded. */
  | 'REFUND_MISMATCH'
  /** Requested here that day and recorded SUCCESS, absent from the bill. */
  | 'REFUND_MISSING_FROM_BILL';

export interface ReconciliationItem {
  kind: ReconciliationItemKind;
  outTradeNo: string;
  transactionId?: string;
  /** For a refund's item: the refund. */
  outRefundNo?: string;
  billFen?: number;
  recordedFen?: number;
  /** What a person should do about it. */
  note: string;
}

/** A report as the routes answer it: its head, and one page of its items. */
export interface ReconciliationReport {
  billDate: string;
  status: 'MATCHED' | 'MISMATCHED' | 'NO_BILL';
  counts: { billRows: number; matched: number; repaired: number; missingFromBill: number; amountMismatches: number };
  ranAt: string;
  /** Items in the whole report. */
  itemCount: number;
  /** The items from the cursor asked for (none: the first ones). */
  items: ReconciliationItem[];
  /** There are more items: GET /merchant/reconciliations/{billDate}?cursor=<it> gives the next ones. */
  nextCursor?: string;
  /** Only on the answer of a run whose report could not be stored (logged, and counted: ReconciliationReportsNotStored). */
  stored?: false;
}

/**
 * Most bytes of items in one page, counted as their JSON: more than DynamoDB counts for them (it
 * counts names and values, without quotes, colons and commas), so a page item stays well under the
 * 400 KB limit with its key. An item longer than this (a bill line is at most 16 KiB) has a page of
 * its own.
 */
export const PAGE_BYTES = 128 * 1024;
/** Items in an answer when the caller names no `limit`, and the most it may name. */
export const DEFAULT_ITEMS = 100;
export const MAX_ITEMS = 1000;
/** Most bytes of items in one answer (at least one item): far inside Lambda's 6 MB answer. */
export const ANSWER_BYTES = 1024 * 1024;

/** The run id of a report stored whole, before pages. */
const WHOLE = 'whole';

/** Where an item is: its page of its run, and its place in the page. */
interface Position {
  runId: string;
  page: number;
  offset: number;
}

/** The head of a stored report: what the answer says besides its items. */
interface Head {
  billDate: string;
  status: ReconciliationReport['status'];
  counts: ReconciliationReport['counts'];
  ranAt: string;
  runId: string;
  pages: number;
  itemCount: number;
}

const itemBytes = (item: ReconciliationItem) => Buffer.byteLength(JSON.stringify(item));

/** Whether an answer holding `count` items of `bytes` takes one more of `more` bytes. */
const answerTakes = (count: number, bytes: number, more: number, limit: number) =>
  count < limit && (count === 0 || bytes + more <= ANSWER_BYTES);

/** The opaque cursor of a position: base64url of `<billDate>:<runId>:<page>:<offset>`. */
function cursorOf(billDate: string, at: Position): string {
  return Buffer.from(`${billDate}:${at.runId}:${at.page}:${at.offset}`).toString('base64url');
}

const malformedCursor = () =>
  new InvalidRequestError('cursor must be the nextCursor of an answer about this day, as it was given', 'cursor');

function readCursor(cursor: string, billDate: string): Position {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw malformedCursor();
  const match = /^(\d{8}):([0-9a-f]{12}|whole):(0|[1-9]\d{0,8}):(0|[1-9]\d{0,8})$/.exec(
    Buffer.from(cursor, 'base64url').toString('latin1'),
  );
  if (!match || match[1] !== billDate) throw malformedCursor();
  return { runId: match[2] as string, page: Number(match[3]), offset: Number(match[4]) };
}

function readLimit(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_ITEMS;
  if (!/^[1-9]\d{0,3}$/.test(limit) || Number(limit) > MAX_ITEMS)
    throw new InvalidRequestError(`limit must be a whole number from 1 to ${MAX_ITEMS}`, 'limit');
  return Number(limit);
}

/** How storing a run's report ended. */
export type Stored = { stored: true; nextCursor?: string } | { stored: false; reason: string };

/**
 * One run's report as it is written: `add` each item as it is found (a page is written each time
 * one fills), then `finish` with the head. Storing never fails the run: a failed write is logged,
 * the run's pages stop there, and `finish` says the report was not stored. It keeps the first
 * items, the ones an answer without a cursor gives, to answer the run with.
 */
export class ReportWriter {
  readonly runId = randomBytes(6).toString('hex');
  /** The first items of the report: what GET answers without a cursor. */
  readonly firstItems: ReconciliationItem[] = [];
  itemCount = 0;
  #firstBytes = 0;
  /** Where the first item past `firstItems` is, once there is one. */
  #next: Position | undefined;
  #page: ReconciliationItem[] = [];
  #pageBytes = 0;
  /** Pages filled, and of them written. */
  #pages = 0;
  #written = 0;
  #failure: string | undefined;

  constructor(
    private readonly billDate: string,
    private readonly store: ReportStore,
  ) {}

  async add(item: ReconciliationItem): Promise<void> {
    const bytes = itemBytes(item);
    if (this.#page.length > 0 && this.#pageBytes + bytes > PAGE_BYTES) await this.#flush();
    if (!this.#next && answerTakes(this.firstItems.length, this.#firstBytes, bytes, DEFAULT_ITEMS)) {
      this.firstItems.push(item);
      this.#firstBytes += bytes;
    } else {
      this.#next ??= { runId: this.runId, page: this.#pages, offset: this.#page.length };
    }
    this.#page.push(item);
    this.#pageBytes += bytes;
    this.itemCount++;
  }

  /** Writes the last page and the head; the report is the day's once this answers stored. */
  async finish(head: Omit<Head, 'runId' | 'pages' | 'itemCount'>): Promise<Stored> {
    await this.#flush();
    if (this.#failure) {
      await this.#discard();
      return { stored: false, reason: this.#failure };
    }
    let outcome: Awaited<ReturnType<ReportStore['replaceHead']>>;
    try {
      outcome = await this.store.replaceHead(this.billDate, { ...head, runId: this.runId, pages: this.#pages, itemCount: this.itemCount });
    } catch (error) {
      logger.error('reconciliation report head not written', { billDate: this.billDate, runId: this.runId, error });
      // The write may have been applied and its answer lost: the pages go only once the head is known not to be this run's.
      const current = await this.store.head(this.billDate).then(
        (record) => ({ read: true, runId: record?.runId }),
        () => ({ read: false, runId: undefined }),
      );
      if (current.runId === this.runId) return this.#stored();
      if (current.read) await this.#discard();
      return { stored: false, reason: `its head could not be written (${describe(error)})` };
    }
    if (!outcome) {
      await this.#discard();
      return { stored: false, reason: 'a later run of the same day stored its report first' };
    }
    const replaced = outcome.replaced;
    if (typeof replaced?.runId === 'string' && typeof replaced.pages === 'number') await this.#deletePages(replaced.runId, replaced.pages);
    return this.#stored();
  }

  #stored(): Stored {
    return this.#next ? { stored: true, nextCursor: cursorOf(this.billDate, this.#next) } : { stored: true };
  }

  async #flush(): Promise<void> {
    if (this.#page.length === 0) return;
    const items = this.#page;
    const page = this.#pages++;
    this.#page = [];
    this.#pageBytes = 0;
    if (this.#failure) return;
    try {
      if (!(await this.store.putPage(this.billDate, this.runId, page, items))) {
        throw new Error(`page ${page} of run ${this.runId} exists already`);
      }
      this.#written++;
    } catch (error) {
      logger.error('reconciliation report page not written', { billDate: this.billDate, runId: this.runId, page, error });
      this.#failure = `page ${page} could not be written (${describe(error)})`;
    }
  }

  /** Removes the pages this run wrote, which no head names. */
  #discard(): Promise<void> {
    return this.#deletePages(this.runId, this.#written);
  }

  /** Deletes a run's pages; one left behind (its delete failed) costs its storage, and nothing reads it. */
  async #deletePages(runId: string, pages: number): Promise<void> {
    for (let page = 0; page < pages; page++) {
      try {
        await this.store.deletePage(this.billDate, runId, page);
      } catch (error) {
        logger.warn('reconciliation report page left behind', { billDate: this.billDate, runId, page, error });
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 200) : String(error).slice(0, 200);
}

/** The stored head of a day, or undefined. A report stored whole reads as one page of its items. */
async function readHead(billDate: string, store: ReportStore): Promise<(Head & { whole?: ReconciliationItem[] }) | undefined> {
  const record = await store.head(billDate);
  if (!record) return undefined;
  const { status, counts, ranAt } = record as unknown as Head;
  if (typeof record.runId === 'string')
    return { billDate, status, counts, ranAt, runId: record.runId, pages: record.pages as number, itemCount: record.itemCount as number };
  const items = (record.items ?? []) as ReconciliationItem[];
  return { billDate, status, counts, ranAt, runId: WHOLE, pages: items.length > 0 ? 1 : 0, itemCount: items.length, whole: items };
}

/**
 * The stored report of a bill date, from `cursor` (an answer's `nextCursor`; none: from the first
 * item) and at most `limit` items (a whole number from 1 to MAX_ITEMS; DEFAULT_ITEMS when none),
 * with `nextCursor` when more remain; undefined when that day was never reconciled. A malformed
 * cursor or limit is an InvalidRequestError naming it; a cursor of a run that a later run replaced
 * is an OrderConflictError (read again from the start).
 */
export async function readReport(
  billDate: string,
  store: ReportStore,
  query: { cursor?: string; limit?: string } = {},
): Promise<ReconciliationReport | undefined> {
  const limit = readLimit(query.limit);
  const from = query.cursor === undefined ? undefined : readCursor(query.cursor, billDate);
  // A run that replaces the report between reading its head and its pages has deleted them: read again.
  for (let attempt = 0; ; attempt++) {
    const head = await readHead(billDate, store);
    if (!head) {
      if (from)
        throw new OrderConflictError(
          'REPORT_REPLACED',
          `the report of ${billDate} the cursor was given for is gone; read it again without a cursor`,
        );
      return undefined;
    }
    if (from && from.runId !== head.runId) {
      throw new OrderConflictError(
        'REPORT_REPLACED',
        `a later run of ${billDate} (at ${head.ranAt}) replaced the report the cursor was given for; read it again without a cursor`,
      );
    }
    if (from && from.page >= head.pages) throw malformedCursor();
    const items = await readItems(billDate, store, head, from ?? { runId: head.runId, page: 0, offset: 0 }, limit);
    if (items) {
      const { status, counts, ranAt, itemCount } = head;
      return {
        billDate,
        status,
        counts,
        ranAt,
        itemCount,
        items: items.items,
        ...(items.next ? { nextCursor: cursorOf(billDate, items.next) } : {}),
      };
    }
    if (attempt >= 2) throw new Error(`the report of ${billDate} kept changing while it was read`);
  }
}

/** Up to `limit` items from `at`, and where the next one is; undefined when a page of the run is gone. */
async function readItems(
  billDate: string,
  store: ReportStore,
  head: Head & { whole?: ReconciliationItem[] },
  at: Position,
  limit: number,
): Promise<{ items: ReconciliationItem[]; next?: Position } | undefined> {
  const items: ReconciliationItem[] = [];
  let bytes = 0;
  for (let page = at.page, offset = at.offset; page < head.pages; page++, offset = 0) {
    if (items.length >= limit) return { items, next: { runId: head.runId, page, offset } };
    const pageItems = head.whole ?? (await store.page<ReconciliationItem>(billDate, head.runId, page));
    if (!pageItems) return undefined;
    if (offset >= pageItems.length) throw malformedCursor();
    for (; offset < pageItems.length; offset++) {
      const item = pageItems[offset] as ReconciliationItem;
      const more = itemBytes(item);
      if (!answerTakes(items.length, bytes, more, limit)) return { items, next: { runId: head.runId, page, offset } };
      items.push(item);
      bytes += more;
    }
  }
  return { items };
}
