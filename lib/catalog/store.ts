import { BatchGetCommand, PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Product } from './product';

/** A DynamoDB call failed: the caller answers so that the request is retried. */
export class CatalogStoreError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'CatalogStoreError';
  }
}

/** BatchGetItem reads at most 100 keys; an order has at most 20 lines. */
const MAX_BATCH = 100;
const UNPROCESSED_RETRIES = 5;

/**
 * The catalog table (key `sku`), apart from the orders: reading the whole catalog reads products
 * only, and only the functions that need prices may read it.
 */
export class CatalogStore {
  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw new CatalogStoreError(`DynamoDB ${what} failed`, error);
    }
  }

  /** Creates or replaces a product. */
  async put(product: Product): Promise<void> {
    await this.send('PutItem', () => this.db.send(new PutCommand({ TableName: this.table, Item: product })));
  }

  /** Every product, in pages of DynamoDB's size. */
  async list(): Promise<Product[]> {
    const products: Product[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.send('Scan', () =>
        this.db.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: startKey, ConsistentRead: true })),
      );
      products.push(...((page.Items ?? []) as Product[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return products.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
  }

  /**
   * The products of these skus as they are now (strongly consistent reads in one request, so an
   * order is priced from the catalog as written, each line from one read of its product); a sku
   * with no product is absent from the map.
   */
  async getMany(skus: readonly string[]): Promise<Map<string, Product>> {
    if (skus.length > MAX_BATCH) throw new RangeError(`getMany: at most ${MAX_BATCH} skus`);
    const found = new Map<string, Product>();
    let keys: Record<string, unknown>[] = skus.map((sku) => ({ sku }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > UNPROCESSED_RETRIES) throw new CatalogStoreError('DynamoDB BatchGetItem kept leaving keys unprocessed', undefined);
      // Unprocessed keys mean throttling: back off before asking for them again.
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
      const result = await this.send('BatchGetItem', () =>
        this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } })),
      );
      for (const item of (result.Responses?.[this.table] ?? []) as Product[]) found.set(item.sku, item);
      keys = (result.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
    }
    return found;
  }
}
