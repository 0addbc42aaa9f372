import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, vi } from 'vitest';
import { logger } from '../../lib/log';
import type { Order } from '../../lib/orders/model';
import { createDocumentClient } from '../../lib/store/dynamo';
import { createCatalogTable, createOrdersTable, startDynalite } from './dynalite';

/** What a store's test works on: a client of the file's dynalite and this test's own table. */
export interface StoreTable {
  readonly db: DynamoDBDocumentClient;
  /** This test's table, fresh (created from serverless.yml's definition). */
  readonly table: string;
  /** An item as stored (a consistent read, below every store). */
  item(key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  /** Writes an item as it is, below every store. */
  put(item: Record<string, unknown>): Promise<void>;
}

/**
 * The stores' tests (test/lib/store, test/lib/orders/store, …): one dynalite for the file, and a
 * fresh table for each test, the orders table or the catalog table.
 */
export function useTable(kind: 'orders' | 'catalog' = 'orders'): StoreTable {
  let dynalite: Awaited<ReturnType<typeof startDynalite>>;
  let db: DynamoDBDocumentClient;
  let table = '';
  beforeAll(async () => {
    dynalite = await startDynalite();
    db = createDocumentClient(dynalite.endpoint);
  });
  beforeEach(async () => {
    table = `${kind}-${randomUUID().slice(0, 8)}`;
    await (kind === 'orders' ? createOrdersTable : createCatalogTable)(dynalite.endpoint, table);
  });
  afterAll(async () => {
    db?.destroy();
    await dynalite?.close();
  });
  return {
    get db() {
      return db;
    },
    get table() {
      return table;
    },
    item: async (key) => (await db.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item,
    put: async (item) => {
      await db.send(new PutCommand({ TableName: table, Item: item }));
    },
  };
}

/**
 * The refused writes' logs (lib/store/guarded-update.ts logs each at debug level, with the names of
 * the conditions that guarded it), one list of names per refusal, since the test began.
 */
export function useRefusals(): () => string[][] {
  let debug: { mock: { calls: unknown[][] }; mockRestore(): void };
  beforeEach(() => {
    debug = vi.spyOn(logger, 'debug');
  });
  afterEach(() => {
    debug.mockRestore();
  });
  return () =>
    debug.mock.calls
      .filter((call) => call[0] === 'guarded write not applied')
      .map((call) => (call[1] as { conditions: string[] }).conditions);
}

/** An order as the orders table holds it, PENDING unless told otherwise; its own out_trade_no. */
export function testOrder(overrides: Partial<Order> = {}): Order {
  const outTradeNo = overrides.outTradeNo ?? `T${randomUUID().replace(/-/g, '').slice(0, 24)}`;
  return {
    outTradeNo,
    status: 'PENDING',
    tradeType: 'NATIVE',
    totalFee: 1000,
    description: 'store test',
    signType: 'HMAC-SHA256',
    createdAt: '2026-03-01T02:00:00.000Z',
    expiresAt: '2026-03-01T04:00:00.000Z',
    unifiedOrder: { out_trade_no: outTradeNo, total_fee: String(overrides.totalFee ?? 1000), trade_type: 'NATIVE' },
    review: {},
    ...overrides,
  };
}
