import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { BATCH_GET_MAX_KEYS, StoreError, Table } from '../../../lib/store/table';
import { useTable } from '../../support/store';

class TestStoreError extends StoreError {
  override readonly name = 'TestStoreError';
}

const tables = useTable();
const table = () => new Table(tables.db, tables.table, TestStoreError);

/** Has DynamoDB leave all but the first `keep` keys of the next `times` BatchGetItem requests unprocessed. */
function leaveUnprocessed(times: number, keep = 1) {
  const name = `unprocessed-${Math.random()}`;
  let left = times;
  let requests = 0;
  tables.db.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { RequestItems: Record<string, { Keys: unknown[] }> };
      if (context.commandName !== 'BatchGetItemCommand') return next(args);
      requests += 1;
      if (left <= 0) return next(args);
      left -= 1;
      const [name_, request] = Object.entries(input.RequestItems)[0]!;
      const unprocessed = request.Keys.slice(keep);
      const result = await next({ ...args, input: { RequestItems: { [name_]: { ...request, Keys: request.Keys.slice(0, keep) } } } });
      if (unprocessed.length > 0) (result.output as { UnprocessedKeys?: unknown }).UnprocessedKeys = { [name_]: { Keys: unprocessed } };
      return result;
    },
    { step: 'initialize', name },
  );
  return { requests: () => requests, stop: () => tables.db.middlewareStack.remove(name) };
}

describe('Table', () => {
  it("sends a request; a failure becomes the store's error with the SDK's as cause, a refused condition stays what it is", async () => {
    const missing = new Table(tables.db, 'no-such-table', TestStoreError);
    const failed = await missing.get({ pk: 'a' }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(TestStoreError);
    expect(failed).toBeInstanceOf(StoreError);
    expect(failed).toMatchObject({
      name: 'TestStoreError',
      message: 'DynamoDB GetItem failed',
      cause: { name: 'ResourceNotFoundException' },
    });
    const put = (db: typeof tables.db) =>
      db.send(new PutCommand({ TableName: tables.table, Item: { pk: 'a' }, ConditionExpression: 'attribute_exists(pk)' }));
    await expect(table().send('PutItem', put)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(await table().conditional('PutItem', put)).toBeUndefined();
  });

  it('reads one item consistently, with a projection if asked', async () => {
    await tables.put({ pk: 'a', x: 1, y: 2 });
    expect(await table().get({ pk: 'a' })).toEqual({ pk: 'a', x: 1, y: 2 });
    expect(await table().get({ pk: 'a' }, 'x')).toEqual({ x: 1 });
    expect(await table().get({ pk: 'b' })).toBeUndefined();
  });

  it('reads many items in one request, those that exist', async () => {
    await tables.put({ pk: 'a', v: 1 });
    await tables.put({ pk: 'c', v: 3 });
    const found = await table().getMany([{ pk: 'a' }, { pk: 'b' }, { pk: 'c' }], { retries: 0, baseMs: 1, maxMs: 1 });
    expect(found.sort((x, y) => String(x.pk).localeCompare(String(y.pk)))).toEqual([
      { pk: 'a', v: 1 },
      { pk: 'c', v: 3 },
    ]);
    await expect(
      table().getMany(
        Array.from({ length: BATCH_GET_MAX_KEYS + 1 }, (_, i) => ({ pk: `k${i}` })),
        { retries: 0, baseMs: 1, maxMs: 1 },
      ),
    ).rejects.toThrow(RangeError);
  });

  it("asks again for the keys DynamoDB left unprocessed, and gives up with the store's error after its retries", async () => {
    for (const pk of ['a', 'b', 'c', 'd']) await tables.put({ pk });
    const twice = leaveUnprocessed(2);
    try {
      // One key a request, twice: the third request reads the last.
      const found = await table().getMany([{ pk: 'a' }, { pk: 'b' }, { pk: 'c' }], { retries: 2, baseMs: 1, maxMs: 5 });
      expect(found.map((item) => item.pk).sort()).toEqual(['a', 'b', 'c']);
      expect(twice.requests()).toBe(3);
    } finally {
      twice.stop();
    }
    const again = leaveUnprocessed(3);
    try {
      await expect(
        table().getMany([{ pk: 'a' }, { pk: 'b' }, { pk: 'c' }, { pk: 'd' }], { retries: 2, baseMs: 1, maxMs: 5 }),
      ).rejects.toThrow(
        expect.objectContaining({ name: 'TestStoreError', message: 'DynamoDB BatchGetItem left 1 keys unprocessed after 3 requests' }),
      );
      expect(again.requests()).toBe(3);
    } finally {
      again.stop();
    }
  });
});
