/** China Standard Time is UTC+8 all year (no daylight saving), whatever the host's time zone. */
const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000;
const COMPACT = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/** `yyyyMMddHHmmss` in Beijing time, the format of `time_start`, `time_expire` and `time_end`. */
export function toBeijingTimestamp(date: Date): string {
  const iso = new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString();
  return iso.slice(0, 19).replace(/[-T:]/g, '');
}

/** Reads a `yyyyMMddHHmmss` Beijing-time value; undefined when it is not one. */
export function fromBeijingTimestamp(value: string): Date | undefined {
  const m = COMPACT.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const date = new Date(utc - BEIJING_OFFSET_MS);
  // Date.UTC rolls 20240231 over to March; a real timestamp maps back to itself.
  return toBeijingTimestamp(date) === value ? date : undefined;
}
