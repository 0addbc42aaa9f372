import { createHash, randomInt } from 'node:crypto';

/**
 * The JS-SDK `wx.config` signature, for pages in WeChat's browser: SHA1 (hex) of
 * `jsapi_ticket=...&noncestr=...&timestamp=...&url=...`, keys in that order and lower case, values
 * raw (nothing URL-escaped), `url` the page's full URL with its query and without its `#` part.
 */

export interface JssdkSignatureInput {
  jsapiTicket: string;
  nonceStr: string;
  /** Seconds since the epoch, as given to `wx.config`. */
  timestamp: number | string;
  /** The page's URL; its `#` part, if any, is dropped. */
  url: string;
}

/** What `wx.config` needs besides `jsApiList` (and `debug`). */
export interface JssdkConfig {
  appId: string;
  timestamp: number;
  nonceStr: string;
  signature: string;
}

const NONCE = /^[A-Za-z0-9]{1,32}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;
const NONCE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MAX_URL_LENGTH = 4096;
/** Whitespace and control characters are never part of a URL a browser reports, nor of a ticket. */
function hasSpaceOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x21 || code === 0x7f) return true;
  }
  return /\s/.test(text);
}

/** The URL as WeChat signs it: everything before the first `#`. */
export function signedUrl(url: string): string {
  const hash = url.indexOf('#');
  return hash === -1 ? url : url.slice(0, hash);
}

/** Checks a page URL for signing: an absolute http(s) URL of sane length without whitespace. */
export function checkPageUrl(url: unknown): string | undefined {
  if (typeof url !== 'string' || url === '') return 'the page URL is required';
  if (url.length > MAX_URL_LENGTH) return `the page URL is longer than ${MAX_URL_LENGTH} characters`;
  if (!/^https?:\/\/[^/?#]+/i.test(url)) return 'the page URL must be an absolute http(s) URL';
  if (hasSpaceOrControl(url)) return 'the page URL holds whitespace or control characters';
  return undefined;
}

/** The signature of `wx.config`; throws a TypeError on a malformed input (a caller's bug). */
export function jssdkSignature(input: JssdkSignatureInput): string {
  const { jsapiTicket, nonceStr, url } = input;
  const timestamp = String(input.timestamp);
  if (typeof jsapiTicket !== 'string' || jsapiTicket === '' || hasSpaceOrControl(jsapiTicket)) {
    throw new TypeError('jssdkSignature: jsapiTicket is required');
  }
  if (typeof nonceStr !== 'string' || !NONCE.test(nonceStr))
    throw new TypeError('jssdkSignature: nonceStr must be 1 to 32 letters or digits');
  if (!TIMESTAMP.test(timestamp)) throw new TypeError('jssdkSignature: timestamp must be whole seconds');
  const problem = checkPageUrl(url);
  if (problem) throw new TypeError(`jssdkSignature: ${problem}`);
  const text = `jsapi_ticket=${jsapiTicket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${signedUrl(url)}`;
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

function newNonceStr(): string {
  let out = '';
  for (let i = 0; i < 16; i++) out += NONCE_ALPHABET[randomInt(NONCE_ALPHABET.length)];
  return out;
}

/** A signed `wx.config` for the page at `url`, with a fresh nonce and the current time. */
export function jssdkConfig(options: {
  appId: string;
  jsapiTicket: string;
  url: string;
  /** Epoch milliseconds. Default: now. */
  now?: number;
  nonceStr?: string;
}): JssdkConfig {
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000);
  const nonceStr = options.nonceStr ?? newNonceStr();
  const signature = jssdkSignature({ jsapiTicket: options.jsapiTicket, nonceStr, timestamp, url: options.url });
  return { appId: options.appId, timestamp, nonceStr, signature };
}
