/** When recovery checks a PROCESSING refund again. */

/** The first check of a new refund: WeChat Pay usually settles a refund to the payer's balance within a minute. */
export const FIRST_REFUND_CHECK_MS = 60_000;
/** Then 2, 4, 8, ... minutes, at most an hour apart (bank cards take days). */
const MAX_REFUND_CHECK_INTERVAL_MS = 3_600_000;

export function nextRefundCheck(checkCount: number, now: number): number {
  return now + Math.min(FIRST_REFUND_CHECK_MS * 2 ** Math.min(checkCount, 10), MAX_REFUND_CHECK_INTERVAL_MS);
}
