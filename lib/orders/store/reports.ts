import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GuardedDelete, GuardedPut } from '../../store/guarded-update';
import { Table } from '../../store/table';
import { OrderStoreError } from '../errors';

type Doc = Record<string, unknown>;

const headKey = (billDate: string) => `reconciliation#${billDate}`;
const pageKey = (billDate: string, runId: string, page: number) => `reconciliation#${billDate}#${runId}#${page}`;

/**
 * Reconciliation reports, items of the orders table: a day's head (`reconciliation#<billDate>`) and
 * the pages of each run (`reconciliation#<billDate>#<runId>#<page>`: `{ runId, page, items }`). What
 * a head holds, and how runs replace one another, is the report's (reconciliation-report.ts); this
 * keeps the items, and the conditions that keep two runs apart.
 */
export class ReportStore {
  readonly #table: Table;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware. */
    readonly db: DynamoDBDocumentClient,
    table: string,
  ) {
    this.#table = new Table(db, table, OrderStoreError);
  }

  /** The head of a day's report, or undefined. */
  head(billDate: string): Promise<Doc | undefined> {
    return this.#table.get({ pk: headKey(billDate) });
  }

  /** The items of one page of a run, or undefined when the page is gone (a later run replaced the report). */
  async page<Item>(billDate: string, runId: string, page: number): Promise<Item[] | undefined> {
    return (await this.#table.get({ pk: pageKey(billDate, runId, page) }))?.items as Item[] | undefined;
  }

  /** Writes a page of a run; false when the run wrote that page already (its key names the run). */
  putPage<Item>(billDate: string, runId: string, page: number, items: Item[]): Promise<boolean> {
    return new GuardedPut(this.#table, { pk: pageKey(billDate, runId, page) }, { runId, page, items })
      .when('pageIsNew', 'attribute_not_exists(pk)')
      .run();
  }

  /**
   * Writes a day's head in place of the one there unless that one holds a later `ranAt` (ISO times
   * compare as text): `{ replaced }`, the head it replaced if any, or undefined when a later one
   * stands (nothing written).
   */
  replaceHead(billDate: string, head: Doc & { ranAt: string }): Promise<{ replaced?: Doc } | undefined> {
    return new GuardedPut(this.#table, { pk: headKey(billDate) }, head)
      .when('noLaterRun', 'attribute_not_exists(pk) OR ranAt <= :ranAt', { ':ranAt': head.ranAt })
      .replacing();
  }

  /** Deletes a page that still belongs to `runId` (a replaced report's); false when it is gone already. */
  deletePage(billDate: string, runId: string, page: number): Promise<boolean> {
    return new GuardedDelete(this.#table, { pk: pageKey(billDate, runId, page) })
      .when('pageOfRun', 'runId = :runId', { ':runId': runId })
      .run();
  }
}
