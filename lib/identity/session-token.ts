import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Payers' session tokens (design §10): opaque to the frontend, unforgeable, bound to one app and one
 * openid, valid 2 hours. An HS256 JWT (`typ` and `alg` pinned, `iss` and `aud` set, `exp` checked):
 * `aud` is the app id, `sub` the openid encrypted (AES-256-GCM), so that the frontend holding the
 * token cannot read the openid out of it. Signing and encryption keys are derived (HKDF-SHA256) from
 * the one session key, which comes from `SESSION_KEY_PARAM`.
 *
 * `verify` never throws on a token: anything but a genuine, current token for the expected app is
 * `{ ok: false, reason, message }`.
 */

export interface SessionTokenOptions {
  /** The session key: at least 32 bytes (a string is taken as its UTF-8 bytes). */
  key: string | Uint8Array;
  /** `iss` of every token. Default `wechatpay-serverless`. */
  issuer?: string;
  /** Default 7200 (2 hours). */
  ttlSeconds?: number;
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number;
}

export interface SessionSubject {
  appId: string;
  openid: string;
}

export interface IssuedSession {
  token: string;
  /** ISO 8601. */
  expiresAt: string;
}

export type SessionRefusal =
  /** Not a string, empty, over the length limit, not three base64url parts, or unreadable JSON. */
  | 'MALFORMED'
  /** Signed with another key, or altered. */
  | 'BAD_SIGNATURE'
  /** `alg` other than HS256 (`none` included). */
  | 'ALG_NOT_ALLOWED'
  | 'WRONG_TYPE'
  | 'WRONG_ISSUER'
  /** A genuine token for another app. */
  | 'WRONG_APP'
  | 'EXPIRED'
  /** A claim missing or out of shape (`iat` in the future, a lifetime over the limit, ...). */
  | 'INVALID_CLAIMS';

export type SessionCheck =
  { ok: true; appId: string; openid: string; expiresAt: string } | { ok: false; reason: SessionRefusal; message: string };

export interface SessionTokens {
  issue(subject: SessionSubject): Promise<IssuedSession>;
  /** Checks a token for one app, or for any of several (then `appId` says which). */
  verify(token: unknown, expected: { appId: string | readonly string[] }): Promise<SessionCheck>;
}

const ALG = 'HS256';
const TYP = 'wechat-session+jwt';
const DEFAULT_ISSUER = 'wechatpay-serverless';
const DEFAULT_TTL_SECONDS = 2 * 60 * 60;
/** A genuine token is about 300 characters; anything far longer is refused before it is parsed. */
const MAX_TOKEN_LENGTH = 1024;
const MIN_KEY_BYTES = 32;
const APP_ID = /^[A-Za-z0-9_-]{1,32}$/;
const OPENID = /^[A-Za-z0-9_-]{1,64}$/;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Seconds of clock difference tolerated between the containers that issue and check a token. */
const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * jose is loaded on the first token issued or checked, not at cold start: createOrder needs it only
 * for a payer who brings a session token, never for a QR-code or H5 order.
 */
const loadJose = () => import('./jwt');

function derive(key: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, new Uint8Array(0), `wechatpay-serverless session ${purpose}`, 32));
}

function refuse(reason: SessionRefusal, message: string): SessionCheck {
  return { ok: false, reason, message };
}

/** Maps jose's errors (by their stable `code`, and `claim` for claim failures) to a refusal. */
function refusalFor(error: unknown): SessionCheck {
  const { code, claim, reason } = (error ?? {}) as { code?: unknown; claim?: unknown; reason?: unknown };
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('BAD_SIGNATURE', 'the session token signature does not verify');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refuse('ALG_NOT_ALLOWED', `the session token must be signed with ${ALG}`);
    case 'ERR_JWT_EXPIRED':
      return refuse('EXPIRED', 'the session token has expired: log in again');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'missing') return refuse('INVALID_CLAIMS', `the session token has no ${String(claim)} claim`);
      if (claim === 'typ') return refuse('WRONG_TYPE', 'not a session token (typ)');
      if (claim === 'iss') return refuse('WRONG_ISSUER', 'the session token was not issued here (iss)');
      if (claim === 'aud') return refuse('WRONG_APP', 'the session token belongs to another app');
      return refuse('INVALID_CLAIMS', `the session token's ${typeof claim === 'string' ? claim : 'claims'} claim is missing or invalid`);
    default:
      return refuse('MALFORMED', 'the session token is malformed');
  }
}

export function createSessionTokens(options: SessionTokenOptions): SessionTokens {
  const rawKey = typeof options.key === 'string' ? new TextEncoder().encode(options.key) : options.key;
  if (!(rawKey instanceof Uint8Array) || rawKey.length < MIN_KEY_BYTES) {
    throw new TypeError(`the session key must be at least ${MIN_KEY_BYTES} bytes (check SESSION_KEY_PARAM)`);
  }
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > DEFAULT_TTL_SECONDS) {
    throw new TypeError(`ttlSeconds must be a whole number from 1 to ${DEFAULT_TTL_SECONDS}`);
  }
  const now = options.now ?? Date.now;
  const signingKey = derive(rawKey, 'signing');
  const openidKey = derive(rawKey, 'openid');

  function sealOpenid(appId: string, openid: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', openidKey, iv);
    cipher.setAAD(Buffer.from(appId, 'utf8'));
    const sealed = Buffer.concat([iv, cipher.update(openid, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return sealed.toString('base64url');
  }

  function openOpenid(appId: string, sealed: string): string | undefined {
    const bytes = Buffer.from(sealed, 'base64url');
    if (bytes.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', openidKey, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(appId, 'utf8'));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const openid = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
      return OPENID.test(openid) ? openid : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    async issue({ appId, openid }) {
      if (typeof appId !== 'string' || !APP_ID.test(appId)) throw new TypeError('issue: appId must be 1 to 32 of [A-Za-z0-9_-]');
      if (typeof openid !== 'string' || !OPENID.test(openid)) throw new TypeError('issue: openid must be 1 to 64 of [A-Za-z0-9_-]');
      const issuedAt = Math.floor(now() / 1000);
      const expiresAt = issuedAt + ttlSeconds;
      const { SignJWT } = await loadJose();
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: ALG, typ: TYP })
        .setIssuer(issuer)
        .setAudience(appId)
        .setSubject(sealOpenid(appId, openid))
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .sign(signingKey);
      return { token, expiresAt: new Date(expiresAt * 1000).toISOString() };
    },

    async verify(token, expected) {
      try {
        const apps = typeof expected?.appId === 'string' ? [expected.appId] : [...(expected?.appId ?? [])];
        if (apps.length === 0 || !apps.every((app) => typeof app === 'string' && APP_ID.test(app))) {
          return refuse('WRONG_APP', 'no app to check the session token for');
        }
        if (typeof token !== 'string' || token === '') return refuse('MALFORMED', 'the session token is missing');
        if (token.length > MAX_TOKEN_LENGTH) return refuse('MALFORMED', `the session token is longer than ${MAX_TOKEN_LENGTH} characters`);
        if (!JWS_SHAPE.test(token)) return refuse('MALFORMED', 'the session token is not a signed JWT');
        const { jwtVerify } = await loadJose();
        const { payload } = await jwtVerify(token, signingKey, {
          algorithms: [ALG],
          typ: TYP,
          issuer,
          audience: apps,
          requiredClaims: ['exp', 'iat', 'sub', 'aud', 'iss'],
          maxTokenAge: ttlSeconds,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          currentDate: new Date(now()),
        });
        // Bound to exactly one app: an audience list would stand for several.
        const appId = payload.aud;
        if (typeof appId !== 'string' || !apps.includes(appId)) return refuse('WRONG_APP', 'the session token belongs to another app');
        const { exp, iat, sub } = payload as { exp: number; iat: number; sub: unknown };
        if (!Number.isInteger(exp) || !Number.isInteger(iat) || exp - iat > ttlSeconds) {
          return refuse('INVALID_CLAIMS', 'the session token lives longer than a session may');
        }
        const openid = typeof sub === 'string' ? openOpenid(appId, sub) : undefined;
        if (openid === undefined) return refuse('INVALID_CLAIMS', "the session token's sub claim is invalid");
        return { ok: true, appId, openid, expiresAt: new Date(exp * 1000).toISOString() };
      } catch (error) {
        return refusalFor(error);
      }
    },
  };
}
