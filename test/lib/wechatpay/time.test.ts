import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../../lib/wechatpay/time';

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
