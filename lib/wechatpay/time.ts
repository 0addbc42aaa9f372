/** China Standard Time is UTC+8 all year (no daylight saving), whatever the host's time zone. */
const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;

/** `yyyyMMddHHmmss` in Beijing time, the format of `time_start`, `time_expire` and `time_end`. */
export function toBeijingTimestamp(date: Date): string {
  const iso = new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString();
  return iso.slice(0, 19).replace(/[-T:]/g, '');
}

/** The number written by the digits of `value` from `start` to `end`, or -1 if one is not a digit. */
function digits(value: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i += 1) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Whether `value` is a `yyyyMMddHHmmss` Beijing time: a real calendar day (no 31 April, 29 February
 * only in leap years), hours to 23, minutes and seconds to 59, and a year from 0100 (`Date.UTC` would
 * read 0000 to 0099 as 1900 to 1999). Makes no Date, for checks that need none.
 */
export function isBeijingTimestamp(value: string): boolean {
  if (value.length !== 14) return false;
  const y = digits(value, 0, 4);
  const mo = digits(value, 4, 6);
  const d = digits(value, 6, 8);
  const h = digits(value, 8, 10);
  const mi = digits(value, 10, 12);
  const s = digits(value, 12, 14);
  return (
    y >= 100 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo) && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 59
  );
}

/** Reads a `yyyyMMddHHmmss` Beijing-time value; undefined when it is not one (`isBeijingTimestamp`). */
export function fromBeijingTimestamp(value: string): Date | undefined {
  if (!isBeijingTimestamp(value)) return undefined;
  const utc = Date.UTC(
    digits(value, 0, 4),
    digits(value, 4, 6) - 1,
    digits(value, 6, 8),
    digits(value, 8, 10),
    digits(value, 10, 12),
    digits(value, 12, 14),
  );
  return new Date(utc - BEIJING_OFFSET_MS);
}
