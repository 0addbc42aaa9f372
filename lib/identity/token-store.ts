import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../store/dynamo';

/**
 * Where WeChat's access_token and jsapi_ticket are kept for every container: items of the orders
 * table (single string key `pk`), `wechat-token#<kind>#<appId>` for a value and
 * `lease#<kind>#<appId>` for the right to refresh it. This layer only persists: when to refresh,
 * and who may, is the cache's business (token-cache.ts). DynamoDB forgets both kinds of item
 * through the table's `ttl` attribute a day after they stop mattering. IAM knows these two key
 * prefixes (serverless.yml, custom.tokenCacheKeys): the JS-SDK config's role may touch them and no
 * other key, every other role on the table is denied them. A new kind of key here must follow there;
 * these items must carry none of the table's index keys (test/infra/token-cache-iam.test.ts).
 */

export type TokenKind = 'access_token' | 'jsapi_ticket';

export interface StoredToken {
  value: string;
  /** Changes with every fetch, even when WeChat answers the same value again. */
  version: string;
  /** Epoch milliseconds. */
  fetchedAt: number;
  expiresAt: number;
  /** From here on the next reader refreshes it (before it expires). */
  refreshAt: number;
  /** WeChat refused this version (40001/42001): refresh before using it again. */
  stale: boolean;
}

/** A DynamoDB call failed for a reason other than a condition. */
export class TokenStoreError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'TokenStoreError';
  }
}

const FORGET_AFTER_SECONDS = 24 * 60 * 60;

export function tokenKey(kind: TokenKind, appId: string): string {
  return `wechat-token#${kind}#${appId}`;
}

export function leaseKey(kind: TokenKind, appId: string): string {
  return `lease#${kind}#${appId}`;
}

export class TokenStore {
  constructor(
    /** Public so that tests can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Runs a call; true when done, false when its condition did not hold. */
  private async conditional(what: string, call: () => Promise<unknown>): Promise<boolean> {
    try {
      await call();
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw new TokenStoreError(`DynamoDB ${what} failed`, error);
    }
  }

  async read(kind: TokenKind, appId: string): Promise<StoredToken | undefined> {
    let item: Record<string, unknown> | undefined;
    try {
      const result = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: tokenKey(kind, appId) }, ConsistentRead: true }));
      item = result.Item;
    } catch (error) {
      throw new TokenStoreError('DynamoDB GetItem failed', error);
    }
    if (!item || typeof item.value !== 'string' || typeof item.version !== 'string') return undefined;
    return {
      value: item.value,
      version: item.version,
      fetchedAt: Number(item.fetchedAt),
      expiresAt: Number(item.expiresAt),
      refreshAt: Number(item.refreshAt),
      stale: item.stale === true,
    };
  }

  /**
   * Stores a freshly fetched value, unless a later fetch is already stored (a lease holder that
   * outlived its lease must not put back an older value). False when it was not stored.
   */
  save(kind: TokenKind, appId: string, token: Omit<StoredToken, 'stale'>): Promise<boolean> {
    return this.conditional('PutItem', () =>
      this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: tokenKey(kind, appId),
            ...token,
            stale: false,
            ttl: Math.floor(token.expiresAt / 1000) + FORGET_AFTER_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR #fetchedAt < :fetchedAt',
          ExpressionAttributeNames: { '#fetchedAt': 'fetchedAt' },
          ExpressionAttributeValues: { ':fetchedAt': token.fetchedAt },
        }),
      ),
    );
  }

  /** Marks one version stale; false when another version is stored by now (already refreshed). */
  markStale(kind: TokenKind, appId: string, version: string): Promise<boolean> {
    return this.conditional('UpdateItem', () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: tokenKey(kind, appId) },
          // Attribute names through placeholders: DynamoDB reserves many words.
          UpdateExpression: 'SET #stale = :true',
          ConditionExpression: '#version = :version',
          ExpressionAttributeNames: { '#stale': 'stale', '#version': 'version' },
          ExpressionAttributeValues: { ':true': true, ':version': version },
        }),
      ),
    );
  }

  /**
   * Takes the right to refresh until `leaseUntil`, if nobody holds it or its holder's lease has
   * ended (a container that died holding it blocks nobody past that).
   */
  takeLease(kind: TokenKind, appId: string, holder: string, now: number, leaseUntil: number): Promise<boolean> {
    return this.conditional('PutItem', () =>
      this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: leaseKey(kind, appId), holder, leaseUntil, ttl: Math.floor(leaseUntil / 1000) + FORGET_AFTER_SECONDS },
          ConditionExpression: 'attribute_not_exists(pk) OR #leaseUntil < :now',
          ExpressionAttributeNames: { '#leaseUntil': 'leaseUntil' },
          ExpressionAttributeValues: { ':now': now },
        }),
      ),
    );
  }

  /** Gives the lease back, if this holder still has it. */
  async releaseLease(kind: TokenKind, appId: string, holder: string): Promise<void> {
    await this.conditional('DeleteItem', () =>
      this.db.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: leaseKey(kind, appId) },
          ConditionExpression: '#holder = :holder',
          ExpressionAttributeNames: { '#holder': 'holder' },
          ExpressionAttributeValues: { ':holder': holder },
        }),
      ),
    );
  }
}
