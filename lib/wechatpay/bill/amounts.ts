/**
 * Amounts of the bill text, read into integer fen with string arithmetic only: yuan with up to two
 * decimals (`0.01`, `6.00`, `0.0` and `0` in older bills), the fee with five (`0.04000`), the
 * summary's count (`45.0` in some bills).
 */

/** Yuan with at most two decimals, no sign, no exponent, no leading zeros; at most 12 integer digits. */
const YUAN = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/;
/**
 * The fee: signed (refund rows give fee back), up to five decimals of which the last three must be
 * zero: WeChat Pay charges whole fen (`0.04000`), and a fraction of a fen is refused, not rounded.
 */
const FEE_YUAN = /^(-?)(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2})0{0,3})?$/;
/** The count: an integer, written `45.0` in some bills. */
const COUNT = /^(0|[1-9][0-9]{0,11})(?:\.0+)?$/;

function digitsToFen(integer: string, decimals: string | undefined): number {
  // Both parts are short digit strings, so these are exact integer operations, never a float parse.
  return Number(integer) * 100 + Number((decimals ?? '').padEnd(2, '0'));
}

/**
 * Exact integer fen of a yuan amount (`0.01` → 1, `100.00` → 10000, `0.0` → 0); undefined for
 * anything else: more than two decimals, a sign, an exponent, spaces, an empty string.
 */
export function yuanToFen(text: string): number | undefined {
  const match = YUAN.exec(text);
  return match ? digitsToFen(match[1] as string, match[2]) : undefined;
}

/** Exact integer fen of a (signed) fee written with up to five decimals, whole fen only. */
export function feeYuanToFen(text: string): number | undefined {
  const match = FEE_YUAN.exec(text);
  if (!match) return undefined;
  const fen = digitsToFen(match[2] as string, match[3]);
  // No negative zero: `-0.00000` is plain 0.
  return match[1] === '-' && fen !== 0 ? -fen : fen;
}

/** The summary's count of trades, or undefined. */
export function readCount(text: string): number | undefined {
  const match = COUNT.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** Yuan text of a whole number of fen: 1 → `0.01`, 10000 → `100.00`, -4 → `-0.04`. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new TypeError(`fen must be a safe integer, got ${fen}`);
  const abs = Math.abs(fen);
  return `${fen < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
