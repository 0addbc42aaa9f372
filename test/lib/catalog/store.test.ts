import { describe, expect, it } from 'vitest';
import type { Product } from '../../../lib/catalog/product';
import { CatalogStore, CatalogStoreError } from '../../../lib/catalog/store';
import { StoreError } from '../../../lib/store/table';
import { useTable } from '../../support/store';

/** The catalog table on dynalite. */

const tables = useTable('catalog');
const catalog = () => new CatalogStore(tables.db, tables.table);

const product = (sku: string, priceFen = 100): Product => ({
  sku,
  name: `Product ${sku}`,
  priceFen,
  active: true,
  updatedAt: '2026-03-01T00:00:00.000Z',
});

describe('CatalogStore', () => {
  it('puts, replaces and lists products in sku order', async () => {
    await catalog().put(product('b'));
    await catalog().put(product('a'));
    await catalog().put(product('b', 250));
    expect(await catalog().list()).toEqual([product('a'), product('b', 250)]);
  });

  it('reads the products of some skus at once, those that exist', async () => {
    await catalog().put(product('a'));
    await catalog().put(product('c'));
    const found = await catalog().getMany(['a', 'b', 'c']);
    expect([...found.keys()].sort()).toEqual(['a', 'c']);
    expect(found.get('c')).toEqual(product('c'));
    await expect(catalog().getMany(Array.from({ length: 101 }, (_, i) => `s${i}`))).rejects.toThrow(RangeError);
  });

  it("fails with its own error, the SDK's as cause", async () => {
    const missing = new CatalogStore(tables.db, 'no-such-table');
    for (const call of [() => missing.put(product('a')), () => missing.list(), () => missing.getMany(['a'])]) {
      const error = await call().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CatalogStoreError);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ name: 'CatalogStoreError', cause: { name: 'ResourceNotFoundException' } });
    }
  });
});
