/**
 * Refunds (docs/reference/http-api.md: Refunds), one file per job, as payments are: the merchant's request
 * (`request.ts`), WeChat Pay's callback (`notify.ts`), recovery of the PROCESSING ones
 * (`recovery.ts`), the bill's repairs (`bill.ts`); what they share is recording how a refund ended
 * (`settle.ts`) and its numbers (`numbers.ts`).
 *
 * - A refund's out_refund_no names its order and the merchant's idempotency key, so a retried
 *   request finds the same number; the key is claimed before anything else is written.
 * - WeChat Pay's refusal for good (NOTENOUGH, TRADE_OVERDUE, ...) ends it FAILED and gives the
 *   amount back; anything else unclear (a timeout, SYSTEMERROR) leaves it PROCESSING for the
 *   recovery schedule, which asks refundquery and sends it again if WeChat Pay never got it.
 * - Should WeChat Pay later report a FAILED refund as SUCCESS (its callback, refundquery, the bill),
 *   the money did go back: it is recorded SUCCESS, its amount held again, and flagged for review.
 * - An answer about another order under one of our numbers is never recorded.
 */
export { recordBilledRefund } from './bill';
export { recordNotifiedRefund, refuseRefundNotification, type NotifiedRefund } from './notify';
export { outRefundNoFor, refundClaimFor, refundNumbersOfClaim } from './numbers';
export { getRefund } from './query';
export { recoverRefunds, type RefundRecoverySummary } from './recovery';
export { parseRefundRequest, requestRefund, sendRefund, type RefundRequest } from './request';
export { nextRefundCheck } from './schedule';
