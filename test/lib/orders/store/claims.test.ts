import { describe, expect, it } from 'vitest';
import { ClaimStore } from '../../../../lib/orders/store';
import { useRefusals, useTable } from '../../../support/store';

/** Idempotency and refund claims on dynalite: the first claim of a key owns it (keyIsNew), a repeat learns what owns it. */

const tables = useTable();
const refusals = useRefusals();
const claims = () => new ClaimStore(tables.db, tables.table);

describe('ClaimStore.claim', () => {
  it('writes the claim under its key the first time; a repeat writes nothing and reads the holder', async () => {
    expect(await claims().claim('k#1', { owner: 'first' })).toEqual({ claimed: true });
    expect(await claims().claim('k#1', { owner: 'second' })).toEqual({ claimed: false, holder: { pk: 'k#1', owner: 'first' } });
    expect(await tables.item({ pk: 'k#1' })).toEqual({ pk: 'k#1', owner: 'first' });
    expect(refusals()).toEqual([['keyIsNew']]);
  });
});

describe('ClaimStore.idempotencyKey', () => {
  it("claims `idempotency#<scope>#<key>` for an order, forgotten 8 days on; a repeat learns the order and the request's fingerprint", async () => {
    const createdAt = '2026-03-01T02:00:00.000Z';
    expect(await claims().idempotencyKey('merchant#k1', { outTradeNo: 'T1', fingerprint: 'f1', createdAt })).toEqual({ ok: true });
    expect(await tables.item({ pk: 'idempotency#merchant#k1' })).toEqual({
      pk: 'idempotency#merchant#k1',
      outTradeNo: 'T1',
      fingerprint: 'f1',
      createdAt,
      ttl: Date.parse(createdAt) / 1000 + 8 * 24 * 60 * 60,
    });
    expect(await claims().idempotencyKey('merchant#k1', { outTradeNo: 'T2', fingerprint: 'f2', createdAt })).toEqual({
      ok: false,
      reason: 'KEY_TAKEN',
      message: 'idempotency key already names order T1',
      outTradeNo: 'T1',
      fingerprint: 'f1',
    });
  });
});

describe('ClaimStore.refund', () => {
  it('claims `refund#<claim>` for a refund, in the refunds-by-request-day index; a repeat learns the refund it made', async () => {
    const claim = { outRefundNo: 'R1', outTradeNo: 'T1', fingerprint: 'f1', createdAt: '2026-03-01T17:30:00.000Z' };
    expect(await claims().refund('c1', claim)).toEqual({ ok: true, outRefundNo: 'R1' });
    // 17:30Z is the next day in Beijing.
    expect(await tables.item({ pk: 'refund#c1' })).toEqual({
      pk: 'refund#c1',
      ...claim,
      requestedDayShard: expect.stringMatching(/^20260302#([0-9]|1[0-5])$/),
    });
    expect(await claims().refund('c1', { ...claim, outRefundNo: 'R2', fingerprint: 'f2' })).toEqual({
      ok: false,
      reason: 'KEY_TAKEN',
      message: 'refund claim c1 is taken',
      outTradeNo: 'T1',
      fingerprint: 'f1',
      outRefundNo: 'R1',
    });
  });

  it('lists the refunds requested on a Beijing day, every shard of the index', async () => {
    for (let i = 0; i < 20; i++)
      await claims().refund(`c${i}`, {
        outRefundNo: `R${i}`,
        outTradeNo: `T${i}`,
        fingerprint: 'f',
        createdAt: '2026-03-01T03:00:00.000Z',
      });
    await claims().refund('other-day', { outRefundNo: 'R', outTradeNo: 'T', fingerprint: 'f', createdAt: '2026-03-02T03:00:00.000Z' });
    const listed = await claims().refundsRequestedOnDay('20260301');
    expect(listed.sort((a, b) => a.outTradeNo.localeCompare(b.outTradeNo))).toEqual(
      Array.from({ length: 20 }, (_, i) => ({ claim: `c${i}`, outTradeNo: `T${i}` })).sort((a, b) =>
        a.outTradeNo.localeCompare(b.outTradeNo),
      ),
    );
  });
});
