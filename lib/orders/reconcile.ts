/**
 * Daily reconciliation: one Beijing day's WeChat Pay bill checked against the payments and refunds
 * recorded here. Money moves without the backend hearing of it (a callback lost past every retry,
 * recovery stopped), so a payment or successful refund in the bill that is not recorded here is
 * recorded through the same transition as its callback; a payment here that the bill lacks, or with
 * another amount, and a refund recorded SUCCESS here that the bill of its day lacks, are reported for
 * a person. Running it again changes nothing: what it repaired is matched the second time.
 */
import { downloadBill } from '../wechatpay/download-bill';
import type { BillRow } from '../wechatpay/bill';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../wechatpay/time';
import { logger } from '../log';
import { countMetric } from '../metrics';
import { InvalidRequestError } from '../validation';
import type { OrdersContext } from './context';
import { PaymentProviderError } from './errors';
import { GatewayError, type PaymentState } from './gateway';
import { refundOf, reviewFlagOf, type Order, type ReviewFlag } from './model';
import { recordBilledRefund, refundNumbersOfClaim } from './refunds';
import { PAID_STATES, recordPayment } from './settle';
import type { OrderStore } from './store';

/** WeChat Pay keeps bills for three months; today's is made after 09:00 tomorrow. */
const BILL_DAYS_KEPT = 92;
const DAY_MS = 24 * 60 * 60 * 1000;

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

export interface ReconciliationReport {
  billDate: string;
  status: 'MATCHED' | 'MISMATCHED' | 'NO_BILL';
  counts: { billRows: number; matched: number; repaired: number; missingFromBill: number; amountMismatches: number };
  items: ReconciliationItem[];
  ranAt: string;
}

/** A bill date the caller may ask for: a real Beijing day, before today, within three months. */
export function checkBillDate(billDate: unknown, now: Date): string {
  const day = typeof billDate === 'string' && /^\d{8}$/.test(billDate) ? fromBeijingTimestamp(`${billDate}000000`) : undefined;
  if (!day) throw new InvalidRequestError('billDate must be a day written yyyyMMdd, e.g. 20261129', 'billDate');
  const today = toBeijingTimestamp(now).slice(0, 8);
  if (billDate as string >= today) {
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

const reportKey = (billDate: string) => `reconciliation#${billDate}`;

/** `yyyy-MM-dd HH:mm:ss` (the bill's trade time, Beijing) as ISO. */
function billTime(text: string): string | undefined {
  return fromBeijingTimestamp(text.replace(/[-: ]/g, ''))?.toISOString();
}

async function fetchBill(billDate: string, ctx: OrdersContext) {
  const { appId, mchId, apiKey, baseUrl, signType } = ctx.config;
  const bill = await downloadBill({ appId, mchId, apiKey, baseUrl, signType }, { billDate, billType: 'ALL', gzip: true });
  if (!bill.ok && bill.reason !== 'NO_BILL') {
    throw new PaymentProviderError(bill.reason, `WeChat Pay's bill for ${billDate} could not be read: ${bill.message}`, bill.reason !== 'REFUSED', '', undefined);
  }
  return bill;
}

/** Review flags of a bill's payment that was never recorded as its order's payment: reported on every run. */
const REFUSED_PAYMENT_FLAGS: ReadonlySet<ReviewFlag['reason']> = new Set(['AMOUNT_MISMATCH', 'APP_MISMATCH']);

/** The item of a bill's payment that was not recorded as its order's: `reason`, the outcome that refused it (or its flag's reason). */
function refusedPayment(row: BillRow, order: Order, reason: string): ReconciliationItem {
  const base = { outTradeNo: row.outTradeNo, transactionId: row.transactionId, billFen: row.totalFeeFen, recordedFen: order.totalFee };
  if (reason === 'APP_MISMATCH') {
    return {
      ...base,
      kind: 'APP_MISMATCH',
      note: `paid under appid ${row.appId}, but the order was made under another app (${order.appId ?? 'the default app'}): not recorded as its payment, flagged for review; find who made this payment in the merchant platform`,
    };
  }
  return { ...base, kind: 'NOT_RECORDED', note: `the bill's amount differs from the order's (${reason}): check the order with WeChat Pay` };
}

/**
 * The bill is the one document WeChat Pay does not sign: before a payment read from it is recorded,
 * WeChat Pay's signed orderquery must show the same payment of this order (paid, its transaction id,
 * its amount). Answers when it was paid, or the item that reports why it was not recorded.
 */
async function confirmBillPayment(row: BillRow, order: Order, ctx: OrdersContext): Promise<string | Pick<ReconciliationItem, 'kind' | 'note'>> {
  let answer;
  try {
    answer = await ctx.gatewayFor(order).queryPayment(order.outTradeNo);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (error.failure !== 'ORDER_NOT_FOUND') {
      logger.warn('a payment of the bill could not be confirmed with orderquery; left for the next run', { outTradeNo: order.outTradeNo, transactionId: row.transactionId, code: error.code });
      return { kind: 'UNCONFIRMED', note: `WeChat Pay could not be asked to confirm this payment (${error.code}): not recorded yet; run this day's reconciliation again` };
    }
    answer = { tradeState: 'ORDERNOTEXIST' } as PaymentState;
  }
  if (PAID_STATES.has(answer.tradeState) && answer.transactionId === row.transactionId && answer.totalFee === row.totalFeeFen) {
    return answer.paidAt ?? ctx.now().toISOString();
  }
  logger.error('a payment of the bill is not confirmed by orderquery; not recorded', {
    outTradeNo: order.outTradeNo,
    transactionId: row.transactionId,
    tradeState: answer.tradeState,
    queriedTransactionId: answer.transactionId,
  });
  return {
    kind: 'NOT_CONFIRMED',
    note: `the bill shows this payment, but WeChat Pay's signed orderquery does not (trade_state ${answer.tradeState}${answer.transactionId && answer.transactionId !== row.transactionId ? `, transaction ${answer.transactionId}` : ''}): not recorded; check the transaction in the merchant platform`,
  };
}

/** One payment of the bill that the day's index did not show as recorded. */
async function settleBillPayment(row: BillRow, ctx: OrdersContext): Promise<ReconciliationItem | 'matched'> {
  const base = { outTradeNo: row.outTradeNo, transactionId: row.transactionId, billFen: row.totalFeeFen };
  const order = await ctx.store.get(row.outTradeNo);
  if (!order) return { ...base, kind: 'UNKNOWN_ORDER', note: 'paid at WeChat Pay for an order this backend never made: find it in the merchant platform' };
  // Already recorded under this transaction (paid on another day by our clock, or recorded and flagged): nothing to do.
  if (order.transactionId === row.transactionId) return 'matched';
  const flagged = reviewFlagOf(order, row.transactionId);
  if (flagged) return REFUSED_PAYMENT_FLAGS.has(flagged.reason) ? refusedPayment(row, order, flagged.reason) : 'matched';
  // Another app's payment is never recorded as the order's (recordPayment flags it): nothing to confirm.
  let paidAt = billTime(row.tradeTime) ?? ctx.now().toISOString();
  if (row.appId === (order.appId ?? ctx.config.appId)) {
    const confirmed = await confirmBillPayment(row, order, ctx);
    if (typeof confirmed !== 'string') return { ...base, recordedFen: order.totalFee, ...confirmed };
    paidAt = confirmed;
  }
  const outcome = await recordPayment(
    {
      outTradeNo: row.outTradeNo,
      transactionId: row.transactionId,
      totalFee: row.totalFeeFen,
      paidAt,
      source: 'reconciliation',
      // The bill's appid must be the order's, as a callback's must: another app's payment is not this order's.
      appId: row.appId,
      defaultApp: row.appId === ctx.config.appId,
    },
    ctx,
  );
  if (outcome.outcome === 'PAID' || outcome.outcome === 'FLAGGED') {
    const flaggedNow = outcome.outcome === 'FLAGGED' ? ` and flagged for review (${outcome.flag.reason})` : '';
    return { ...base, recordedFen: order.totalFee, kind: 'REPAIRED', note: `recorded from the bill, confirmed by WeChat Pay's orderquery${flaggedNow}: its callback never arrived` };
  }
  if (outcome.outcome === 'ALREADY_PAID') return 'matched';
  if (outcome.outcome === 'APP_MISMATCH') {
    // Money moved under this out_trade_no, but not for this order: flagged, so a person sees it on the order.
    const flag: ReviewFlag = { reason: 'APP_MISMATCH', at: ctx.now().toISOString(), source: 'reconciliation', transactionId: row.transactionId, totalFee: row.totalFeeFen, appId: row.appId };
    await ctx.store.addReviewFlag(outcome.order, flag);
    logger.error('payment needs review', { outTradeNo: row.outTradeNo, source: 'reconciliation', outcome: outcome.outcome, review: flag.reason, billAppId: row.appId, orderAppId: order.appId });
    countMetric('PaymentsFlagged');
    return refusedPayment(row, order, 'APP_MISMATCH');
  }
  return refusedPayment(row, order, outcome.outcome);
}

/** One successful refund of the bill: matched when recorded SUCCESS with its amount, else recorded as its callback would be. */
async function settleBillRefund(row: BillRow, ctx: OrdersContext): Promise<ReconciliationItem | 'matched'> {
  const base = { outTradeNo: row.outTradeNo, transactionId: row.transactionId, outRefundNo: row.outRefundNo, billFen: row.appliedRefundFeeFen };
  const order = await ctx.store.get(row.outTradeNo);
  const recorded = refundOf(order, row.outRefundNo);
  if (recorded?.status === 'SUCCESS' && recorded.refundFee === row.appliedRefundFeeFen) return 'matched';
  const outcome = await recordBilledRefund(
    {
      transactionId: row.transactionId,
      outTradeNo: row.outTradeNo,
      refundId: row.refundId,
      outRefundNo: row.outRefundNo,
      refundFee: row.appliedRefundFeeFen,
      settlementRefundFee: row.refundFeeFen,
    },
    ctx,
  );
  const flagged: Record<string, string> = {
    REFUND_SUCCESS: '',
    EXTERNAL_REFUND_FLAGGED: ' and flagged for review: it was made outside this backend',
    REFUND_SUCCEEDED_AFTER_FAILURE_FLAGGED: ' and flagged for review: it was recorded FAILED (WeChat Pay had refused it), yet WeChat Pay made it; check whether the payer was refunded by other means too',
  };
  if (Object.hasOwn(flagged, outcome)) {
    return { ...base, kind: 'REFUND_REPAIRED', note: `refund ${row.outRefundNo} recorded from the bill${flagged[outcome]}` };
  }
  return { ...base, kind: 'REFUND_MISMATCH', note: `refund ${row.outRefundNo} is in the bill as SUCCESS but is recorded otherwise here (${outcome}): check it in the merchant platform` };
}

/**
 * The refunds requested here on `billDate` that are recorded SUCCESS but absent from its bill. The
 * bill lists every refund WeChat Pay accepted that day, whatever its status then, and a refund is
 * sent the moment it is requested (store.ts REFUND_DAY_INDEX says why the day is the request's);
 * the bill's refunds are told apart by out_refund_no. Only a refund the bill lacks costs a read of
 * its order (one per order), to see how it is recorded.
 */
async function refundsMissingFromBill(billDate: string, billed: BillRow[], ctx: OrdersContext): Promise<ReconciliationItem[]> {
  // On the pair: a merchant id shared with another system may see an out_refund_no of ours on another order.
  const refundKey = (outTradeNo: string, outRefundNo: string) => `${outTradeNo}\n${outRefundNo}`;
  const inBill = new Set(billed.filter((row) => row.kind === 'refund').map((row) => refundKey(row.outTradeNo, row.outRefundNo)));
  const orders = new Map<string, Promise<Order | undefined>>();
  const items: ReconciliationItem[] = [];
  for (const claim of await ctx.store.refundsRequestedOnDay(billDate)) {
    const numbers = refundNumbersOfClaim(claim);
    if (numbers.some((outRefundNo) => inBill.has(refundKey(claim.outTradeNo, outRefundNo)))) continue;
    if (!orders.has(claim.outTradeNo)) orders.set(claim.outTradeNo, ctx.store.get(claim.outTradeNo));
    const order = await orders.get(claim.outTradeNo);
    // A claim whose reservation was refused has no refund; FAILED and PROCESSING ones moved no money.
    const refund = numbers.map((outRefundNo) => refundOf(order, outRefundNo)).find(Boolean);
    if (!order || refund?.status !== 'SUCCESS') continue;
    items.push({
      kind: 'REFUND_MISSING_FROM_BILL',
      outTradeNo: order.outTradeNo,
      ...(order.transactionId ? { transactionId: order.transactionId } : {}),
      outRefundNo: refund.outRefundNo,
      recordedFen: refund.refundFee,
      note:
        `refund ${refund.outRefundNo} is recorded here as refunded (SUCCESS) but is not in WeChat Pay's bill of the day it was requested: ` +
        'check it in the merchant platform: the payer may not have been refunded (a refund requested moments before midnight, or first received by WeChat Pay when it was sent again later, is on a later day\'s bill)',
    });
  }
  return items;
}

/** Items that are mismatches without a count of their own. */
const REPORTED_BESIDE_COUNTS: ReadonlySet<ReconciliationItemKind> = new Set(['UNKNOWN_ORDER', 'APP_MISMATCH', 'NOT_CONFIRMED', 'UNCONFIRMED']);

/**
 * Reconciles one Beijing day: downloads the `ALL` bill (gzip), reads the day's payments here through
 * the paid-by-day index and the day's refund requests through the refunds-by-request-day index
 * (never a scan), repairs what the bill proves was paid or refunded, reports the rest, and stores the
 * report under the bill date. A mismatch raises the `ReconciliationMismatches` metric.
 */
export async function reconcileDay(billDate: string, ctx: OrdersContext): Promise<ReconciliationReport> {
  const bill = await fetchBill(billDate, ctx);
  const recorded = await ctx.store.paidOnDay(billDate);
  const byTransaction = new Map<string, Order>(recorded.filter((order) => order.transactionId).map((order) => [order.transactionId as string, order]));
  const report: ReconciliationReport = {
    billDate,
    status: 'MATCHED',
    counts: { billRows: 0, matched: 0, repaired: 0, missingFromBill: 0, amountMismatches: 0 },
    items: [],
    ranAt: ctx.now().toISOString(),
  };
  const payments = bill.ok ? bill.rows.filter((row) => row.kind === 'payment') : [];
  report.counts.billRows = bill.ok ? bill.rows.length : 0;
  const seen = new Set<string>();
  for (const row of payments) {
    seen.add(row.transactionId);
    const order = byTransaction.get(row.transactionId);
    if (order) {
      if (order.totalFee === row.totalFeeFen) report.counts.matched++;
      else {
        report.counts.amountMismatches++;
        report.items.push({
          kind: 'AMOUNT_MISMATCH',
          outTradeNo: row.outTradeNo,
          transactionId: row.transactionId,
          billFen: row.totalFeeFen,
          recordedFen: order.totalFee,
          note: 'the bill and the order disagree on the amount: compare with the merchant platform',
        });
      }
      continue;
    }
    const settled = await settleBillPayment(row, ctx);
    if (settled === 'matched') report.counts.matched++;
    else {
      if (settled.kind === 'REPAIRED') report.counts.repaired++;
      if (settled.kind === 'NOT_RECORDED') report.counts.amountMismatches++;
      report.items.push(settled);
    }
  }
  // Successful refunds of that day (a refund still PROCESSING in the bill is left to recovery's refundquery).
  for (const row of bill.ok ? bill.rows.filter((line) => line.kind === 'refund' && line.refundStatus === 'SUCCESS') : []) {
    const settled = await settleBillRefund(row, ctx);
    if (settled === 'matched') report.counts.matched++;
    else {
      if (settled.kind === 'REFUND_REPAIRED') report.counts.repaired++;
      else report.counts.amountMismatches++;
      report.items.push(settled);
    }
  }
  for (const order of recorded) {
    if (order.transactionId && !seen.has(order.transactionId)) {
      report.counts.missingFromBill++;
      report.items.push({
        kind: 'MISSING_FROM_BILL',
        outTradeNo: order.outTradeNo,
        transactionId: order.transactionId,
        recordedFen: order.totalFee,
        note: 'recorded as paid here but not in WeChat Pay\'s bill: check the transaction in the merchant platform before fulfilling',
      });
    }
  }
  for (const item of await refundsMissingFromBill(billDate, bill.ok ? bill.rows : [], ctx)) {
    report.counts.missingFromBill++;
    report.items.push(item);
  }
  const mismatches =
    report.counts.missingFromBill + report.counts.amountMismatches + report.items.filter((item) => REPORTED_BESIDE_COUNTS.has(item.kind)).length;
  report.status = mismatches > 0 ? 'MISMATCHED' : !bill.ok && recorded.length === 0 ? 'NO_BILL' : 'MATCHED';
  await ctx.store.putRecord(reportKey(billDate), { ...report });
  if (mismatches > 0) countMetric('ReconciliationMismatches', mismatches);
  logger.info('reconciliation', { billDate, status: report.status, ...report.counts });
  return report;
}

/** The stored report of a bill date, or undefined when that day was never reconciled. */
export async function reconciliationReport(billDate: string, store: OrderStore): Promise<ReconciliationReport | undefined> {
  const record = await store.getRecord(reportKey(billDate));
  if (!record) return undefined;
  const report = { ...record };
  delete report.pk;
  return report as unknown as ReconciliationReport;
}
