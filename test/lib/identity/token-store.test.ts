import { describe, expect, it } from 'vitest';
import { leaseKey, tokenKey, TokenStore, TokenStoreError } from '../../../lib/identity/token-store';
import { useRefusals, useTable } from '../../support/store';

/**
 * The token cache's items on dynalite, under the key prefixes IAM knows (serverless.yml,
 * custom.tokenCacheKeys): `wechat-token#<kind>#<appId>` and `lease#<kind>#<appId>`.
 */

const tables = useTable();
const refusals = useRefusals();
const tokens = () => new TokenStore(tables.db, tables.table);

const fetched = (version: string, fetchedAt: number) => ({
  value: `token-${version}`,
  version,
  fetchedAt,
  expiresAt: fetchedAt + 7_200_000,
  refreshAt: fetchedAt + 6_000_000,
});

describe('TokenStore keys', () => {
  it('are the prefixes IAM grants', () => {
    expect(tokenKey('access_token', 'wx1')).toBe('wechat-token#access_token#wx1');
    expect(leaseKey('jsapi_ticket', 'wx1')).toBe('lease#jsapi_ticket#wx1');
  });
});

describe('TokenStore values', () => {
  it('saves a value unless a later fetch is stored (noLaterFetch), and reads it back; forgotten a day after it expires', async () => {
    expect(await tokens().save('access_token', 'wx1', fetched('v2', 2_000_000))).toBe(true);
    expect(await tokens().save('access_token', 'wx1', fetched('v1', 1_000_000))).toBe(false);
    expect(await tokens().read('access_token', 'wx1')).toEqual({ ...fetched('v2', 2_000_000), stale: false });
    expect(await tables.item({ pk: 'wechat-token#access_token#wx1' })).toMatchObject({
      ttl: Math.floor((2_000_000 + 7_200_000) / 1000) + 24 * 60 * 60,
    });
    expect(await tokens().read('jsapi_ticket', 'wx1')).toBeUndefined();
    expect(refusals()).toEqual([['noLaterFetch']]);
  });

  it('marks the version it saw stale, not a newer one (versionAsSeen)', async () => {
    await tokens().save('access_token', 'wx1', fetched('v1', 1_000_000));
    expect(await tokens().markStale('access_token', 'wx1', 'v0')).toBe(false);
    expect((await tokens().read('access_token', 'wx1'))?.stale).toBe(false);
    expect(await tokens().markStale('access_token', 'wx1', 'v1')).toBe(true);
    expect((await tokens().read('access_token', 'wx1'))?.stale).toBe(true);
    expect(refusals()).toEqual([['versionAsSeen']]);
  });
});

describe('TokenStore leases', () => {
  it('gives the lease to one holder until it ends (leaseIsFree), and takes it back only from its holder (leaseIsHeld)', async () => {
    expect(await tokens().takeLease('access_token', 'wx1', 'a', 1_000, 5_000)).toBe(true);
    expect(await tokens().takeLease('access_token', 'wx1', 'b', 2_000, 6_000)).toBe(false);
    await tokens().releaseLease('access_token', 'wx1', 'b');
    expect(await tables.item({ pk: 'lease#access_token#wx1' })).toMatchObject({ holder: 'a', leaseUntil: 5_000 });
    expect(await tokens().takeLease('access_token', 'wx1', 'b', 5_001, 9_000)).toBe(true);
    await tokens().releaseLease('access_token', 'wx1', 'b');
    expect(await tables.item({ pk: 'lease#access_token#wx1' })).toBeUndefined();
    expect(refusals()).toEqual([['leaseIsFree'], ['leaseIsHeld']]);
  });

  it("fails with its own error, the SDK's as cause", async () => {
    const missing = new TokenStore(tables.db, 'no-such-table');
    await expect(missing.read('access_token', 'wx1')).rejects.toMatchObject({
      name: 'TokenStoreError',
      message: 'DynamoDB GetItem failed',
      cause: { name: 'ResourceNotFoundException' },
    });
    await expect(missing.takeLease('access_token', 'wx1', 'a', 1, 2)).rejects.toBeInstanceOf(TokenStoreError);
  });
});
