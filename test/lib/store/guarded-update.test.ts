import { describe, expect, it } from 'vitest';
import { GuardedDelete, GuardedPut, GuardedUpdate } from '../../../lib/store/guarded-update';
import { StoreError, Table } from '../../../lib/store/table';
import { useRefusals, useTable } from '../../support/store';

/** The helper every store's conditional writes go through, on dynalite. */

class TestStoreError extends StoreError {
  override readonly name = 'TestStoreError';
}

const tables = useTable();
const refusals = useRefusals();
const table = () => new Table(tables.db, tables.table, TestStoreError);
const update = (pk = 'a') => new GuardedUpdate(table(), { pk });

describe('GuardedUpdate', () => {
  it('joins its SET, REMOVE and ADD parts into one expression, each clause once', () => {
    const built = update()
      .set('a = :a', { ':a': 1 })
      .remove('b')
      .set('c = :c, d = :d', { ':c': 2, ':d': 3 })
      .add('n :one', { ':one': 1 })
      .remove('e', 'f');
    expect(built.expression).toBe('SET a = :a, c = :c, d = :d REMOVE b, e, f ADD n :one');
    expect(() => update().expression).toThrow(/SET, REMOVE or ADD/);
  });

  it('writes, and answers the item as it now is', async () => {
    await tables.put({ pk: 'a', b: 'gone', n: 1 });
    const written = await update()
      .set('a = :a', { ':a': 'x' })
      .remove('b')
      .add('n :two', { ':two': 2 })
      .when('exists', 'attribute_exists(pk)')
      .run();
    expect(written).toEqual({ pk: 'a', a: 'x', n: 3 });
    expect(await tables.item({ pk: 'a' })).toEqual(written);
  });

  it('holds only when every named part holds: each part refuses alone, nothing written, and the refusal is logged with the parts named', async () => {
    await tables.put({ pk: 'a', status: 'PAID', count: 3 });
    const guarded = (status: string, most: number) =>
      update()
        .when('orderIsPaid', '#status = :paid', { ':paid': status }, { '#status': 'status' })
        .when('underMost', 'attribute_not_exists(#count) OR #count < :most', { ':most': most }, { '#count': 'count' })
        .set('touched = :yes', { ':yes': true });
    expect(await guarded('PENDING', 50).run()).toBeUndefined();
    expect(await guarded('PAID', 3).run()).toBeUndefined();
    expect(await tables.item({ pk: 'a' })).toEqual({ pk: 'a', status: 'PAID', count: 3 });
    expect(refusals()).toEqual([
      ['orderIsPaid', 'underMost'],
      ['orderIsPaid', 'underMost'],
    ]);
    expect(await guarded('PAID', 4).run()).toMatchObject({ touched: true });
  });

  it('keeps each part whole: an OR inside a part is not loosened by the ANDs around it', async () => {
    // Unparenthesized, `x = :one AND attribute_not_exists(y) OR y < :two` would hold here (y < 2).
    await tables.put({ pk: 'a', x: 2, y: 1 });
    const refused = await update()
      .when('xIsOne', 'x = :one', { ':one': 1 })
      .when('yAbsentOrSmall', 'attribute_not_exists(y) OR y < :two', { ':two': 2 })
      .set('z = :one')
      .run();
    expect(refused).toBeUndefined();
  });

  it('answers whether it held without reading the item back (applied)', async () => {
    await tables.put({ pk: 'a', v: 1 });
    expect(await update().when('vIsOne', 'v = :one', { ':one': 1 }).set('v = :two', { ':two': 2 }).applied()).toBe(true);
    expect(await update().when('vIsOne', 'v = :one', { ':one': 1 }).set('v = :two', { ':two': 2 }).applied()).toBe(false);
    expect((await tables.item({ pk: 'a' }))?.v).toBe(2);
  });

  it('refuses a placeholder given two values before anything is sent', () => {
    expect(() => update().set('a = :v', { ':v': 1 }).when('b', 'b = :v', { ':v': 2 })).toThrow(/:v given two values/);
    expect(() => update().set('a.#n = :v', { ':v': 1 }, { '#n': 'x' }).when('b', 'attribute_exists(#n)', undefined, { '#n': 'y' })).toThrow(
      /#n given two values/,
    );
    // The same value twice is one placeholder.
    expect(update().set('a = :zero', { ':zero': 0 }).set('b = :zero', { ':zero': 0 }).expression).toBe('SET a = :zero, b = :zero');
  });

  it("makes any other failure the store's error, with the SDK's as its cause", async () => {
    const missing = new GuardedUpdate(new Table(tables.db, 'no-such-table', TestStoreError), { pk: 'a' })
      .set('a = :a', { ':a': 1 })
      .when('exists', 'attribute_exists(pk)');
    const error = await missing.run().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TestStoreError);
    expect((error as Error).message).toBe('DynamoDB UpdateItem failed');
    expect((error as Error).cause).toMatchObject({ name: 'ResourceNotFoundException' });
    // A malformed expression is a failure too, not a refusal.
    await expect(update().set('a = :unknown').run()).rejects.toBeInstanceOf(TestStoreError);
  });
});

describe('GuardedPut', () => {
  it('puts the item under its key while the condition holds', async () => {
    const put = () => new GuardedPut(table(), { pk: 'k' }, { v: 1, pk: 'ignored' }).when('keyIsNew', 'attribute_not_exists(pk)');
    expect(await put().run()).toBe(true);
    expect(await tables.item({ pk: 'k' })).toEqual({ pk: 'k', v: 1 });
    expect(await put().run()).toBe(false);
    expect(refusals()).toEqual([['keyIsNew']]);
  });

  it('answers the item it replaced (replacing), {} when there was none, undefined when refused', async () => {
    const put = (ranAt: string) =>
      new GuardedPut(table(), { pk: 'head' }, { ranAt }).when('noLaterRun', 'attribute_not_exists(pk) OR ranAt <= :ranAt', {
        ':ranAt': ranAt,
      });
    expect(await put('2026-01-02').replacing()).toEqual({});
    expect(await put('2026-01-03').replacing()).toEqual({ replaced: { pk: 'head', ranAt: '2026-01-02' } });
    expect(await put('2026-01-01').replacing()).toBeUndefined();
    expect((await tables.item({ pk: 'head' }))?.ranAt).toBe('2026-01-03');
  });
});

describe('GuardedDelete', () => {
  it('deletes only while the condition holds', async () => {
    await tables.put({ pk: 'p', runId: 'r1' });
    const remove = (runId: string) => new GuardedDelete(table(), { pk: 'p' }).when('pageOfRun', 'runId = :runId', { ':runId': runId });
    expect(await remove('r2').run()).toBe(false);
    expect(await tables.item({ pk: 'p' })).toBeDefined();
    expect(await remove('r1').run()).toBe(true);
    expect(await tables.item({ pk: 'p' })).toBeUndefined();
    expect(await remove('r1').run()).toBe(false);
    expect(refusals()).toEqual([['pageOfRun'], ['pageOfRun']]);
  });
});
