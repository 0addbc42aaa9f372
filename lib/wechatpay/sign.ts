import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { failure, type Failure } from '../result';
import { ByNameList } from './name-lists';

export const SIGN_TYPES = ['MD5', 'HMAC-SHA256'] as const;
export type SignType = (typeof SIGN_TYPES)[number];

/** A flat WeChat Pay v2 document: field name to value, every value a string. */
export type Fields = Record<string, string>;

/** Fields to sign; `undefined` values are left out like empty ones. */
export type SignableFields = Readonly<Record<string, string | undefined>>;

export function isSignType(value: unknown): value is SignType {
  return value === 'MD5' || value === 'HMAC-SHA256';
}

const KEY_MASK = '********';

/**
 * The string WeChat Pay signs: every field but `sign`, empty values left out, names in ascending
 * byte order, raw values joined as `k=v&...`, then `&key=<API key>`. Values are used exactly as
 * received (no trimming, no URL-encoding): WeChat Pay signs what it sends.
 */
export function stringToSign(fields: SignableFields, apiKey: string): string {
  const { positions, prefixes } = signingOrder(Object.keys(fields));
  // In the order of Object.keys: the value of the field at position p is values[p].
  const values = Object.values(fields);
  let joined = '';
  for (let i = 0; i < positions.length; i += 1) {
    const value = values[positions[i]!];
    if (value !== undefined && value !== '') joined += prefixes[i] + value + '&';
  }
  return `${joined}key=${apiKey}`;
}

/** How a list of names joins into a string to sign: `sign` left out, the rest in ascending byte order. */
interface SigningOrder {
  /** Each name's position in the list. */
  positions: number[];
  /** Each name followed by `=`. */
  prefixes: string[];
}

/**
 * The signing order of each list of names as it arrived: sorting them was most of the cost of a
 * string to sign, and WeChat Pay sends each kind of document with the same fields in the same
 * order every time.
 */
const signingOrders = new ByNameList<SigningOrder>(8, 64);

function signingOrder(names: string[]): SigningOrder {
  let order = signingOrders.get(names);
  if (order === undefined) {
    // Field names are ASCII, where UTF-16 order is byte order.
    const positions = names
      .flatMap((name, position) => (name === 'sign' ? [] : [position]))
      .sort((a, b) => (names[a]! < names[b]! ? -1 : 1));
    order = { positions, prefixes: positions.map((position) => `${names[position]}=`) };
    signingOrders.remember(names, order);
  }
  return order;
}

/** The string-to-sign with the key masked, for explaining a mismatch without leaking the key. */
export function explainStringToSign(fields: SignableFields): string {
  return stringToSign(fields, KEY_MASK);
}

const HEX = /^[0-9A-Fa-f]+$/;

/**
 * Where a received sign and the expected one are written to be compared, for each digest's hex
 * length (MD5, HMAC-SHA256), rather than allocating two buffers for every check; every check
 * overwrites both whole before comparing.
 */
const comparedBytes: Record<number, readonly [received: Buffer, expected: Buffer]> = {
  32: [Buffer.alloc(32), Buffer.alloc(32)],
  64: [Buffer.alloc(64), Buffer.alloc(64)],
};

/** The HMAC key of the last API key used, made once: a container signs with one key. */
let hmacKey: { apiKey: string; key: KeyObject } | undefined;

function hmacKeyOf(apiKey: string): KeyObject {
  if (hmacKey?.apiKey !== apiKey) hmacKey = { apiKey, key: createSecretKey(Buffer.from(apiKey, 'utf8')) };
  return hmacKey.key;
}

/** MD5 or HMAC-SHA256 (keyed with the API key) of the string-to-sign, over UTF-8, in lower-case hex. */
function digestHex(fields: SignableFields, apiKey: string, signType: SignType): string {
  const text = stringToSign(fields, apiKey);
  const hash = signType === 'MD5' ? createHash('md5') : createHmac('sha256', hmacKeyOf(apiKey));
  return hash.update(text, 'utf8').digest('hex');
}

/** Upper-case hex MD5 or HMAC-SHA256 (keyed with the API key) of the string-to-sign, over UTF-8. */
export function sign(fields: SignableFields, apiKey: string, signType: SignType): string {
  return digestHex(fields, apiKey, signType).toUpperCase();
}

export interface SignFieldsOptions {
  /**
   * Add `sign_type` when it is not the MD5 default, as a request must. Default true; WeChat Pay's own
   * answers and callbacks carry none (they are signed with the request's or the order's sign type).
   */
  declareSignType?: boolean;
}

/**
 * The one way a document is signed: a copy of the fields with empty ones dropped (WeChat Pay sends
 * none and signs none) and `sign` added last.
 */
export function signFields(
  fields: SignableFields,
  apiKey: string,
  signType: SignType,
  { declareSignType = true }: SignFieldsOptions = {},
): Fields {
  const out: Fields = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && value !== '' && name !== 'sign') out[name] = value;
  }
  if (declareSignType && signType !== 'MD5') out.sign_type = signType;
  out.sign = sign(out, apiKey, signType);
  return out;
}

/** Why a signature does not hold. */
export type SignatureFailureReason = 'UNKNOWN_SIGN_TYPE' | 'NO_SIGN' | 'SIGN_LENGTH' | 'SIGN_MISMATCH';

export type SignatureCheck = { ok: true; signType: SignType } | (Failure<SignatureFailureReason> & { signType?: SignType });

/**
 * The sign type a document was signed with: its own `sign_type` when it has one, else the caller's
 * (for a callback: the sign type its order was made with, as callbacks usually carry none), else MD5.
 */
export function resolveSignType(
  fields: SignableFields,
  fallback?: SignType,
): { ok: true; signType: SignType } | Failure<'UNKNOWN_SIGN_TYPE'> {
  const declared = fields.sign_type;
  if (declared !== undefined && declared !== '') {
    return isSignType(declared)
      ? { ok: true, signType: declared }
      : failure('UNKNOWN_SIGN_TYPE', `sign_type "${declared.slice(0, 32)}" is neither MD5 nor HMAC-SHA256`);
  }
  return { ok: true, signType: fallback ?? 'MD5' };
}

/**
 * Checks the `sign` of a received document over every field it carries (including ones this code
 * does not know), in constant time. The reason names the likely mistake without revealing the key.
 */
export function verifySignature(fields: SignableFields, apiKey: string, fallbackSignType?: SignType): SignatureCheck {
  const resolved = resolveSignType(fields, fallbackSignType);
  if (!resolved.ok) return resolved;
  const { signType } = resolved;
  const received = fields.sign;
  if (received === undefined || received === '') {
    return { ...failure('NO_SIGN', 'the document has no sign field'), signType };
  }
  const expected = digestHex(fields, apiKey, signType);
  // Hex digits in either case (WeChat Pay compares case-insensitively), compared in lower case, in
  // constant time: as the hex digits are ASCII, their latin1 bytes are the characters themselves.
  const hexLength = expected.length;
  if (received.length === hexLength && HEX.test(received)) {
    const [receivedBytes, expectedBytes] = comparedBytes[hexLength]!;
    receivedBytes.write(received, 'latin1');
    // Bit 0x20 lower-cases A-F and is already set in 0-9 (a callback is mostly read as two-byte
    // text, where toLowerCase is several times slower).
    for (let i = 0; i < hexLength; i += 1) receivedBytes[i]! |= 0x20;
    expectedBytes.write(expected, 'latin1');
    if (timingSafeEqual(receivedBytes, expectedBytes)) return { ok: true, signType };
    return mismatch(signType);
  }
  if (Buffer.byteLength(received.toUpperCase(), 'utf8') !== hexLength) {
    const other: SignType = signType === 'MD5' ? 'HMAC-SHA256' : 'MD5';
    const hint = received.length === (other === 'MD5' ? 32 : 64) ? ` (its length fits ${other}: was it signed with ${other}?)` : '';
    return {
      ...failure('SIGN_LENGTH', `sign has ${received.length} characters, a ${signType} signature has ${hexLength}${hint}`),
      signType,
    };
  }
  return mismatch(signType);
}

function mismatch(signType: SignType): SignatureCheck {
  return {
    ...failure('SIGN_MISMATCH', `sign does not match a ${signType} signature of the fields with this key (wrong key, or a field changed)`),
    signType,
  };
}
