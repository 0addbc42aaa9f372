/**
 * The orders table's records, one store each, over lib/store's table, guarded writes and sharded
 * index walk: orders (orders.ts), refunds on orders (refunds.ts), idempotency and refund claims
 * (claims.ts), reconciliation reports (reports.ts); the indexes they share (schema.ts). The token
 * cache's items are lib/identity's, the outbox's index lib/events'.
 */
export { BATCH_GET_MAX_KEYS } from '../../store/table';
export { ClaimStore } from './claims';
export { OrderStore, type PaymentOfDay } from './orders';
export { MAX_REFUNDS_PER_ORDER, RefundStore, type RefundSettlement } from './refunds';
export { ReportStore } from './reports';
export { DAY_SHARDS, dayShard, OPEN_REFUNDS_INDEX, PAID_DAY_INDEX, PENDING_INDEX, PENDING_SHARDS, REFUND_DAY_INDEX } from './schema';
