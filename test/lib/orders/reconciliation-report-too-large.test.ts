/**
 * Security review finding: "A large reconciliation report fails the run and silences its alarm
 * (Medium)." The report was one DynamoDB item: past about 1,500 items (a merchant id shared with
 * another system puts each of its payments in the bill, each an UNKNOWN_ORDER) the write passed
 * DynamoDB's 400 KB limit and failed the run, every day, before the mismatch was counted, and the
 * GET route answered 404. The report is now stored in pages, the mismatch counted and logged before
 * it is stored, and storing it never fails the run.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, readBody } from '../../../dev/emulator/http-server';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';
import { handler as getReconciliation } from '../../../functions/getReconciliation';
import { lambdaHandler } from '../../../lib/handler';
import type { OrdersContext } from '../../../lib/orders/context';
import { reconcileDay, type ReconciliationItem, type ReconciliationReport } from '../../../lib/orders/reconcile';
import { PAGE_BYTES, ReportWriter } from '../../../lib/orders/reconciliation-report';
import type { BillRow } from '../../../lib/wechatpay/bill';
import { billLines, paymentRow } from '../../../dev/wechatpay-documents/bill';
import { toBeijingTimestamp } from '../../../lib/wechatpay/time';
import { dynamoAction, dynamoError, scanTable } from '../../reliability/support';
import { apiEvent, MERCHANT_AUTHORIZATION } from '../../support/api';
import { writtenLines } from '../../support/lambda';
import type { TestStack } from '../../support/stack';
import { useTestStack } from '../../support/use-stack';
import { wechatPayV2Bills } from '../../../lib/gateways/wechatpay-v2/bills';

let stack: TestStack;
let ctx: OrdersContext;
useTestStack((started) => ({ stack, ctx } = started));

// The metrics as deployed: EMF lines on stdout, which CloudWatch reads.
const savedMetrics = process.env.POWERTOOLS_METRICS_DISABLED;
beforeAll(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});
afterAll(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = savedMetrics;
});

const DAY_MS = 24 * 60 * 60 * 1000;
const beijingDay = (days: number) => toBeijingTimestamp(new Date(Date.now() - days * DAY_MS)).slice(0, 8);
const tradeTimeOf = (day: string) => `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)} 12:00:00`;

/** `count` payments of another system on our merchant id, paid on `day`: none of them an order of ours. */
function* foreignPayments(day: string, count: number, from = 0): Generator<BillRow> {
  for (let i = from; i < from + count; i++) {
    yield paymentRow({
      tradeTime: tradeTimeOf(day),
      appId: TEST_MERCHANT.appId,
      mchId: TEST_MERCHANT.mchId,
      transactionId: `42000000${String(i).padStart(20, '0')}`,
      outTradeNo: `LEGACY${String(i).padStart(10, '0')}`,
      openid: 'oLegacyShopPayer000000000000',
      tradeType: 'NATIVE',
      productName: 'legacy shop',
      totalFeeFen: 100,
    });
  }
}

/** Lines joined into chunks of about 64 KiB: gzip is slow fed a line at a time. */
function* inChunks(lines: Iterable<string>): Generator<string> {
  let chunk = '';
  for (const line of lines) {
    chunk += line;
    if (chunk.length >= 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

async function gzipBill(rows: Iterable<BillRow>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(inChunks(billLines(rows, { bom: true, lineEnding: '\r\n' }))).pipe(createGzip({ level: 1 })))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reconciles `day` against `bill` (gzip), served as WeChat Pay's downloadbill answer, through the wrapper every function runs in. */
async function reconcileAgainst(day: string, bill: Buffer): Promise<ReconciliationReport> {
  const server = createServer((request, response) => {
    void readBody(request, 1 << 20).then(() => response.writeHead(200, { 'content-type': 'application/x-gzip' }).end(bill));
  });
  const listening = await listen(server, 0, '127.0.0.1');
  try {
    const withBill: OrdersContext = { ...ctx, bills: wechatPayV2Bills({ ...ctx.config, baseUrl: listening.origin }) };
    return await lambdaHandler(() => reconcileDay(day, withBill))({});
  } finally {
    await listening.close();
  }
}

/** GET /merchant/reconciliations/{day}, with a query. */
async function read(
  day: string,
  query = '',
): Promise<{ status: number; body: ReconciliationReport & { error?: { code: string; field?: string } } }> {
  const answer = await getReconciliation(
    apiEvent({
      method: 'GET',
      path: `/merchant/reconciliations/${day}`,
      pathParameters: { billDate: day },
      authorization: MERCHANT_AUTHORIZATION,
      query,
    }),
  );
  return { status: answer.statusCode as number, body: JSON.parse(answer.body as string) };
}

/** Every item of a day's stored report, following nextCursor, `limit` at a time; and the answers read. */
async function readAll(day: string, limit: number): Promise<{ items: ReconciliationItem[]; answers: number }> {
  const items: ReconciliationItem[] = [];
  let cursor: string | undefined;
  let answers = 0;
  do {
    const page = await read(day, `limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status, JSON.stringify(page.body).slice(0, 300)).toBe(200);
    expect(page.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
    answers++;
  } while (cursor);
  return { items, answers };
}

/** The EMF metric values of the lines, by name, summed. */
function metricsOf(lines: Array<Record<string, unknown>>): Record<string, number> {
  const counted: Record<string, number> = {};
  for (const line of lines) {
    const directives =
      (line._aws as { CloudWatchMetrics?: Array<{ Metrics: Array<{ Name: string }> }> } | undefined)?.CloudWatchMetrics ?? [];
    for (const { Name } of directives.flatMap((directive) => directive.Metrics)) counted[Name] = (counted[Name] ?? 0) + Number(line[Name]);
  }
  return counted;
}

/** The report items stored under a day: its head and its pages, straight from the table. */
async function storedUnder(day: string): Promise<string[]> {
  return Object.keys(await scanTable(stack))
    .filter((pk) => pk === `reconciliation#${day}` || pk.startsWith(`reconciliation#${day}#`))
    .sort();
}

/** Fails every PutItem of `pk` matching, with DynamoDB's 500: an injected fault at the boundary. */
function failingWrites(matches: (pk: string) => boolean) {
  const name = `fail-report-writes-${Math.random()}`;
  let failed = 0;
  ctx.store.db.middlewareStack.add(
    (next, context) => async (args) => {
      const pk = (args.input as { Item?: { pk?: string } }).Item?.pk;
      if (dynamoAction(context.commandName as string) === 'PutItem' && pk && matches(pk)) {
        failed++;
        throw dynamoError('InternalServerError');
      }
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { failed: () => failed, stop: () => ctx.store.db.middlewareStack.remove(name) };
}

describe('A large reconciliation report fails the run and silences its alarm (Medium)', () => {
  it('50,000 payments of another system on the same merchant id: the run answers, counts and logs the mismatch, stores the report in pages, and GET gives each UNKNOWN_ORDER item exactly once through its cursor', async () => {
    const day = beijingDay(3);
    const rows = 50_000;
    const bill = await gzipBill(foreignPayments(day, rows));
    // Each page's size as DynamoDB counts it (dynalite computes it the same way): its write capacity, 1 KB a unit.
    const pageKB: number[] = [];
    const observe = 'page-write-capacity';
    ctx.store.db.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Item?: { pk?: string }; ReturnConsumedCapacity?: string };
        if (!input.Item?.pk?.startsWith(`reconciliation#${day}#`)) return next(args);
        input.ReturnConsumedCapacity = 'TOTAL';
        const result = await next(args);
        pageKB.push((result.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity?.CapacityUnits ?? 0);
        return result;
      },
      { step: 'initialize', name: observe },
    );
    let report: ReconciliationReport | undefined;
    let lines: Array<Record<string, unknown>>;
    try {
      lines = await writtenLines('INFO', async () => {
        report = await reconcileAgainst(day, bill);
      });
    } finally {
      ctx.store.db.middlewareStack.remove(observe);
    }
    expect(report).toMatchObject({
      billDate: day,
      status: 'MISMATCHED',
      counts: { billRows: rows, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
      itemCount: rows,
    });
    expect(report?.stored).toBeUndefined();
    expect(report?.items).toHaveLength(100);
    expect(report?.nextCursor).toEqual(expect.any(String));
    expect(metricsOf(lines)).toMatchObject({ ReconciliationMismatches: rows });
    expect(metricsOf(lines).ReconciliationReportsNotStored).toBeUndefined();
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'reconciliation', billDate: day, status: 'MISMATCHED', itemCount: rows }),
    );

    // Pages well under DynamoDB's 400 KB item limit, measured: an UNKNOWN_ORDER item is about 196 bytes as DynamoDB counts it.
    expect(pageKB.length).toBeGreaterThan(50);
    expect(Math.max(...pageKB)).toBeLessThanOrEqual(PAGE_BYTES / 1024 + 1);
    expect((pageKB.reduce((a, b) => a + b, 0) * 1024) / rows).toBeLessThan(220);

    // GET without a cursor answers what the run answered; then, 1,000 at a time, every item once.
    expect((await read(day)).body).toEqual(report);
    const { items, answers } = await readAll(day, 1000);
    expect(answers).toBe(50);
    expect(items).toHaveLength(rows);
    expect(new Set(items.map((item) => item.kind))).toEqual(new Set(['UNKNOWN_ORDER']));
    expect(new Set(items.map((item) => item.transactionId)).size).toBe(rows);
    expect(items[rows - 1]).toMatchObject({ transactionId: `42000000${String(rows - 1).padStart(20, '0')}`, billFen: 100 });
  }, 120_000);

  it.each([
    ['its first page', (day: string) => (pk: string) => pk.startsWith(`reconciliation#${day}#`)],
    ['its head', (day: string) => (pk: string) => pk === `reconciliation#${day}`],
  ])(
    'the report failing to store (%s, an injected DynamoDB fault) never fails the run: it answers its counts, counts and logs the mismatch, counts the report not stored, and leaves no page behind',
    async (_which, matching) => {
      const day = _which === 'its head' ? beijingDay(5) : beijingDay(4);
      const bill = await gzipBill(foreignPayments(day, 3000));
      const fault = failingWrites(matching(day));
      let report: ReconciliationReport | undefined;
      let lines: Array<Record<string, unknown>>;
      try {
        lines = await writtenLines('INFO', async () => {
          report = await reconcileAgainst(day, bill);
        });
      } finally {
        fault.stop();
      }
      expect(fault.failed()).toBeGreaterThan(0);
      expect(report).toMatchObject({ status: 'MISMATCHED', counts: { billRows: 3000 }, itemCount: 3000, stored: false });
      expect(report?.items).toHaveLength(100);
      expect(report?.nextCursor).toBeUndefined();
      expect(metricsOf(lines)).toMatchObject({ ReconciliationMismatches: 3000, ReconciliationReportsNotStored: 1 });
      expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'reconciliation report not stored', billDate: day }));
      // The mismatch is logged before the report is stored.
      const logged = lines.findIndex((line) => line.message === 'reconciliation');
      const notStored = lines.findIndex((line) => line.message === 'reconciliation report not stored');
      expect(logged).toBeGreaterThanOrEqual(0);
      expect(logged).toBeLessThan(notStored);
      expect(await storedUnder(day)).toEqual([]);
      expect((await read(day)).status).toBe(404);

      // Once DynamoDB is back, the next run stores it.
      expect(await reconcileAgainst(day, bill)).toMatchObject({ itemCount: 3000, nextCursor: expect.any(String) });
      expect((await readAll(day, 1000)).items).toHaveLength(3000);
    },
    60_000,
  );

  it('the head written but its answer lost (an injected DynamoDB fault): the run sees its own head and answers stored', async () => {
    const day = beijingDay(10);
    const bill = await gzipBill(foreignPayments(day, 300));
    const name = 'lose-head-answer';
    ctx.store.db.middlewareStack.add(
      (next, context) => async (args) => {
        const pk = (args.input as { Item?: { pk?: string } }).Item?.pk;
        if (dynamoAction(context.commandName as string) !== 'PutItem' || pk !== `reconciliation#${day}`) return next(args);
        await next(args);
        throw dynamoError('InternalServerError');
      },
      { step: 'initialize', name },
    );
    let report: ReconciliationReport;
    try {
      report = await reconcileAgainst(day, bill);
    } finally {
      ctx.store.db.middlewareStack.remove(name);
    }
    expect(report).toMatchObject({ itemCount: 300, nextCursor: expect.any(String) });
    expect(report.stored).toBeUndefined();
    expect((await readAll(day, 1000)).items).toHaveLength(300);
  });

  it('a rerun of the same day replaces the report cleanly: no page of a longer earlier run is left or readable, and its cursors are refused', async () => {
    const day = beijingDay(6);
    const first = await reconcileAgainst(day, await gzipBill(foreignPayments(day, 3000)));
    const earlierPages = await storedUnder(day);
    expect(earlierPages.length).toBeGreaterThan(3);
    const oldCursor = first.nextCursor as string;

    const second = await reconcileAgainst(day, await gzipBill(foreignPayments(day, 10, 90_000)));
    expect(second).toMatchObject({ itemCount: 10, counts: { billRows: 10 } });
    expect(second.nextCursor).toBeUndefined();
    const { items } = await readAll(day, 1000);
    expect(items.map((item) => item.outTradeNo)).toEqual(
      Array.from({ length: 10 }, (_, i) => `LEGACY${String(90_000 + i).padStart(10, '0')}`),
    );
    const now = await storedUnder(day);
    expect(now).toHaveLength(2);
    expect(now.filter((pk) => earlierPages.includes(pk))).toEqual([`reconciliation#${day}`]);

    const stale = await read(day, `cursor=${oldCursor}`);
    expect(stale.status).toBe(409);
    expect(stale.body.error?.code).toBe('REPORT_REPLACED');
  }, 60_000);

  it("a run that started earlier but finishes later leaves the later run's report, and its own pages are removed", async () => {
    const day = beijingDay(7);
    const later = await reconcileAgainst(day, await gzipBill(foreignPayments(day, 5)));
    const pages = new ReportWriter(day, ctx.reports);
    for (const row of foreignPayments(day, 300))
      await pages.add({
        kind: 'UNKNOWN_ORDER',
        outTradeNo: row.outTradeNo,
        transactionId: row.transactionId,
        billFen: 100,
        note: 'earlier',
      });
    const stored = await pages.finish({
      billDate: day,
      status: 'MISMATCHED',
      counts: { billRows: 300, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
      ranAt: new Date(Date.parse(later.ranAt) - 60_000).toISOString(),
    });
    expect(stored).toEqual({ stored: false, reason: 'a later run of the same day stored its report first' });
    expect((await read(day)).body).toEqual(later);
    expect(await storedUnder(day)).toHaveLength(2);
  });

  it('the longest items a bill line can carry: a page stays under 400 KB as DynamoDB counts it, and reads back whole', async () => {
    const day = beijingDay(8);
    // A bill line is at most 16 KiB: values of thousands of 3-byte characters, in a field and again in the note.
    const long = '退'.repeat(8_000);
    const pages = new ReportWriter(day, ctx.reports);
    const kb: number[] = [];
    const observe = 'long-page-capacity';
    ctx.store.db.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Item?: { pk?: string }; ReturnConsumedCapacity?: string };
        if (!input.Item?.pk?.startsWith(`reconciliation#${day}#`)) return next(args);
        input.ReturnConsumedCapacity = 'TOTAL';
        const result = await next(args);
        kb.push((result.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity?.CapacityUnits ?? 0);
        return result;
      },
      { step: 'initialize', name: observe },
    );
    try {
      for (let i = 0; i < 30; i++) {
        await pages.add({
          kind: 'REFUND_MISMATCH',
          outTradeNo: `o${i}`,
          transactionId: '4200000000000000000000000001',
          outRefundNo: long,
          billFen: 1,
          note: `refund ${long} is in the bill as SUCCESS but is recorded otherwise here (UNKNOWN_ORDER)`,
        });
      }
      expect(
        await pages.finish({
          billDate: day,
          status: 'MISMATCHED',
          counts: { billRows: 30, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 30 },
          ranAt: new Date().toISOString(),
        }),
      ).toEqual({ stored: true, nextCursor: expect.any(String) });
      // An answer holds at most 1 MiB of items: fewer than the 100 asked for by default.
      expect(pages.firstItems.length).toBeLessThan(30);
    } finally {
      ctx.store.db.middlewareStack.remove(observe);
    }
    expect(kb.length).toBeGreaterThan(1);
    expect(Math.max(...kb)).toBeLessThan(200);
    const { items } = await readAll(day, 5);
    expect(items).toHaveLength(30);
    expect(items.every((item) => item.outRefundNo === long)).toBe(true);
  });

  it('a report stored whole, as before pages, still reads, a page at a time', async () => {
    const day = beijingDay(9);
    const items = Array.from({ length: 3 }, (_, i) => ({
      kind: 'MISSING_FROM_BILL',
      outTradeNo: `whole${i}`,
      transactionId: `42000000${String(i).padStart(20, '0')}`,
      recordedFen: 10,
      note: 'n',
    }));
    await ctx.store.db.send(
      new PutCommand({
        TableName: stack.table,
        Item: {
          pk: `reconciliation#${day}`,
          billDate: day,
          status: 'MISMATCHED',
          counts: { billRows: 0, matched: 0, repaired: 0, missingFromBill: 3, amountMismatches: 0 },
          items,
          ranAt: '2026-01-01T02:00:00.000Z',
        },
      }),
    );
    const first = await read(day, 'limit=2');
    expect(first.body).toMatchObject({ status: 'MISMATCHED', itemCount: 3, items: items.slice(0, 2), nextCursor: expect.any(String) });
    const rest = await read(day, `limit=2&cursor=${first.body.nextCursor}`);
    expect(rest.body.items).toEqual(items.slice(2));
    expect(rest.body.nextCursor).toBeUndefined();
  });

  it.each([
    ['cursor=not*base64', 'cursor'],
    [`cursor=${Buffer.from('20200101:0123456789ab:0:0').toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from('hello').toString('base64url')}`, 'cursor'],
    ['cursor=', 'cursor'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=1&limit=2', 'limit'],
    ['page=2', 'page'],
  ])('GET ?%s is a 400 naming %s', async (query, field) => {
    const day = beijingDay(3);
    const answer = await read(day, query);
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.error?.field).toBe(field);
  });

  it("a cursor of another day's report, or past its end, is a 400 naming cursor", async () => {
    const day = beijingDay(3);
    const other = beijingDay(6);
    const { body } = await read(day);
    const otherDay = await read(other, `cursor=${body.nextCursor}`);
    expect(otherDay.status).toBe(400);
    expect(otherDay.body.error?.field).toBe('cursor');
    const [, runId] = Buffer.from(body.nextCursor as string, 'base64url')
      .toString()
      .split(':');
    const past = await read(day, `cursor=${Buffer.from(`${day}:${runId}:100000:0`).toString('base64url')}`);
    expect(past.status).toBe(400);
    expect(past.body.error?.field).toBe('cursor');
  });
});
