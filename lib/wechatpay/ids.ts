import { randomBytes } from 'node:crypto';
import { toBeijingTimestamp } from './time';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random text over [A-Za-z0-9], unbiased (rejection sampling over crypto bytes). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: bytes above it would favour the first characters.
      if (byte < 248) out += ALPHANUMERIC[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A `nonce_str`: 32 characters, about 190 random bits. */
export function nonceStr(): string {
  return randomAlphanumeric(32);
}

/**
 * A new `out_trade_no`: the Beijing date (the day of `time_start` and of WeChat Pay's bills, so
 * merchants can read an order's day at a glance) then 20 random characters, about 119 bits that
 * cannot be guessed. 28 characters in all, within WeChat Pay's 6 to 32 of [0-9A-Za-z_-].
 */
export function newOutTradeNo(now: Date = new Date()): string {
  return toBeijingTimestamp(now).slice(0, 8) + randomAlphanumeric(20);
}

export const OUT_TRADE_NO_PATTERN = /^[0-9A-Za-z_-]{6,32}$/;
