import { randomInt } from 'node:crypto';
import { toBeijingTimestamp } from '../../wechatpay/time';

/**
 * The orders table's indexes as the stores read them (serverless.yml defines them; local/tables.ts
 * and the tests create them from there). The table holds orders (`pk` = out_trade_no), idempotency
 * and refund claims (claims.ts), reconciliation reports (reports.ts) and the token cache
 * (lib/identity/token-store.ts).
 */

/**
 * Pending orders are spread over this many index partitions so that no single partition key takes
 * every write at high order rates; recovery queries each shard.
 */
export const PENDING_SHARDS = 16;
export const PENDING_INDEX = 'pendingByShard';

/**
 * Orders with PROCESSING refunds carry `refundShard` and `refundCheckAt`, the keys of this sparse
 * index, and only while they have one: recovery reads the open refunds, never the table. Spread over
 * as many shards as the pending index.
 */
export const OPEN_REFUNDS_INDEX = 'openRefundsByShard';

/** The shards of each by-day index: one day's writes spread over as many partition keys as the pending index's. */
export const DAY_SHARDS = 16;

/**
 * Paid orders by the Beijing day of their payment (the day of WeChat Pay's bill), for the daily
 * reconciliation: `paidDayShard` is `<yyyyMMdd>#<shard>`, and reading a day reads that day's payments
 * and nothing else.
 */
export const PAID_DAY_INDEX = 'paidByDay';

/**
 * Refunds requested through this backend by the Beijing day of their request, for the daily
 * reconciliation to find the refunds recorded SUCCESS that the bill lacks, with 16 queries a day and
 * no scan. WeChat Pay's bill lists a refund on the day it accepted it (交易时间 of a refund line is
 * when the refund was accepted, not when it succeeded), with its status of that moment, and this
 * backend sends a refund the moment it is requested.
 *
 * The key is on the refund's claim (`refund#<claim>`, `requestedDayShard` =
 * `<yyyyMMdd>#<shard>`), not on the order: an order holds up to 50 refunds, made on different days,
 * but an item stands under one key of an index, so a day attribute on the order would move with
 * each refund and lose the earlier days'. The claim is one item per refund, written once (a
 * conditional put) before anything else of the refund: the day costs no write of its own, only the
 * index's, and the index projects nothing but the order's key. Refunds made outside this backend
 * have no claim; WeChat Pay itself told of them (their callback or the bill).
 */
export const REFUND_DAY_INDEX = 'refundsByRequestDay';

/** The by-day index key of something that happened at `at` (ISO time): its Beijing day and a shard. */
export function dayShard(at: string, shard: number = randomInt(DAY_SHARDS)): string {
  return `${toBeijingTimestamp(new Date(at)).slice(0, 8)}#${shard}`;
}

/** A random shard of the pending and open-refunds indexes, as their items carry it. */
export const randomShard = (): string => String(randomInt(PENDING_SHARDS));

/** The `partition` of a by-day index's walk (lib/store/sharded-index.ts): the shards of one day. */
export const dayPartition = (attribute: string, day: string) => ({ attribute, valueIn: (shard: number) => `${day}#${shard}` });
