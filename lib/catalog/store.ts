import { PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { StoreError, Table } from '../store/table';
import type { Product } from './product';

/** A DynamoDB call failed: the caller answers so that the request is retried. */
export class CatalogStoreError extends StoreError {
  override readonly name = 'CatalogStoreError';
}

/** How a batch read of products asks again for the keys DynamoDB left unprocessed (an order has at most 20 lines). */
const BATCH_RETRY = { retries: 5, baseMs: 20, maxMs: 1_000 };

/**
 * The catalog table (key `sku`), apart from the orders: reading the whole catalog reads products
 * only, and only the functions that need prices may read it.
 */
export class CatalogStore {
  readonly #table: Table;

  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    table: string,
  ) {
    this.#table = new Table(db, table, CatalogStoreError);
  }

  /** Creates or replaces a product. */
  async put(product: Product): Promise<void> {
    await this.#table.send('PutItem', (db) => db.send(new PutCommand({ TableName: this.#table.name, Item: product })));
  }

  /** Every product, in pages of DynamoDB's size. */
  async list(): Promise<Product[]> {
    const products: Product[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const from = startKey;
      const page = await this.#table.send('Scan', (db) =>
        db.send(new ScanCommand({ TableName: this.#table.name, ExclusiveStartKey: from, ConsistentRead: true })),
      );
      products.push(...((page.Items ?? []) as Product[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return products.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
  }

  /**
   * The products of these skus as they are now (strongly consistent reads in one request, so an
   * order is priced from the catalog as written, each line from one read of its product); a sku
   * with no product is absent from the map. At most BATCH_GET_MAX_KEYS skus.
   */
  async getMany(skus: readonly string[]): Promise<Map<string, Product>> {
    const found = new Map<string, Product>();
    for (const product of await this.#table.getMany<Product>(
      skus.map((sku) => ({ sku })),
      BATCH_RETRY,
    ))
      found.set(product.sku, product);
    return found;
  }
}
