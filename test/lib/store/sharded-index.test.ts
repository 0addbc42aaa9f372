import { describe, expect, it } from 'vitest';
import { shardItems, shardPages, walkDue, walkUntil, type ShardedQuery, type ShardPage } from '../../../lib/store/sharded-index';
import { StoreError, Table } from '../../../lib/store/table';
import { useTable } from '../../support/store';

/** The one walk of the orders table's sharded indexes, on the pending index (4 shards of its 16 here) and a by-day index. */

class TestStoreError extends StoreError {}

const tables = useTable();
const table = () => new Table(tables.db, tables.table, TestStoreError);

/** Counts the Query requests the walk makes. */
function countQueries(): { count: () => number; stop: () => void } {
  const name = `queries-${Math.random()}`;
  let queries = 0;
  tables.db.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'QueryCommand') queries += 1;
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { count: () => queries, stop: () => tables.db.middlewareStack.remove(name) };
}

/** Pending items: `perShard` in each of shards 0..3, due at 100, 200, …; one not due (at 10,000) in shard 0. */
async function seedPending(perShard: number): Promise<void> {
  for (let shard = 0; shard < 4; shard++) {
    for (let i = 0; i < perShard; i++) await tables.put({ pk: `s${shard}-${i}`, pendingShard: String(shard), nextCheckAt: (i + 1) * 100 });
  }
  await tables.put({ pk: 'later', pendingShard: '0', nextCheckAt: 10_000 });
  await tables.put({ pk: 'not-pending' });
}

const pending = (pageSize?: number): ShardedQuery => ({
  index: 'pendingByShard',
  shards: 4,
  partition: { attribute: 'pendingShard', valueIn: String },
  atMost: { attribute: 'nextCheckAt', value: 5_000 },
  ...(pageSize ? { pageSize } : {}),
});

async function pagesOf<Item>(pages: AsyncGenerator<ShardPage<Item>>): Promise<Array<ShardPage<Item>>> {
  const all: Array<ShardPage<Item>> = [];
  for await (const page of pages) all.push(page);
  return all;
}

describe('shardPages', () => {
  it('reads every shard page by page, the due items only, oldest first in a shard, and marks the last page', async () => {
    await seedPending(3);
    const pages = await pagesOf(shardPages(table(), pending(2)));
    expect(pages.map((page) => [page.shard, page.items.map((item) => item.pk), page.last])).toEqual([
      [0, ['s0-0', 's0-1'], false],
      [0, ['s0-2'], false],
      [1, ['s1-0', 's1-1'], false],
      [1, ['s1-2'], false],
      [2, ['s2-0', 's2-1'], false],
      [2, ['s2-2'], false],
      [3, ['s3-0', 's3-1'], false],
      [3, ['s3-2'], true],
    ]);
  });

  it('hands over empty shards too (a walker may stop between any two requests), and reads items as told', async () => {
    await tables.put({ pk: 'only', pendingShard: '2', nextCheckAt: 1 });
    const pages = await pagesOf(shardPages(table(), pending(), (item) => String(item.pk)));
    expect(pages).toEqual([
      { shard: 0, items: [], last: false },
      { shard: 1, items: [], last: false },
      { shard: 2, items: ['only'], last: false },
      { shard: 3, items: [], last: true },
    ]);
  });

  it('reads a day of a by-day index whole, with a projection (shardItems)', async () => {
    for (let shard = 0; shard < 16; shard += 5)
      await tables.put({ pk: `paid-${shard}`, paidDayShard: `20260301#${shard}`, transactionId: `tx${shard}`, totalFee: shard });
    await tables.put({ pk: 'other-day', paidDayShard: '20260302#0', transactionId: 'tx', totalFee: 1 });
    const query: ShardedQuery = {
      index: 'paidByDay',
      shards: 16,
      partition: { attribute: 'paidDayShard', valueIn: (shard) => `20260301#${shard}` },
      projection: 'pk, totalFee',
    };
    const items = [];
    for await (const item of shardItems(table(), query)) items.push(item);
    expect(items).toEqual([0, 5, 10, 15].map((shard) => ({ pk: `paid-${shard}`, totalFee: shard })));
  });

  it("fails with the store's error", async () => {
    const missing = new Table(tables.db, 'no-such-table', TestStoreError);
    await expect(pagesOf(shardPages(missing, pending()))).rejects.toMatchObject({
      message: 'DynamoDB Query failed',
      cause: { name: 'ResourceNotFoundException' },
    });
  });
});

describe('walkUntil', () => {
  it('reads nothing once the deadline has passed: no Query at all, and it says it stopped early', async () => {
    await seedPending(1);
    const queries = countQueries();
    try {
      expect(await walkUntil(shardPages(table(), pending()), Date.now() - 1, async () => false)).toBe(true);
      expect(queries.count()).toBe(0);
    } finally {
      queries.stop();
    }
  });

  it('stops between two pages once the deadline passes: the next page is never read', async () => {
    await seedPending(1);
    const queries = countQueries();
    const realNow = Date.now;
    const deadline = realNow() + 60_000;
    const seen: unknown[] = [];
    try {
      const stopped = await walkUntil(shardPages(table(), pending()), deadline, async (items) => {
        seen.push(...items.map((item) => item.pk));
        // The second page is handled past the deadline.
        if (seen.length === 2) Date.now = () => deadline;
        return false;
      });
      expect(stopped).toBe(true);
      expect(seen).toEqual(['s0-0', 's1-0']);
      expect(queries.count()).toBe(2);
    } finally {
      Date.now = realNow;
      queries.stop();
    }
  });

  it('ends after the last page without another request, or where its handler stopped', async () => {
    await seedPending(1);
    const queries = countQueries();
    try {
      const seen: unknown[] = [];
      expect(
        await walkUntil(
          shardPages(table(), pending()),
          Date.now() + 60_000,
          async (items) => (seen.push(...items.map((item) => item.pk)), false),
        ),
      ).toBe(false);
      expect(seen).toEqual(['s0-0', 's1-0', 's2-0', 's3-0']);
      expect(queries.count()).toBe(4);
      let pages = 0;
      expect(await walkUntil(shardPages(table(), pending()), Date.now() + 60_000, async () => ++pages === 2)).toBe(true);
      expect(queries.count()).toBe(6);
    } finally {
      queries.stop();
    }
  });
});

describe('walkDue', () => {
  it('handles every due item, `concurrency` at a time', async () => {
    await seedPending(5);
    let running = 0;
    let most = 0;
    const handled: string[] = [];
    const stopped = await walkDue(shardPages(table(), pending(3)), {
      deadline: Date.now() + 60_000,
      concurrency: 2,
      handle: async (item) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        handled.push(String(item.pk));
        running -= 1;
      },
    });
    expect(stopped).toBe(false);
    expect(handled.sort()).toEqual([0, 1, 2, 3].flatMap((shard) => [0, 1, 2, 3, 4].map((i) => `s${shard}-${i}`)).sort());
    expect(most).toBe(2);
  });

  it('takes nothing more up once the deadline has passed, and says it stopped early', async () => {
    await seedPending(5);
    const queries = countQueries();
    try {
      const handled: string[] = [];
      const deadline = Date.now() + 60_000;
      const realNow = Date.now;
      let stopped: boolean;
      try {
        stopped = await walkDue(shardPages(table(), pending(5)), {
          deadline,
          concurrency: 1,
          handle: async (item) => {
            handled.push(String(item.pk));
            // The third item runs past the deadline.
            if (handled.length === 3) Date.now = () => deadline;
          },
        });
      } finally {
        Date.now = realNow;
      }
      expect(stopped).toBe(true);
      expect(handled).toEqual(['s0-0', 's0-1', 's0-2']);
      expect(queries.count()).toBe(1);
    } finally {
      queries.stop();
    }
  });
});
