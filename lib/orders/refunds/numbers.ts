/** The numbers of a refund: its idempotency claim and its out_refund_no. */
import { createHash } from 'node:crypto';

/**
 * The claim of an idempotency key: `R` and 31 characters of the base64url SHA-256 of the key (186
 * bits). One claim per key in this deployment, so the same key sent for another order, amount or
 * reason is refused (409). Refunds requested before refund numbers named their order were sent to
 * WeChat Pay under this number itself, and keep it.
 */
export function refundClaimFor(idempotencyKey: string): string {
  return `R${createHash('sha256').update(`refund\n${idempotencyKey}`, 'utf8').digest('base64url').slice(0, 31)}`;
}

/**
 * The out_refund_no of a key's refund of an order: `R` and 31 characters of the base64url SHA-256
 * of the order and the key's claim. WeChat Pay holds an out_refund_no unique per MERCHANT, and one
 * merchant id often serves several deployments (staging and production, a recreated table, a second
 * system) whose merchants reuse their keys: a number of the key alone would name another
 * deployment's refund of another order. Within `[0-9A-Za-z_-|*@]{1,64}`; the same for every retry.
 * It is made from the claim (not the key) so that the day's claims, which hold only their claim and
 * order (store/schema.ts REFUND_DAY_INDEX), still name their refund (refundNumbersOfClaim).
 */
export function outRefundNoFor(outTradeNo: string, idempotencyKey: string): string {
  return outRefundNoOfClaim(outTradeNo, refundClaimFor(idempotencyKey));
}

function outRefundNoOfClaim(outTradeNo: string, claim: string): string {
  return `R${createHash('sha256').update(`refund of order\n${outTradeNo}\n${claim}`, 'utf8').digest('base64url').slice(0, 31)}`;
}

/**
 * The out_refund_nos a claim's refund may have: the number naming its order, or, for a refund
 * requested before numbers named their order, the claim itself.
 */
export function refundNumbersOfClaim(claim: { claim: string; outTradeNo: string }): [string, string] {
  return [outRefundNoOfClaim(claim.outTradeNo, claim.claim), claim.claim];
}
