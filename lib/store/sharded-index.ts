import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Table } from './table';

/**
 * The one way to read a sharded index. The table's sparse indexes spread their items over shards, so
 * that no partition key takes every write: recovery's pending orders (`pendingShard`), its open
 * refunds (`refundShard`), the outbox (`outboxShard`), and the by-day indexes (`paidDayShard`,
 * `requestedDayShard` = `<yyyyMMdd>#<shard>`). Reading one means a Query per shard, page by page.
 */

/** One index, and the items of it a walk reads. */
export interface ShardedQuery {
  index: string;
  shards: number;
  /** The index's partition key, and its value in each shard (`"3"`, `"20260101#3"`). */
  partition: { attribute: string; valueIn: (shard: number) => string };
  /** Only the items whose sort key is at most `value` (the due ones: `nextCheckAt <= now`). */
  atMost?: { attribute: string; value: number };
  /** Items per page (the Query's Limit); none: as many as DynamoDB puts in a page. */
  pageSize?: number;
  /** The attributes to read (a ProjectionExpression); none: the whole item as the index holds it. */
  projection?: string;
}

/** One page of one shard; `last` when no page follows it in the walk. */
export interface ShardPage<Item> {
  shard: number;
  items: Item[];
  last: boolean;
}

/**
 * Every page of every shard, in shard order, each read when the walker asks for it (so a walker that
 * stops asking reads nothing more). Every page is handed over, even an empty one, so that a walker
 * can stop between any two requests.
 */
export async function* shardPages<Item = Record<string, unknown>>(
  table: Table,
  query: ShardedQuery,
  /** What an item of the index is read as. */
  itemOf: (item: Record<string, unknown>) => Item = (item) => item as Item,
): AsyncGenerator<ShardPage<Item>> {
  const names: Record<string, string> = { '#shard': query.partition.attribute };
  let condition = '#shard = :shard';
  if (query.atMost) {
    names['#sort'] = query.atMost.attribute;
    condition += ' AND #sort <= :most';
  }
  for (let shard = 0; shard < query.shards; shard++) {
    let startKey: Record<string, unknown> | undefined;
    do {
      const values: Record<string, unknown> = { ':shard': query.partition.valueIn(shard) };
      if (query.atMost) values[':most'] = query.atMost.value;
      const from = startKey;
      const page = await table.send('Query', (db) =>
        db.send(
          new QueryCommand({
            TableName: table.name,
            IndexName: query.index,
            KeyConditionExpression: condition,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ProjectionExpression: query.projection,
            Limit: query.pageSize,
            ExclusiveStartKey: from,
          }),
        ),
      );
      startKey = page.LastEvaluatedKey;
      yield { shard, items: (page.Items ?? []).map(itemOf), last: !startKey && shard === query.shards - 1 };
    } while (startKey);
  }
}

/** Every item of a walk, page after page (for reads that take every page: the by-day indexes). */
export async function* shardItems<Item = Record<string, unknown>>(
  table: Table,
  query: ShardedQuery,
  itemOf?: (item: Record<string, unknown>) => Item,
): AsyncGenerator<Item> {
  for await (const page of shardPages(table, query, itemOf)) yield* page.items;
}

/**
 * Takes up a walk's pages one by one until it ends or `deadline` (epoch ms) has passed: no page is
 * read once it has, and what is left stays due for the next run. `handle` gets each page's items and
 * answers true when it stopped early itself. True when the walk stopped early.
 */
export async function walkUntil<Item>(
  pages: AsyncGenerator<ShardPage<Item>>,
  deadline: number,
  handle: (items: Item[]) => Promise<boolean>,
): Promise<boolean> {
  try {
    for (;;) {
      if (Date.now() >= deadline) return true;
      const next = await pages.next();
      if (next.done) return false;
      if (await handle(next.value.items)) return true;
      if (next.value.last) return false;
    }
  } finally {
    await pages.return(undefined);
  }
}

/**
 * Walks a sharded index's due items (recovery's pending orders, its open refunds), handling each
 * page's items `concurrency` at a time and taking none up once `deadline` has passed. True when it
 * stopped early.
 */
export function walkDue<Item>(
  pages: AsyncGenerator<ShardPage<Item>>,
  options: { deadline: number; concurrency: number; handle: (item: Item) => Promise<void> },
): Promise<boolean> {
  const pastDeadline = () => Date.now() >= options.deadline;
  return walkUntil(pages, options.deadline, async (items) => {
    let stoppedEarly = false;
    const queue = [...items];
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        if (pastDeadline()) {
          stoppedEarly = true;
          return;
        }
        await options.handle(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, queue.length) }, worker));
    return stoppedEarly;
  });
}
