import { createHmac, hkdfSync } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createSessionTokens } from '../../../lib/identity/session-token';

const KEY = 'local-session-key-0000000000000000000000';
const OTHER_KEY = 'another-session-key-00000000000000000000';
const APP_A = 'wxd930ea5d5a258f4f';
const APP_B = 'wx00000000000000a2';
const OPENID = 'oPayer_session_000000000000001';
const START = Date.UTC(2026, 2, 1, 8, 0, 0);

let clock = START;
const tokens = createSessionTokens({ key: KEY, now: () => clock });

/** The signing key as the product derives it, to make hostile tokens that verify their signature. */
const signingKey = Buffer.from(
  hkdfSync('sha256', new TextEncoder().encode(KEY), new Uint8Array(0), 'wechatpay-serverless session signing', 32),
);

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

async function genuine(appId = APP_A, openid = OPENID): Promise<string> {
  return (await tokens.issue({ appId, openid })).token;
}

/** A token signed with the real signing key, with the given header and claims (or their absence). */
async function signed(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'wechat-session+jwt' },
): Promise<string> {
  const real = decodeJwt(await genuine());
  return new SignJWT({ ...real, ...claims } as never).setProtectedHeader(header as never).sign(signingKey);
}

/** A token with a hand-made header and payload, HMAC-signed with `key` exactly as JWS does. */
function handMade(header: unknown, payload: unknown, key: Uint8Array = signingKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

describe('session tokens', () => {
  it('round trip: bound to one app and one openid, valid 2 hours', async () => {
    clock = START;
    const issued = await tokens.issue({ appId: APP_A, openid: OPENID });
    expect(issued.expiresAt).toBe(new Date(START + 7200_000).toISOString());
    expect(await tokens.verify(issued.token, { appId: APP_A })).toEqual({
      ok: true,
      appId: APP_A,
      openid: OPENID,
      expiresAt: issued.expiresAt,
    });
    expect(await tokens.verify(issued.token, { appId: [APP_B, APP_A] })).toMatchObject({ ok: true, appId: APP_A });
    clock = START + 7200_000 - 1000;
    expect(await tokens.verify(issued.token, { appId: APP_A })).toMatchObject({ ok: true });
    clock = START + 7200_000 + 6000;
    expect(await tokens.verify(issued.token, { appId: APP_A })).toMatchObject({ ok: false, reason: 'EXPIRED' });
    clock = START;
  });

  it('is opaque: HS256, typ and alg pinned, iss and aud set, and the openid unreadable', async () => {
    const token = await genuine();
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'wechat-session+jwt' });
    const claims = decodeJwt(token);
    expect(claims).toEqual({
      iss: 'wechatpay-serverless',
      aud: APP_A,
      sub: expect.any(String),
      iat: START / 1000,
      exp: START / 1000 + 7200,
    });
    expect(token).not.toContain(OPENID);
    expect(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).not.toContain(OPENID);
    // Two sessions of the same payer look unrelated.
    expect(decodeJwt(await genuine()).sub).not.toBe(claims.sub);
  });

  it('refuses a short key and bad subjects', async () => {
    expect(() => createSessionTokens({ key: 'short' })).toThrow(/32 bytes/);
    await expect(tokens.issue({ appId: 'wx 1', openid: OPENID })).rejects.toThrow(TypeError);
    await expect(tokens.issue({ appId: APP_A, openid: 'o&x=1' })).rejects.toThrow(TypeError);
  });

  const hostile: Array<[string, () => unknown, string]> = [
    [
      'signed with another key',
      async () => (await createSessionTokens({ key: OTHER_KEY, now: () => clock }).issue({ appId: APP_A, openid: OPENID })).token,
      'BAD_SIGNATURE',
    ],
    [
      'alg none, no signature',
      async () => `${b64({ alg: 'none', typ: 'wechat-session+jwt' })}.${(await genuine()).split('.')[1]}.`,
      'MALFORMED',
    ],
    [
      'alg none with the genuine signature',
      async () => {
        const [, payload, signature] = (await genuine()).split('.');
        return `${b64({ alg: 'none', typ: 'wechat-session+jwt' })}.${payload}.${signature}`;
      },
      'ALG_NOT_ALLOWED',
    ],
    ['HS512 with the real key', () => signed({}, { alg: 'HS512', typ: 'wechat-session+jwt' }), 'ALG_NOT_ALLOWED'],
    [
      'RS256 in the header, HMAC-signed (alg confusion)',
      async () => handMade({ alg: 'RS256', typ: 'wechat-session+jwt' }, decodeJwt(await genuine())),
      'ALG_NOT_ALLOWED',
    ],
    ['truncated signature', async () => (await genuine()).slice(0, -10), 'MALFORMED'],
    ['truncated to two parts', async () => (await genuine()).split('.').slice(0, 2).join('.'), 'MALFORMED'],
    [
      'expired',
      async () => {
        clock = START - 3 * 3600_000;
        const token = await genuine();
        clock = START;
        return token;
      },
      'EXPIRED',
    ],
    ["app A's token checked for app B", () => genuine(APP_A), 'WRONG_APP'],
    [
      'tampered payload (aud changed to app B)',
      async () => {
        const [header, , signature] = (await genuine()).split('.');
        return `${header}.${b64({ ...decodeJwt(await genuine()), aud: APP_B })}.${signature}`;
      },
      'BAD_SIGNATURE',
    ],
    [
      'tampered payload (exp extended)',
      async () => {
        const [header, , signature] = (await genuine()).split('.');
        return `${header}.${b64({ ...decodeJwt(await genuine()), exp: START / 1000 + 99_999 })}.${signature}`;
      },
      'BAD_SIGNATURE',
    ],
    [
      'tampered header (typ JWT), genuine signature',
      async () => {
        const [, payload, signature] = (await genuine()).split('.');
        return `${b64({ alg: 'HS256', typ: 'JWT' })}.${payload}.${signature}`;
      },
      'BAD_SIGNATURE',
    ],
    ['wrong typ, signed with the real key', () => signed({}, { alg: 'HS256', typ: 'JWT' }), 'WRONG_TYPE'],
    ['no typ, signed with the real key', () => signed({}, { alg: 'HS256' }), 'WRONG_TYPE'],
    [
      'no exp',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { ...decodeJwt(await genuine()), exp: undefined }),
      'INVALID_CLAIMS',
    ],
    [
      'no sub',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { ...decodeJwt(await genuine()), sub: undefined }),
      'INVALID_CLAIMS',
    ],
    [
      'no aud',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { ...decodeJwt(await genuine()), aud: undefined }),
      'INVALID_CLAIMS',
    ],
    [
      'no iss',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { ...decodeJwt(await genuine()), iss: undefined }),
      'INVALID_CLAIMS',
    ],
    ['another iss', () => signed({ iss: 'someone-else' }), 'WRONG_ISSUER'],
    ['aud listing both apps', () => signed({ aud: [APP_A, APP_B] }), 'WRONG_APP'],
    ['iat in the future', () => signed({ iat: START / 1000 + 600, exp: START / 1000 + 3600 }), 'INVALID_CLAIMS'],
    ['a lifetime over 2 hours', () => signed({ exp: START / 1000 + 86_400 }), 'INVALID_CLAIMS'],
    ['the openid in clear in sub', () => signed({ sub: OPENID }), 'INVALID_CLAIMS'],
    ["app A's sealed openid under app B", async () => signed({ aud: APP_B }), 'INVALID_CLAIMS'],
    [
      'exp as text',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { ...decodeJwt(await genuine()), exp: 'tomorrow' }),
      'INVALID_CLAIMS',
    ],
    ['a header that is not JSON', async () => `${b64('{not json')}.${(await genuine()).split('.')[1]}.AAAA`, 'MALFORMED'],
    [
      'crit naming an unknown extension',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt', crit: ['exp'] }, decodeJwt(await genuine())),
      'MALFORMED',
    ],
    [
      'b64: false',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt', b64: false, crit: ['b64'] }, decodeJwt(await genuine())),
      'MALFORMED',
    ],
    ['five parts (a JWE)', async () => `${await genuine()}.AAAA.BBBB`, 'MALFORMED'],
    ["'Bearer ' before the token", async () => `Bearer ${await genuine()}`, 'MALFORMED'],
    ['a newline after the token', async () => `${await genuine()}\n`, 'MALFORMED'],
    ['very long (100 KB)', async () => `${await genuine()}${'A'.repeat(100_000)}`, 'MALFORMED'],
    [
      'a long but well-shaped token (2 KB payload)',
      async () => handMade({ alg: 'HS256', typ: 'wechat-session+jwt' }, { pad: 'x'.repeat(2000) }),
      'MALFORMED',
    ],
    ['an empty string', () => '', 'MALFORMED'],
    ['plain text', () => 'not-a-token', 'MALFORMED'],
    ['three dots', () => '...', 'MALFORMED'],
    ['a.b.c', () => 'a.b.c', 'MALFORMED'],
    ['undefined', () => undefined, 'MALFORMED'],
    ['null', () => null, 'MALFORMED'],
    ['a number', () => 12345, 'MALFORMED'],
    ['an object', () => ({ token: 'x' }), 'MALFORMED'],
    ['an array of the genuine token', async () => [await genuine()], 'MALFORMED'],
  ];

  it('has at least 20 hostile tokens to refuse', () => {
    expect(hostile.length).toBeGreaterThanOrEqual(20);
  });

  it.each(hostile.map(([name, make, reason]) => ({ name, make, reason })))(
    'refuses $name ($reason), without throwing',
    async ({ name, make, reason }) => {
      clock = START;
      const token = await make();
      const expected = name.includes('checked for app B') || name.includes('under app B') ? APP_B : APP_A;
      const check = await tokens.verify(token, { appId: expected }).catch((error: unknown) => ({ threw: error }));
      expect(check).toMatchObject({ ok: false, reason, message: expect.any(String) });
    },
  );

  it('refuses when no app is given to check against', async () => {
    const token = await genuine();
    expect(await tokens.verify(token, { appId: [] })).toMatchObject({ ok: false, reason: 'WRONG_APP' });
    expect(await tokens.verify(token, { appId: 'wx 1' })).toMatchObject({ ok: false, reason: 'WRONG_APP' });
    expect(await tokens.verify(token, undefined as never)).toMatchObject({ ok: false, reason: 'WRONG_APP' });
  });

  it('a token from one key is refused under a rotated key', async () => {
    const token = await genuine();
    const rotated = createSessionTokens({ key: OTHER_KEY, now: () => clock });
    expect(await rotated.verify(token, { appId: APP_A })).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
  });
});
