import { describe, expect, it } from 'vitest';
import { ReportStore } from '../../../../lib/orders/store';
import { useRefusals, useTable } from '../../../support/store';

/** Reconciliation reports' heads and pages on dynalite, under the keys existing reports are stored under. */

const tables = useTable();
const refusals = useRefusals();
const reports = () => new ReportStore(tables.db, tables.table);

describe('ReportStore pages', () => {
  it("writes a run's page once (pageIsNew) under `reconciliation#<day>#<run>#<page>`, and reads its items", async () => {
    expect(await reports().putPage('20260301', 'abc', 0, [{ kind: 'UNKNOWN_ORDER' }])).toBe(true);
    expect(await tables.item({ pk: 'reconciliation#20260301#abc#0' })).toEqual({
      pk: 'reconciliation#20260301#abc#0',
      runId: 'abc',
      page: 0,
      items: [{ kind: 'UNKNOWN_ORDER' }],
    });
    expect(await reports().putPage('20260301', 'abc', 0, [{ kind: 'REPAIRED' }])).toBe(false);
    expect(await reports().page('20260301', 'abc', 0)).toEqual([{ kind: 'UNKNOWN_ORDER' }]);
    expect(await reports().page('20260301', 'abc', 1)).toBeUndefined();
    expect(refusals()).toEqual([['pageIsNew']]);
  });

  it("deletes a page only while it is its run's (pageOfRun)", async () => {
    await reports().putPage('20260301', 'abc', 0, []);
    await tables.put({ pk: 'reconciliation#20260301#abc#1', runId: 'other', page: 1, items: [] });
    expect(await reports().deletePage('20260301', 'abc', 1)).toBe(false);
    expect(await reports().deletePage('20260301', 'abc', 0)).toBe(true);
    expect(await reports().deletePage('20260301', 'abc', 0)).toBe(false);
    expect(await tables.item({ pk: 'reconciliation#20260301#abc#1' })).toBeDefined();
    expect(refusals()).toEqual([['pageOfRun'], ['pageOfRun']]);
  });
});

describe('ReportStore heads', () => {
  it("replaces a day's head under `reconciliation#<day>` unless a later run's stands (noLaterRun), answering the head it replaced", async () => {
    const head = (ranAt: string, runId: string) => ({ billDate: '20260301', status: 'MATCHED', ranAt, runId, pages: 1, itemCount: 0 });
    expect(await reports().replaceHead('20260301', head('2026-03-02T02:00:00.000Z', 'r1'))).toEqual({});
    expect(await reports().replaceHead('20260301', head('2026-03-02T03:00:00.000Z', 'r2'))).toEqual({
      replaced: { pk: 'reconciliation#20260301', ...head('2026-03-02T02:00:00.000Z', 'r1') },
    });
    expect(await reports().replaceHead('20260301', head('2026-03-02T01:00:00.000Z', 'r0'))).toBeUndefined();
    expect(await reports().head('20260301')).toEqual({ pk: 'reconciliation#20260301', ...head('2026-03-02T03:00:00.000Z', 'r2') });
    expect(await reports().head('20260302')).toBeUndefined();
    expect(refusals()).toEqual([['noLaterRun']]);
  });
});
