import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../log';
import { isStaleTokenError } from '../wechat/errors';
import type { PlatformClient } from '../wechat/platform-client';
import type { StoredToken, TokenKind, TokenStore } from './token-store';

/**
 * WeChat's access_token and jsapi_ticket, fetched once per app and shared by every container
 * through DynamoDB (design §10): WeChat allows 2,000 access_tokens a day, and each new one can
 * retire the last. One container at a time refreshes a value, under a lease with a deadline (a
 * container that dies holding it blocks the others only until then); a value is refreshed a few
 * minutes before it expires and reused until then; WeChat refusing it (40001, 42001) marks that
 * one version stale, so that however many callers saw the refusal, it is refreshed once.
 * Values never reach a log or an error message.
 */

export interface CachedToken {
  value: string;
  /** Identifies this fetch: pass the whole object to `invalidate`. */
  version: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export type TokenCacheLog = (event: string, fields: Record<string, unknown>) => void;

export interface TokenCacheOptions {
  store: TokenStore;
  platform: PlatformClient;
  /** The AppSecret of an app (from SSM later); asked for only when WeChat must be called. */
  secretFor(appId: string): string | Promise<string>;
  /** Default `stable_token`: WeChat's recommended way, whose secret travels in a POST body. */
  source?: 'stable_token' | 'token';
  /** Refresh this long before expiry (at most half the lifetime). Default 5 minutes. */
  refreshEarlyMs?: number;
  /** How long a refresher holds the lease. Default 15 s: more than the client's timeout twice. */
  leaseMs?: number;
  /** How often a waiting container looks again. Default 100 ms (with jitter). */
  pollMs?: number;
  /** The longest a caller waits for another container's refresh. Default 20 s. */
  waitMs?: number;
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Receives events (never a value). Default: the product's logger. */
  log?: TokenCacheLog;
}

export type TokenCacheErrorCode = 'WAIT_TIMEOUT';

export class TokenCacheError extends Error {
  readonly code: TokenCacheErrorCode;
  readonly retryable = true;

  constructor(message: string, code: TokenCacheErrorCode) {
    super(message);
    this.name = 'TokenCacheError';
    this.code = code;
  }
}

const DEFAULT_REFRESH_EARLY_MS = 5 * 60_000;

const defaultLog: TokenCacheLog = (event, fields) => logger.info(event, fields);

export class TokenCache {
  private readonly options: Required<Omit<TokenCacheOptions, 'secretFor'>> & Pick<TokenCacheOptions, 'secretFor'>;
  /** Identifies this container as a lease holder. */
  private readonly holder = randomUUID();
  /** This container's copy, used until its refresh time without asking DynamoDB. */
  private readonly memory = new Map<string, StoredToken>();
  /** One load per value at a time in this container, however many callers want it. */
  private readonly loading = new Map<string, Promise<StoredToken>>();

  constructor(options: TokenCacheOptions) {
    this.options = {
      source: 'stable_token',
      refreshEarlyMs: DEFAULT_REFRESH_EARLY_MS,
      leaseMs: 15_000,
      pollMs: 100,
      waitMs: 20_000,
      now: Date.now,
      log: defaultLog,
      ...options,
    };
    for (const name of ['refreshEarlyMs', 'leaseMs', 'pollMs', 'waitMs'] as const) {
      const value = this.options[name];
      if (!Number.isFinite(value) || value < 0) throw new TypeError(`TokenCache: ${name} must be a number of milliseconds >= 0`);
    }
  }

  /** Where the values are kept; public so that tests can watch its DynamoDB requests. */
  get store(): TokenStore {
    return this.options.store;
  }

  /** The app's access_token, fetched (once for all containers) when there is none fit to use. */
  accessToken(appId: string): Promise<CachedToken> {
    return this.get('access_token', appId);
  }

  /** The app's JS-SDK jsapi_ticket, likewise. */
  jsapiTicket(appId: string): Promise<CachedToken> {
    return this.get('jsapi_ticket', appId);
  }

  /**
   * WeChat refused this value: it is refreshed before anyone uses it again, once, whoever else
   * reports the same version (the condition on the version makes later reports no-ops).
   */
  async invalidate(kind: TokenKind, appId: string, stale: CachedToken): Promise<void> {
    const key = `${kind}#${appId}`;
    if (this.memory.get(key)?.version === stale.version) this.memory.delete(key);
    const marked = await this.options.store.markStale(kind, appId, stale.version);
    this.options.log('wechat_token_invalidated', { kind, appId, marked });
  }

  /**
   * Runs `use` with the app's access_token; if WeChat refuses the token itself (40001, 40014,
   * 42001), invalidates it and runs `use` once more with a fresh one.
   */
  async withAccessToken<T>(appId: string, use: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await this.accessToken(appId);
    try {
      return await use(token.value);
    } catch (error) {
      if (!isStaleTokenError(error)) throw error;
      this.options.log('wechat_token_refused', { kind: 'access_token', appId, errcode: error.errcode, endpoint: error.endpoint });
      await this.invalidate('access_token', appId, token);
      const fresh = await this.accessToken(appId);
      return use(fresh.value);
    }
  }

  private async get(kind: TokenKind, appId: string): Promise<CachedToken> {
    const key = `${kind}#${appId}`;
    const remembered = this.memory.get(key);
    const rememberedFresh = this.fresh(remembered);
    if (rememberedFresh) return publicView(rememberedFresh);
    let load = this.loading.get(key);
    if (!load) {
      load = this.load(kind, appId).finally(() => this.loading.delete(key));
      this.loading.set(key, load);
    }
    const token = await load;
    this.memory.set(key, token);
    return publicView(token);
  }

  /** The token itself when it is not due for refresh yet. */
  private fresh(token: StoredToken | undefined): StoredToken | undefined {
    return token !== undefined && !token.stale && this.options.now() < token.refreshAt ? token : undefined;
  }

  /** The token itself while it is valid, though perhaps due for refresh: fine to use while another container refreshes it. */
  private usable(token: StoredToken | undefined): StoredToken | undefined {
    return token !== undefined && !token.stale && this.options.now() < token.expiresAt ? token : undefined;
  }

  private async load(kind: TokenKind, appId: string): Promise<StoredToken> {
    const { store, leaseMs, waitMs, pollMs, now, log } = this.options;
    // Waiting is measured in real time; leases and expiry on the (shared) clock of `now`.
    const deadline = performance.now() + waitMs;
    let waited = false;
    for (;;) {
      const stored = await store.read(kind, appId);
      const freshStored = this.fresh(stored);
      if (freshStored) return freshStored;
      const started = now();
      if (await store.takeLease(kind, appId, this.holder, started, started + leaseMs)) {
        try {
          return await this.refresh(kind, appId);
        } finally {
          await store.releaseLease(kind, appId, this.holder).catch((error: unknown) => {
            // The lease then simply runs out at its deadline.
            log('wechat_token_lease_release_failed', { kind, appId, error: error instanceof Error ? error.message : String(error) });
          });
        }
      }
      // Another container is refreshing: a value that is still valid serves meanwhile.
      const usableStored = this.usable(stored);
      if (usableStored) return usableStored;
      if (performance.now() >= deadline) {
        throw new TokenCacheError(`no ${kind} for app ${appId}: another container held the refresh for over ${waitMs} ms`, 'WAIT_TIMEOUT');
      }
      if (!waited) log('wechat_token_waiting', { kind, appId });
      waited = true;
      await sleep(Math.round(pollMs * (0.5 + Math.random())));
    }
  }

  /** Under the lease: fetch from WeChat and store, unless someone refreshed it just before. */
  private async refresh(kind: TokenKind, appId: string): Promise<StoredToken> {
    const { store, now, log, refreshEarlyMs } = this.options;
    const current = await store.read(kind, appId);
    const refreshedMeanwhile = this.fresh(current);
    if (refreshedMeanwhile) return refreshedMeanwhile;
    const fetchedAt = now();
    const { value, expiresIn } = kind === 'access_token' ? await this.fetchAccessToken(appId) : await this.fetchTicket(appId);
    const lifetimeMs = expiresIn * 1000;
    const token: StoredToken = {
      value,
      version: randomUUID(),
      fetchedAt,
      expiresAt: fetchedAt + lifetimeMs,
      refreshAt: fetchedAt + lifetimeMs - Math.min(refreshEarlyMs, lifetimeMs / 2),
      stale: false,
    };
    const saved = await store.save(kind, appId, token);
    log('wechat_token_refreshed', { kind, appId, expiresIn, saved, sameAsBefore: current?.value === value });
    if (saved) return token;
    // A later fetch was stored meanwhile (this container outlived its lease): that one wins.
    return this.usable(await store.read(kind, appId)) ?? token;
  }

  private async fetchAccessToken(appId: string): Promise<{ value: string; expiresIn: number }> {
    const app = { appId, secret: await this.options.secretFor(appId) };
    const { platform, source } = this.options;
    const issued = source === 'token' ? await platform.accessToken(app) : await platform.stableAccessToken(app);
    return { value: issued.accessToken, expiresIn: issued.expiresIn };
  }

  private async fetchTicket(appId: string): Promise<{ value: string; expiresIn: number }> {
    const issued = await this.withAccessToken(appId, (accessToken) => this.options.platform.jsapiTicket(accessToken));
    return { value: issued.ticket, expiresIn: issued.expiresIn };
  }
}

function publicView(token: StoredToken): CachedToken {
  return { value: token.value, version: token.version, expiresAt: token.expiresAt };
}
