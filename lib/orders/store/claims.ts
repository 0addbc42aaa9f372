import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { failure, type Failure } from '../../result';
import { GuardedPut } from '../../store/guarded-update';
import { shardItems } from '../../store/sharded-index';
import { Table } from '../../store/table';
import { OrderStoreError } from '../errors';
import { DAY_SHARDS, dayPartition, dayShard, REFUND_DAY_INDEX } from './schema';

/**
 * How long DynamoDB keeps an idempotency claim (its `ttl` attribute): past the longest order expiry
 * (7 days) with a day to spare, so a key is never forgotten while its order can still be paid.
 */
const IDEMPOTENCY_TTL_SECONDS = 8 * 24 * 60 * 60;

/** A key was claimed by an earlier request: what that request claimed it for. */
type Taken<Holder> = Failure<'KEY_TAKEN'> & Holder;

/**
 * Claims of idempotency keys, items of the orders table: `idempotency#<scope>#<key>` names the order
 * a request made, `refund#<claim>` the refund a refund request made. A claim is written once, by a
 * conditional put, before anything else the request does: the first request that derives a key owns
 * it, and a repeat learns what it owns.
 */
export class ClaimStore {
  readonly #table: Table;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware. */
    readonly db: DynamoDBDocumentClient,
    table: string,
  ) {
    this.#table = new Table(db, table, OrderStoreError);
  }

  /**
   * Claims `pk` for `item` (the first claim owns it): `{ claimed: true }`, or the item of the claim
   * that holds it, read consistently.
   */
  async claim(pk: string, item: Record<string, unknown>): Promise<{ claimed: true } | { claimed: false; holder: Record<string, unknown> }> {
    if (await new GuardedPut(this.#table, { pk }, item).when('keyIsNew', 'attribute_not_exists(pk)').run()) return { claimed: true };
    const holder = await this.#table.get({ pk });
    // Claims are forgotten only by their ttl, long after they matter.
    if (!holder) throw this.#table.error(`claim ${pk} was taken, then gone`);
    return { claimed: false, holder };
  }

  /**
   * Claims an idempotency key (`<caller scope>#<key>`; the scope holds no `#`, so no caller's key can
   * reach into another's scope) for a new order. When the key is taken (reason `KEY_TAKEN`), answers
   * the order it names and the fingerprint of the request that took it.
   */
  async idempotencyKey(
    key: string,
    claim: { outTradeNo: string; fingerprint: string; createdAt: string },
  ): Promise<{ ok: true } | Taken<{ outTradeNo: string; fingerprint: string }>> {
    const ttl = Math.floor(Date.parse(claim.createdAt) / 1000) + IDEMPOTENCY_TTL_SECONDS;
    const claimed = await this.claim(`idempotency#${key}`, { ...claim, ttl });
    if (claimed.claimed) return { ok: true };
    const { outTradeNo, fingerprint } = claimed.holder as { outTradeNo: string; fingerprint: string };
    return { ...failure('KEY_TAKEN', `idempotency key already names order ${outTradeNo}`), outTradeNo, fingerprint };
  }

  /**
   * Claims a refund request's idempotency key (`refund#<claim>`, refunds/numbers.ts refundClaimFor) for the
   * refund `outRefundNo` of an order. The claim is indexed by the Beijing day of `createdAt`
   * (REFUND_DAY_INDEX). Answers the claim's refund number; when it was taken, what took it (its
   * order, request fingerprint and refund number).
   */
  async refund(
    claimKey: string,
    claim: { outRefundNo: string; outTradeNo: string; fingerprint: string; createdAt: string },
  ): Promise<{ ok: true; outRefundNo: string } | Taken<{ outTradeNo: string; fingerprint: string; outRefundNo: string }>> {
    const claimed = await this.claim(`refund#${claimKey}`, { ...claim, requestedDayShard: dayShard(claim.createdAt) });
    if (claimed.claimed) return { ok: true, outRefundNo: claim.outRefundNo };
    const { outTradeNo, fingerprint, outRefundNo } = claimed.holder as { outTradeNo: string; fingerprint: string; outRefundNo: string };
    return { ...failure('KEY_TAKEN', `refund claim ${claimKey} is taken`), outTradeNo, fingerprint, outRefundNo };
  }

  /**
   * The refunds requested through this backend on one Beijing day (`yyyyMMdd`), as their claims
   * (the index projects the claim's key and order; refunds/numbers.ts refundNumbersOfClaim names the refund).
   */
  async refundsRequestedOnDay(day: string): Promise<Array<{ claim: string; outTradeNo: string }>> {
    const claims: Array<{ claim: string; outTradeNo: string }> = [];
    for await (const claim of shardItems(this.#table, {
      index: REFUND_DAY_INDEX,
      shards: DAY_SHARDS,
      partition: dayPartition('requestedDayShard', day),
    })) {
      claims.push({ claim: (claim.pk as string).slice('refund#'.length), outTradeNo: claim.outTradeNo as string });
    }
    return claims;
  }
}
