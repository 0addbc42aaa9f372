/**
 * Daily reconciliation: one Beijing day's WeChat Pay bill checked against the payments and refunds
 * recorded here. Money moves without the backend hearing of it (a callback lost past every retry,
 * recovery stopped), so a payment or successful refund in the bill that is not recorded here is
 * recorded through the same transition as its callback; a payment here that the bill lacks, or with
 * another amount, and a refund recorded SUCCESS here that the bill of its day lacks, are reported for
 * a person. Running it again changes nothing: what it repaired is matched the second time.
 */
import { fromBeijingTimestamp, toBeijingTimestamp } from '../wechatpay/time';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { InvalidRequestError } from '../validation';
import type { OrdersContext } from './context';
import { PaymentProviderError } from './errors';
import { GatewayError, type BillLine, type TradeBill } from './gateway';
import { refundOf, type Order } from './model';
import { refundNumbersOfClaim } from './refunds';
import {
  readReport,
  ReportWriter,
  type ReconciliationItem,
  type ReconciliationItemKind,
  type ReconciliationReport,
} from './reconciliation-report';
export type { ReconciliationItem, ReconciliationItemKind, ReconciliationReport } from './reconciliation-report';
import { settleBillPayment, settleBillRefund } from './reconcile-lines';
import { BATCH_GET_MAX_KEYS, type OrderStore, type ReportStore } from './store';

/** WeChat Pay keeps bills for three months; today's is made after 09:00 tomorrow. */
const BILL_DAYS_KEPT = 92;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A bill date the caller may ask for: a real Beijing day, before today, within three months. */
export function checkBillDate(billDate: unknown, now: Date): string {
  const day = typeof billDate === 'string' && /^\d{8}$/.test(billDate) ? fromBeijingTimestamp(`${billDate}000000`) : undefined;
  if (!day) throw new InvalidRequestError('billDate must be a day written yyyyMMdd, e.g. 20261129', 'billDate');
  const today = toBeijingTimestamp(now).slice(0, 8);
  if ((billDate as string) >= today) {
    throw new InvalidRequestError(`billDate ${billDate} has no bill yet: WeChat Pay makes a day's bill the next morning`, 'billDate');
  }
  if (now.getTime() - day.getTime() > BILL_DAYS_KEPT * DAY_MS) {
    throw new InvalidRequestError(`billDate ${billDate} is older than the three months WeChat Pay keeps bills`, 'billDate');
  }
  return billDate as string;
}

/** The Beijing day before `now`: the bill the daily schedule asks for. */
export function yesterday(now: Date): string {
  return toBeijingTimestamp(new Date(now.getTime() - DAY_MS)).slice(0, 8);
}

async function fetchBill(billDate: string, ctx: OrdersContext): Promise<TradeBill | 'NO_BILL'> {
  try {
    return await ctx.bills.open(billDate);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    throw new PaymentProviderError(error.code, error.message, error.retryable, '', error);
  }
}

/** A refund requested here on the bill date (its claim), told apart by its order and out_refund_no together. */
const claimKey = (outTradeNo: string, outRefundNo: string) => `${outTradeNo}\n${outRefundNo}`;

/**
 * Bill rows whose order must be read, gathered until BATCH_GET_MAX_KEYS orders (each order once: a
 * row of an order already gathered settles those first, so every row sees its order as the rows
 * before it left it), then read by one BatchGetItem and settled in bill order.
 */
class OrderReads {
  #rows: BillLine[] = [];
  readonly #orders = new Set<string>();

  constructor(
    private readonly store: OrderStore,
    private readonly settle: (row: BillLine, order: Order | undefined) => Promise<void>,
  ) {}

  async add(row: BillLine): Promise<void> {
    if (this.#orders.has(row.outTradeNo)) await this.flush();
    this.#rows.push(row);
    this.#orders.add(row.outTradeNo);
    if (this.#orders.size >= BATCH_GET_MAX_KEYS) await this.flush();
  }

  async flush(): Promise<void> {
    const rows = this.#rows;
    if (rows.length === 0) return;
    const orders = await this.store.getMany([...this.#orders]);
    this.#rows = [];
    this.#orders.clear();
    for (const row of rows) await this.settle(row, orders.get(row.outTradeNo));
  }
}

/** What the run found, as it goes: the report's counts (its items go to the report's pages). */
interface Findings {
  counts: ReconciliationReport['counts'];
  /** Items of payments not recorded as the order's (REPORTED_BESIDE_COUNTS): mismatches the counts do not hold. */
  unattributed: number;
}

/** Items that are mismatches without a count of their own. */
const REPORTED_BESIDE_COUNTS: ReadonlySet<ReconciliationItemKind> = new Set([
  'UNKNOWN_ORDER',
  'APP_MISMATCH',
  'NOT_CONFIRMED',
  'UNCONFIRMED',
]);

/**
 * Reconciles one Beijing day: downloads the `ALL` bill (gzip), reads the day's payments here through
 * the paid-by-day index and the day's refund requests through the refunds-by-request-day index
 * (never a scan), repairs what the bill proves was paid or refunded, reports the rest, and stores the
 * report under the bill date, in pages (reconciliation-report.ts) written as they fill. A mismatch
 * raises the `ReconciliationMismatches` metric, counted and logged before the report is stored:
 * storing it never fails the run (a failure is logged and counted, ReconciliationReportsNotStored,
 * and the run still answers its counts). It answers the report's head and first items.
 *
 * The bill is read in one pass, row by row, and what is kept in memory is what this deployment
 * recorded, never the bill: the day's payments here (each marked once the bill has it), the day's
 * refund claims (likewise), and the refunds of orders not paid here yet, held until the bill's
 * payments are all in (a refund line may come before its payment's). Rows of orders the day's index
 * does not show are read in batches (BatchGetItem).
 */
export async function reconcileDay(billDate: string, ctx: OrdersContext): Promise<ReconciliationReport> {
  const bill = await fetchBill(billDate, ctx);
  try {
    return await reconcileBill(billDate, bill, ctx);
  } finally {
    if (bill !== 'NO_BILL') await bill.close();
  }
}

async function reconcileBill(billDate: string, bill: TradeBill | 'NO_BILL', ctx: OrdersContext): Promise<ReconciliationReport> {
  const ranAt = ctx.now().toISOString();
  const recorded = new Map<string, { outTradeNo: string; totalFee: number; billed: boolean }>();
  for await (const payment of ctx.store.paymentsOnDay(billDate)) {
    if (payment.transactionId)
      recorded.set(payment.transactionId, { outTradeNo: payment.outTradeNo, totalFee: payment.totalFee, billed: false });
  }
  // A claim's refund has one of two numbers (refundNumbersOfClaim): either, on its order, is that refund in the bill.
  const claims = new Map<string, { outTradeNo: string; outRefundNos: readonly string[]; billed: boolean }>();
  for (const claim of await ctx.claims.refundsRequestedOnDay(billDate)) {
    const entry = { outTradeNo: claim.outTradeNo, outRefundNos: refundNumbersOfClaim(claim), billed: false };
    for (const outRefundNo of entry.outRefundNos) claims.set(claimKey(claim.outTradeNo, outRefundNo), entry);
  }
  const found: Findings = { counts: { billRows: 0, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 0 }, unattributed: 0 };
  const pages = new ReportWriter(billDate, ctx.reports);
  const report = (item: ReconciliationItem) => {
    if (REPORTED_BESIDE_COUNTS.has(item.kind)) found.unattributed++;
    return pages.add(item);
  };

  const settledPayment = async (settled: ReconciliationItem | 'matched') => {
    if (settled === 'matched') return void found.counts.matched++;
    if (settled.kind === 'REPAIRED') found.counts.repaired++;
    if (settled.kind === 'NOT_RECORDED') found.counts.amountMismatches++;
    await report(settled);
  };
  const settledRefund = async (settled: ReconciliationItem | 'matched') => {
    if (settled === 'matched') return void found.counts.matched++;
    if (settled.kind === 'REFUND_REPAIRED') found.counts.repaired++;
    else found.counts.amountMismatches++;
    await report(settled);
  };
  // A refund of an order not paid here (yet) waits until every payment of the bill is recorded.
  const waiting: BillLine[] = [];
  const reads = new OrderReads(ctx.store, async (row, order) => {
    if (row.kind === 'payment') return settledPayment(await settleBillPayment(row, order, ctx));
    if (order && order.status !== 'PAID' && order.status !== 'REFUNDED') return void waiting.push(row);
    await settledRefund(await settleBillRefund(row, order, ctx));
  });

  if (bill !== 'NO_BILL') {
    for await (const row of bill.lines()) {
      found.counts.billRows++;
      if (row.kind === 'payment') {
        const payment = recorded.get(row.transactionId);
        if (!payment) {
          await reads.add(row);
          continue;
        }
        payment.billed = true;
        if (payment.totalFee === row.totalFeeFen) found.counts.matched++;
        else {
          found.counts.amountMismatches++;
          await report({
            kind: 'AMOUNT_MISMATCH',
            outTradeNo: row.outTradeNo,
            transactionId: row.transactionId,
            billFen: row.totalFeeFen,
            recordedFen: payment.totalFee,
            note: 'the bill and the order disagree on the amount: compare with the merchant platform',
          });
        }
      } else if (row.kind === 'refund') {
        // Any refund the bill lists, whatever its status, was received that day by WeChat Pay.
        const claim = claims.get(claimKey(row.outTradeNo, row.outRefundNo));
        if (claim) claim.billed = true;
        // Successful refunds are matched; one still PROCESSING in the bill is left to recovery's refundquery.
        if (row.refundStatus === 'SUCCESS') await reads.add(row);
      }
    }
  }
  await reads.flush();
  const refundsLast = new OrderReads(ctx.store, async (row, order) => settledRefund(await settleBillRefund(row, order, ctx)));
  for (const row of waiting) await refundsLast.add(row);
  await refundsLast.flush();

  for (const [transactionId, payment] of recorded) {
    if (payment.billed) continue;
    found.counts.missingFromBill++;
    await report({
      kind: 'MISSING_FROM_BILL',
      outTradeNo: payment.outTradeNo,
      transactionId,
      recordedFen: payment.totalFee,
      note: "recorded as paid here but not in WeChat Pay's bill: check the transaction in the merchant platform before fulfilling",
    });
  }
  for (const item of await refundsMissingFromBill(
    [...new Set(claims.values())].filter((claim) => !claim.billed),
    ctx.store,
  )) {
    found.counts.missingFromBill++;
    await report(item);
  }
  const mismatches = found.counts.missingFromBill + found.counts.amountMismatches + found.unattributed;
  const status: ReconciliationReport['status'] =
    mismatches > 0 ? 'MISMATCHED' : bill === 'NO_BILL' && recorded.size === 0 ? 'NO_BILL' : 'MATCHED';
  // Counted and logged before the report is stored: a report that cannot be stored still raises its alarm.
  if (mismatches > 0) countMetric('ReconciliationMismatches', mismatches);
  logger.info('reconciliation', { billDate, status, ...found.counts, itemCount: pages.itemCount, runId: pages.runId });
  const head = { billDate, status, counts: found.counts, ranAt };
  const stored = await pages.finish(head);
  const answer = { ...head, itemCount: pages.itemCount, items: pages.firstItems };
  if (stored.stored) return stored.nextCursor ? { ...answer, nextCursor: stored.nextCursor } : answer;
  logger.error('reconciliation report not stored', { billDate, runId: pages.runId, reason: stored.reason });
  countMetric('ReconciliationReportsNotStored');
  return { ...answer, stored: false };
}

/**
 * The refunds requested here on the bill date that are recorded SUCCESS but absent from its bill
 * (`unbilled`: their claims). The bill lists every refund WeChat Pay accepted that day, whatever its
 * status then, and a refund is sent the moment it is requested (store/schema.ts REFUND_DAY_INDEX says why
 * the day is the request's). Only the orders of refunds the bill lacks are read, in batches, to see
 * how each refund is recorded.
 */
async function refundsMissingFromBill(
  unbilled: ReadonlyArray<{ outTradeNo: string; outRefundNos: readonly string[] }>,
  store: OrderStore,
): Promise<ReconciliationItem[]> {
  const refundsOf = new Map<string, string[]>();
  for (const claim of unbilled) refundsOf.set(claim.outTradeNo, [...(refundsOf.get(claim.outTradeNo) ?? []), ...claim.outRefundNos]);
  const outTradeNos = [...refundsOf.keys()];
  const items: ReconciliationItem[] = [];
  for (let at = 0; at < outTradeNos.length; at += BATCH_GET_MAX_KEYS) {
    for (const order of (await store.getMany(outTradeNos.slice(at, at + BATCH_GET_MAX_KEYS))).values()) {
      for (const outRefundNo of refundsOf.get(order.outTradeNo) ?? []) {
        // A claim whose reservation was refused has no refund; FAILED and PROCESSING ones moved no money.
        const refund = refundOf(order, outRefundNo);
        if (refund?.status !== 'SUCCESS') continue;
        items.push({
          kind: 'REFUND_MISSING_FROM_BILL',
          outTradeNo: order.outTradeNo,
          ...(order.transactionId ? { transactionId: order.transactionId } : {}),
          outRefundNo: refund.outRefundNo,
          recordedFen: refund.refundFee,
          note:
            `refund ${refund.outRefundNo} is recorded here as refunded (SUCCESS) but is not in WeChat Pay's bill of the day it was requested: ` +
            "check it in the merchant platform: the payer may not have been refunded (a refund requested moments before midnight, or first received by WeChat Pay when it was sent again later, is on a later day's bill)",
        });
      }
    }
  }
  return items;
}

/**
 * The stored report of a bill date, or undefined when that day was never reconciled: its head and
 * the items from `cursor`, at most `limit` (see readReport).
 */
export function reconciliationReport(
  billDate: string,
  store: ReportStore,
  query: { cursor?: string; limit?: string } = {},
): Promise<ReconciliationReport | undefined> {
  return readReport(billDate, store, query);
}
