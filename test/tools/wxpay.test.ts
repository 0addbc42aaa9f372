import { describe, expect, it } from 'vitest';
import { runWxpay } from './run-wxpay';

// WeChat Pay's signature-algorithm page example and its published signatures.
const KEY = '192006250b4c09247ec02edce69f6a2d';
const MD5 = '9A0A8659F005D6984697E2CA0A9CF3B7';
const HMAC = '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6';
const FIELDS =
  '<appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><device_info>1000</device_info><body>test</body><nonce_str>ibuaiVcKdpRxkhJA</nonce_str>';
const SIGNED = `<xml>${FIELDS}<sign>${MD5}</sign></xml>`;

const wxpay = (args: string[], stdin: string | Buffer) => runWxpay(args, { stdin });

// Each run starts a Node process with tsx (~0.5 s): run them side by side.
describe.concurrent('wxpay verify', () => {
  it('accepts the official example', async () => {
    expect(await wxpay(['verify', '--key', KEY], SIGNED)).toEqual({ code: 0, stdout: 'valid\n', stderr: '' });
  });

  it('rejects it with one character changed (exit 1)', async () => {
    const result = await wxpay(['verify', '--key', KEY], SIGNED.replace('<body>test</body>', '<body>tesT</body>'));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^invalid: sign does not match a MD5 signature/);
  });

  it("uses the document's sign_type, and hints at the sign type a signature's length fits", async () => {
    const declared = await wxpay(['verify', '--key', KEY], `<xml>${FIELDS}<sign_type>HMAC-SHA256</sign_type><sign>${HMAC}</sign></xml>`);
    expect(declared.code).toBe(1); // sign_type is itself signed: the published HMAC value is over the fields without it
    const hmacWithoutDeclaration = await wxpay(['verify', '--key', KEY], `<xml>${FIELDS}<sign>${HMAC}</sign></xml>`);
    expect(hmacWithoutDeclaration.code).toBe(1);
    expect(hmacWithoutDeclaration.stdout).toContain('was it signed with HMAC-SHA256?');
    const withOption = await wxpay(['verify', '--key', KEY, '--sign-type', 'HMAC-SHA256'], `<xml>${FIELDS}<sign>${HMAC}</sign></xml>`);
    expect(withOption).toMatchObject({ code: 0, stdout: 'valid\n' });
  });
});

describe.concurrent('wxpay sign', () => {
  it('signs an XML document (ignoring its sign) and a JSON object', async () => {
    expect(await wxpay(['sign', '--key', KEY], `<xml>${FIELDS}<sign>WRONG</sign></xml>`)).toMatchObject({ code: 0, stdout: `${MD5}\n` });
    const json = JSON.stringify({
      appid: 'wxd930ea5d5a258f4f',
      mch_id: '10000100',
      device_info: '1000',
      body: 'test',
      nonce_str: 'ibuaiVcKdpRxkhJA',
    });
    expect(await wxpay(['sign', '--key', KEY, '--sign-type', 'HMAC-SHA256'], json)).toMatchObject({ code: 0, stdout: `${HMAC}\n` });
  });

  it('--explain prints the string to sign with the key masked, the key nowhere', async () => {
    // The key also pasted into a field by mistake: still never printed.
    const result = await wxpay(['sign', '--key', KEY, '--explain'], `<xml>${FIELDS}<attach>${KEY}</attach></xml>`);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'string to sign: appid=wxd930ea5d5a258f4f&attach=********&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=********',
    );
    expect(result.stdout + result.stderr).not.toContain(KEY);
    const verify = await wxpay(['verify', '--explain', '--key', KEY], SIGNED);
    expect(verify.stdout).toContain('&key=********');
    expect(verify.stdout).toMatch(/valid\n$/);
    expect(verify.stdout + verify.stderr).not.toContain(KEY);
  });
});

describe.concurrent('wxpay usage errors (exit 2)', () => {
  it.each([
    ['no verb', [], SIGNED, /say what to do: sign or verify/],
    ['unknown verb', ['frobnicate', '--key', KEY], SIGNED, /unknown command "frobnicate"/],
    ['missing key', ['verify'], SIGNED, /--key KEY is required/],
    ['unknown sign type', ['verify', '--key', KEY, '--sign-type', 'SHA1'], SIGNED, /--sign-type must be MD5 or HMAC-SHA256/],
    ['unknown option', ['verify', '--key', KEY, '--bogus'], SIGNED, /Unknown option '--bogus'/],
    ['empty input', ['sign', '--key', KEY], '', /no document on standard input/],
    ['JSON number', ['sign', '--key', KEY], '{"total_fee": 1}', /field total_fee is a number; write it as a string/],
    ['truncated XML', ['sign', '--key', KEY], '<xml><a>1</a>', /cannot read the XML document: XML is malformed/],
    [
      'conflicting sign types',
      ['sign', '--key', KEY, '--sign-type', 'MD5'],
      '<xml><sign_type>HMAC-SHA256</sign_type></xml>',
      /declares sign_type=HMAC-SHA256 but --sign-type is MD5/,
    ],
  ] as const)('%s', async (_label, args, stdin, message) => {
    const result = await wxpay([...args], stdin);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage:');
    expect(result.stderr).not.toContain(KEY);
  });
});
