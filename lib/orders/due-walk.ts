/** One page of a sparse index's due items in one shard, and where the next page starts. */
export interface DuePage<Item> {
  orders: Item[];
  nextKey?: Record<string, unknown>;
}

/**
 * Walks every shard of a sparse "due" index page by page (recovery's pending orders, its open
 * refunds), handling each page's items `concurrency` at a time, and takes nothing more up once
 * `deadline` (epoch ms) has passed: what is left stays due for the next run. True when it stopped
 * early.
 */
export async function walkDueShards<Item>(options: {
  shards: number;
  deadline: number;
  concurrency: number;
  page: (shard: number, startKey: Record<string, unknown> | undefined) => Promise<DuePage<Item>>;
  handle: (item: Item) => Promise<void>;
}): Promise<boolean> {
  let stoppedEarly = false;
  const pastDeadline = () => Date.now() >= options.deadline;
  for (let shard = 0; shard < options.shards; shard += 1) {
    let startKey: Record<string, unknown> | undefined;
    do {
      if (pastDeadline()) return true;
      const page = await options.page(shard, startKey);
      startKey = page.nextKey;
      const queue = [...page.orders];
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
    } while (startKey);
  }
  return stoppedEarly;
}
