import { BatchGetCommand, GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { isConditionFailure } from './dynamo';

/**
 * A DynamoDB request failed for a reason other than a condition; the SDK's error is its `cause`.
 * Each store has its own subclass (OrderStoreError, CatalogStoreError, …), so that its callers tell
 * its failures apart (lib/http answers them so that the request is retried).
 */
export class StoreError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

/** BatchGetItem reads at most this many keys in one request. */
export const BATCH_GET_MAX_KEYS = 100;

/** How a batch read asks again for the keys DynamoDB left unprocessed (it may, for throughput). */
export interface BatchRetry {
  /** Requests after the first, at most. */
  retries: number;
  /** Back-off before retry n: `baseMs * 2 ** n`, at most `maxMs`. */
  baseMs: number;
  maxMs: number;
}

type Key = Record<string, unknown>;
type Item = Record<string, unknown>;

/**
 * One DynamoDB table as a store sees it: the document client, the table's name, and the error a
 * failure becomes. Every request of a store goes through `send`, so a store says once what its
 * failures are. The writes guarded by conditions are guarded-update.ts's.
 */
export class Table {
  constructor(
    /** Public so that tests and benchmarks can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    readonly name: string,
    private readonly failure: new (message: string, cause: unknown) => StoreError,
  ) {}

  /** Sends one request; a refused condition is thrown as it is, any other failure as the store's error. */
  async send<T>(what: string, call: (db: DynamoDBDocumentClient) => Promise<T>): Promise<T> {
    try {
      return await call(this.db);
    } catch (error) {
      if (isConditionFailure(error)) throw error;
      throw new this.failure(`DynamoDB ${what} failed`, error);
    }
  }

  /** The store's error for something other than a failed request (e.g. a write that kept being refused). */
  error(message: string): StoreError {
    return new this.failure(message, undefined);
  }

  /** Sends a request that holds under a condition: its answer, or undefined when the condition did not hold. */
  async conditional<T>(what: string, call: (db: DynamoDBDocumentClient) => Promise<T>): Promise<T | undefined> {
    try {
      return await this.send(what, call);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** The item under `key`, read consistently; undefined when there is none. */
  async get(key: Key, projection?: string): Promise<Item | undefined> {
    const result = await this.send('GetItem', (db) =>
      db.send(new GetCommand({ TableName: this.name, Key: key, ConsistentRead: true, ProjectionExpression: projection })),
    );
    return result.Item;
  }

  /**
   * The items of these keys that exist (at most BATCH_GET_MAX_KEYS, none repeated), read
   * consistently by one BatchGetItem, and more while DynamoDB leaves keys unprocessed, backing off
   * in between; the store's error once `retry.retries` more requests still left some.
   */
  async getMany<Found = Item>(keys: readonly Key[], retry: BatchRetry): Promise<Found[]> {
    if (keys.length > BATCH_GET_MAX_KEYS) throw new RangeError(`getMany: at most ${BATCH_GET_MAX_KEYS} keys`);
    const found: Found[] = [];
    let request = [...keys];
    for (let attempt = 0; request.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > retry.retries)
          throw this.error(`DynamoDB BatchGetItem left ${request.length} keys unprocessed after ${attempt} requests`);
        await sleep(Math.min(retry.baseMs * 2 ** attempt, retry.maxMs));
      }
      const keysNow = request;
      const result = await this.send('BatchGetItem', (db) =>
        db.send(new BatchGetCommand({ RequestItems: { [this.name]: { Keys: keysNow, ConsistentRead: true } } })),
      );
      found.push(...((result.Responses?.[this.name] ?? []) as Found[]));
      request = result.UnprocessedKeys?.[this.name]?.Keys ?? [];
    }
    return found;
  }
}
