import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBeijingTimestamp, isBeijingTimestamp, toBeijingTimestamp } from '../../../lib/wechatpay/time';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('./fixtures/beijing-times.ts', import.meta.url));

async function timesUnder(tz: string): Promise<{ tz: string; formatted: string[]; read: string[] }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', fixture], { env: { ...process.env, TZ: tz } });
  return JSON.parse(stdout);
}

describe('Beijing time', () => {
  it('formats the same under TZ=UTC and TZ=America/Los_Angeles', async () => {
    const [utc, losAngeles] = await Promise.all([timesUnder('UTC'), timesUnder('America/Los_Angeles')]);
    // The children really ran in those zones, or the comparison would prove nothing.
    expect(utc.tz).toBe('UTC');
    expect(losAngeles.tz).toBe('America/Los_Angeles');
    const expected = ['20240101080000', '20240310183000', '20241103165959', '20240229000000', '20240101000000'];
    expect(utc.formatted).toEqual(expected);
    expect(losAngeles.formatted).toEqual(expected);
    expect(losAngeles.read).toEqual(utc.read);
  });

  it('reads yyyyMMddHHmmss as UTC+8 and refuses impossible dates', () => {
    expect(fromBeijingTimestamp('20240101080000')?.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(fromBeijingTimestamp('20240231120000')).toBeUndefined();
    expect(fromBeijingTimestamp('2024010108000')).toBeUndefined();
    expect(toBeijingTimestamp(new Date('2024-06-30T23:59:59Z'))).toBe('20240701075959');
  });
});

describe('fromBeijingTimestamp reads what the round trip through Date read (property)', () => {
  /** The reading before it checked the calendar itself: Date.UTC, then back to text, which must match. */
  function roundTrip(value: string): Date | undefined {
    const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
    if (!m) return undefined;
    const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
    const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s) - 8 * 60 * 60 * 1000);
    return toBeijingTimestamp(date) === value ? date : undefined;
  }
  const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
  const plausible = fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
      two(13),
      two(32),
      two(25),
      two(61),
      two(61),
    )
    .map((parts) => parts.join(''));
  const anything = fc.oneof(
    plausible,
    fc.stringMatching(/^[0-9]{12,16}$/),
    fc.string({ maxLength: 16 }),
    fc.constantFrom(
      '20240229000000',
      '20230229000000',
      '19000229000000',
      '20000229000000',
      '00991231235959',
      '01000101000000',
      '99991231235959',
    ),
  );

  it('accepts and refuses the same values, as the same instant; isBeijingTimestamp accepts the same', () => {
    fc.assert(
      fc.property(anything, (value) => {
        expect(fromBeijingTimestamp(value)?.getTime()).toBe(roundTrip(value)?.getTime());
        expect(isBeijingTimestamp(value)).toBe(roundTrip(value) !== undefined);
      }),
      { numRuns: 5000 },
    );
  });
});
