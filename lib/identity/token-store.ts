import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GuardedDelete, GuardedPut, GuardedUpdate } from '../store/guarded-update';
import { StoreError, Table } from '../store/table';

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
export class TokenStoreError extends StoreError {
  override readonly name = 'TokenStoreError';
}

const FORGET_AFTER_SECONDS = 24 * 60 * 60;

export function tokenKey(kind: TokenKind, appId: string): string {
  return `wechat-token#${kind}#${appId}`;
}

export function leaseKey(kind: TokenKind, appId: string): string {
  return `lease#${kind}#${appId}`;
}

export class TokenStore {
  readonly #table: Table;

  constructor(
    /** Public so that tests can add SDK middleware (request counts, injected faults). */
    readonly db: DynamoDBDocumentClient,
    table: string,
  ) {
    this.#table = new Table(db, table, TokenStoreError);
  }

  async read(kind: TokenKind, appId: string): Promise<StoredToken | undefined> {
    const item = await this.#table.get({ pk: tokenKey(kind, appId) });
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
    const item = { ...token, stale: false, ttl: Math.floor(token.expiresAt / 1000) + FORGET_AFTER_SECONDS };
    return new GuardedPut(this.#table, { pk: tokenKey(kind, appId) }, item)
      .when(
        'noLaterFetch',
        'attribute_not_exists(pk) OR #fetchedAt < :fetchedAt',
        { ':fetchedAt': token.fetchedAt },
        { '#fetchedAt': 'fetchedAt' },
      )
      .run();
  }

  /** Marks one version stale; false when another version is stored by now (already refreshed). */
  markStale(kind: TokenKind, appId: string, version: string): Promise<boolean> {
    // Attribute names through placeholders: DynamoDB reserves many words.
    return new GuardedUpdate(this.#table, { pk: tokenKey(kind, appId) })
      .when('versionAsSeen', '#version = :version', { ':version': version }, { '#version': 'version' })
      .set('#stale = :true', { ':true': true }, { '#stale': 'stale' })
      .applied();
  }

  /**
   * Takes the right to refresh until `leaseUntil`, if nobody holds it or its holder's lease has
   * ended (a container that died holding it blocks nobody past that).
   */
  takeLease(kind: TokenKind, appId: string, holder: string, now: number, leaseUntil: number): Promise<boolean> {
    return new GuardedPut(
      this.#table,
      { pk: leaseKey(kind, appId) },
      { holder, leaseUntil, ttl: Math.floor(leaseUntil / 1000) + FORGET_AFTER_SECONDS },
    )
      .when('leaseIsFree', 'attribute_not_exists(pk) OR #leaseUntil < :now', { ':now': now }, { '#leaseUntil': 'leaseUntil' })
      .run();
  }

  /** Gives the lease back, if this holder still has it. */
  async releaseLease(kind: TokenKind, appId: string, holder: string): Promise<void> {
    await new GuardedDelete(this.#table, { pk: leaseKey(kind, appId) })
      .when('leaseIsHeld', '#holder = :holder', { ':holder': holder }, { '#holder': 'holder' })
      .run();
  }
}
