import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import forge from 'node-forge';
import { afterAll, describe, expect, it } from 'vitest';
import { runCert } from '../../tools/wxpay/cert';
import { runWxpay } from './run-wxpay';

const MCH_ID = '1234567';
const DAY_MS = 24 * 60 * 60 * 1000;
const dir = mkdtempSync(join(tmpdir(), 'wxpay-cert-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Asn1 = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;
// forge's PKCS#12 key derivation (RFC 7292, appendix B), which its type definitions leave out.
const pbe = (
  forge.pki as unknown as {
    pbe: {
      generatePkcs12Key(
        password: string,
        salt: forge.util.ByteStringBuffer,
        id: number,
        iterations: number,
        length: number,
      ): forge.util.ByteStringBuffer;
    };
  }
).pbe;

interface Merchant {
  key: forge.pki.rsa.PrivateKey;
  keyPem: string;
  cert: forge.pki.Certificate;
  certPem: string;
}

/** A self-signed certificate like WeChat Pay's (CN: the merchant id), valid from 10 days ago for `days`. */
function merchantCertificate(days: number): Merchant {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = `4a${forge.util.bytesToHex(forge.random.getBytesSync(19))}`;
  cert.validity.notBefore = new Date(Date.now() - 10 * DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + days * DAY_MS);
  const subject = [
    { name: 'commonName', value: MCH_ID },
    { name: 'organizationName', value: 'Test merchant' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'extKeyUsage', clientAuth: true }]);
  cert.sign(key, forge.md.sha256.create());
  return { key, keyPem: privateKey, cert, certPem: forge.pki.certificateToPem(cert) };
}

/** A .p12 as forge writes it: the key in a 3DES-encrypted bag, the certificate in the clear. */
function p12With3des(key: forge.pki.rsa.PrivateKey, cert: forge.pki.Certificate, password: string): Buffer {
  const pfx = forge.pkcs12.toPkcs12Asn1(key, cert, password, { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(pfx).getBytes(), 'binary');
}

function node(tagClass: forge.asn1.Class, type: number, constructed: boolean, value: string | Asn1[]): Asn1 {
  return forge.asn1.create(tagClass, type, constructed, value);
}

function oid(name: string): Asn1 {
  return node(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(forge.pki.oids[name] as string).getBytes());
}

function integer(value: number): Asn1 {
  return node(Class.UNIVERSAL, Type.INTEGER, false, forge.asn1.integerToDer(value).getBytes());
}

function children(asn1: Asn1): Asn1[] {
  return asn1.value as Asn1[];
}

/**
 * A .p12 as OpenSSL's legacy export writes it, and as WeChat Pay's apiclient_cert.p12 is: the key in
 * a 3DES bag and the certificate bag encrypted with pbeWithSHAAnd40BitRC2-CBC, which Node's OpenSSL 3
 * refuses. forge reads RC2-40 but writes only 3DES/AES, so the certificate part of forge's .p12 is
 * re-encrypted here with forge's RC2 and PKCS#12 key derivation (RFC 7292), and the MAC redone.
 */
function p12WithRc2(key: forge.pki.rsa.PrivateKey, cert: forge.pki.Certificate, password: string): Buffer {
  const pfx = forge.pkcs12.toPkcs12Asn1(key, cert, password, { algorithm: '3des' });
  const [, authSafe, macData] = children(pfx) as [Asn1, Asn1, Asn1];
  const authSafeOctets = children(children(authSafe)[1] as Asn1)[0] as Asn1;
  const [certInfo, keyInfo] = children(forge.asn1.fromDer(authSafeOctets.value as string)) as [Asn1, Asn1];
  const certSafeContents = (children(children(certInfo)[1] as Asn1)[0] as Asn1).value as string;

  const salt = forge.random.getBytesSync(8);
  const count = 2048;
  const derive = (id: number, length: number) => pbe.generatePkcs12Key(password, forge.util.createBuffer(salt), id, count, length);
  const cipher = forge.rc2.createEncryptionCipher(derive(1, 5), 40);
  cipher.start(derive(2, 8));
  cipher.update(forge.util.createBuffer(certSafeContents));
  cipher.finish();

  const S = Class.UNIVERSAL;
  const encryptedCertInfo = node(S, Type.SEQUENCE, true, [
    oid('encryptedData'),
    node(Class.CONTEXT_SPECIFIC, 0, true, [
      node(S, Type.SEQUENCE, true, [
        integer(0),
        node(S, Type.SEQUENCE, true, [
          oid('data'),
          node(S, Type.SEQUENCE, true, [
            oid('pbewithSHAAnd40BitRC2-CBC'),
            node(S, Type.SEQUENCE, true, [node(S, Type.OCTETSTRING, false, salt), integer(count)]),
          ]),
          node(Class.CONTEXT_SPECIFIC, 0, false, cipher.output.getBytes()),
        ]),
      ]),
    ]),
  ]);
  const contents = forge.asn1.toDer(node(S, Type.SEQUENCE, true, [encryptedCertInfo, keyInfo])).getBytes();
  authSafeOctets.value = contents;

  const [digestInfo, macSalt, iterations] = children(macData) as [Asn1, Asn1, Asn1];
  const macKey = pbe.generatePkcs12Key(
    password,
    forge.util.createBuffer(macSalt.value as string),
    3,
    forge.asn1.derToInteger(iterations.value as string),
    20,
  );
  const hmac = forge.hmac.create();
  hmac.start('sha1', macKey);
  hmac.update(contents);
  (children(digestInfo)[1] as Asn1).value = hmac.digest().getBytes();
  return Buffer.from(forge.asn1.toDer(pfx).getBytes(), 'binary');
}

function file(name: string, content: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const wxpay = (args: string[], cwd = dir) => runWxpay(args, { cwd });

function spki(key: Parameters<typeof createPublicKey>[0]): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

const merchant = merchantCertificate(365);
const serial = merchant.cert.serialNumber.toUpperCase();
const legacy = file('apiclient_cert.p12', p12WithRc2(merchant.key, merchant.cert, MCH_ID));
const tripleDes = file('3des.p12', p12With3des(merchant.key, merchant.cert, MCH_ID));

describe('the test .p12 files', () => {
  it("the RC2-40 one is refused by Node (OpenSSL 3), like WeChat Pay's; forge reads it", () => {
    expect(() => createSecureContext({ pfx: readFileSync(legacy), passphrase: MCH_ID })).toThrow(/unsupported/i);
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(readFileSync(legacy).toString('binary')), MCH_ID);
    expect(p12.safeContents.map((contents) => contents.encrypted)).toEqual([true, false]);
  });
});

describe.concurrent('wxpay cert', () => {
  it('converts a legacy RC2-40/3DES .p12 into one PEM, mode 0600, whose key matches its certificate', async () => {
    const out = join(dir, 'legacy.pem');
    const result = await wxpay(['cert', '--p12', legacy, '--mch-id', MCH_ID, '--out', out]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`certificate: CN=${MCH_ID}\n`);
    expect(result.stdout).toContain(`serial: ${serial}\n`);
    expect(result.stdout).toMatch(/expires: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 36[45] days\)\n/);
    expect(result.stdout).toContain('private key: RSA 2048, matches the certificate');
    expect(result.stdout).toContain(`wrote ${out} (certificate and private key, mode 0600)`);
    expect(result.stdout).not.toMatch(/PRIVATE KEY/);

    expect(statSync(out).mode & 0o777).toBe(0o600);
    const pem = readFileSync(out, 'utf8');
    expect(pem).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/,
    );
    const certificate = new X509Certificate(pem);
    const privateKey = createPrivateKey(pem);
    expect(certificate.serialNumber).toBe(serial);
    expect(certificate.checkPrivateKey(privateKey)).toBe(true);
    expect(spki(privateKey)).toEqual(spki(merchant.certPem));
    expect(spki(privateKey)).toEqual(spki(merchant.keyPem));
  });

  it('writes the PEM alone to standard output without --out (information on standard error)', async () => {
    const result = await wxpay(['cert', '--p12', tripleDes, '--mch-id', MCH_ID]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]+-----END PRIVATE KEY-----\n$/);
    expect(new X509Certificate(result.stdout).checkPrivateKey(createPrivateKey(result.stdout))).toBe(true);
    expect(result.stderr).toContain(`serial: ${serial}`);
    expect(result.stderr).not.toMatch(/PRIVATE KEY/);
  });

  it('the PEM is a working TLS client certificate and key, one file for both', async () => {
    const pem = (await wxpay(['cert', '--p12', legacy, '--mch-id', MCH_ID, '--out', '-'])).stdout;
    const server = createServer({ ...serverIdentity, ca: merchant.certPem, requestCert: true, rejectUnauthorized: true }, (_req, res) =>
      res.end('accepted'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, agent: false, cert: pem, key: pem, rejectUnauthorized: false }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      expect(body).toBe('accepted');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('prints the aws ssm put-parameter line for --put-ssm, without running it', async () => {
    const cwd = mkdtempSync(join(dir, 'ssm-'));
    const result = await wxpay(
      ['cert', '--p12', legacy, '--mch-id', MCH_ID, '--out', 'client.pem', '--put-ssm', '/wechatpay/prod/client-cert'],
      cwd,
    );
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')).toContain(
      'aws ssm put-parameter --type SecureString --name /wechatpay/prod/client-cert --value file://client.pem',
    );
    expect(existsSync(join(cwd, 'client.pem'))).toBe(true);
  });

  it('refuses a wrong password (another merchant id) clearly, exit 1, writing nothing', async () => {
    const out = join(dir, 'wrong-password.pem');
    const result = await wxpay(['cert', '--p12', legacy, '--mch-id', '7654321', '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/does not open with the merchant id as its password: is --mch-id the merchant id/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a .p12 whose key is not its certificate's, exit 1, writing nothing", async () => {
    const other = merchantCertificate(365);
    const mismatched = file('mismatched.p12', p12WithRc2(other.key, merchant.cert, MCH_ID));
    const out = join(dir, 'mismatched.pem');
    const result = await wxpay(['cert', '--p12', mismatched, '--mch-id', MCH_ID, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the private key in the .p12 does not match its certificate/);
    expect(result.stdout + result.stderr).not.toMatch(/PRIVATE KEY/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a file that is not a .p12, exit 1', async () => {
    const pemFile = await wxpay(['cert', '--p12', file('already.pem', merchant.certPem), '--mch-id', MCH_ID, '--out', '-']);
    expect(pemFile).toMatchObject({ code: 1, stdout: '' });
    expect(pemFile.stderr).toMatch(/PEM text, not a .p12/);
    const garbage = await wxpay(['cert', '--p12', file('garbage.p12', Buffer.from('0123456789abcdef')), '--mch-id', MCH_ID, '--out', '-']);
    expect(garbage).toMatchObject({ code: 1, stdout: '' });
    expect(garbage.stderr).toMatch(/cannot read the file as a PKCS#12/);
  });

  it('warns about a certificate that expires within 30 days, and one that has expired', async () => {
    const soon = merchantCertificate(10);
    const soonResult = await wxpay([
      'cert',
      '--p12',
      file('soon.p12', p12WithRc2(soon.key, soon.cert, MCH_ID)),
      '--mch-id',
      MCH_ID,
      '--out',
      join(dir, 'soon.pem'),
    ]);
    expect(soonResult.code).toBe(0);
    expect(soonResult.stdout).toMatch(/expires: .* \(in (9|10) days\)/);
    expect(soonResult.stderr).toMatch(/^warning: the certificate expires in (9|10) days .*renew it/m);

    const expired = merchantCertificate(-2);
    const expiredResult = await wxpay([
      'cert',
      '--p12',
      file('expired.p12', p12WithRc2(expired.key, expired.cert, MCH_ID)),
      '--mch-id',
      MCH_ID,
      '--out',
      join(dir, 'expired.pem'),
    ]);
    expect(expiredResult.code).toBe(0);
    expect(expiredResult.stdout).toMatch(/expires: .* \((2|3) days ago\)/);
    expect(expiredResult.stderr).toMatch(/^warning: the certificate EXPIRED on .*WeChat Pay refuses it/m);
  });

  it('replaces an existing file only with --force, and makes it private', async () => {
    const out = file('existing.pem', 'old');
    chmodSync(out, 0o644);
    const refused = await wxpay(['cert', '--p12', legacy, '--mch-id', MCH_ID, '--out', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/exists; add --force to replace it/);
    expect(readFileSync(out, 'utf8')).toBe('old');
    const forced = await wxpay(['cert', '--p12', legacy, '--mch-id', MCH_ID, '--out', out, '--force']);
    expect(forced.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(new X509Certificate(readFileSync(out)).serialNumber).toBe(serial);
  });

  it('is listed in wxpay --help', async () => {
    expect((await wxpay(['--help'])).stdout).toContain('wxpay cert   --p12 apiclient_cert.p12 --mch-id MCH_ID');
    const help = await wxpay(['cert', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--put-ssm NAME');
  });
});

describe('wxpay cert usage errors (exit 2)', () => {
  const tty = { stdoutIsTTY: true, now: new Date() };
  const piped = { stdoutIsTTY: false, now: new Date() };
  it.each([
    ['no --p12', ['--mch-id', MCH_ID], piped, /--p12 FILE is required/],
    ['no --mch-id', ['--p12', legacy], piped, /--mch-id MCH_ID is required/],
    ['a .p12 that does not exist', ['--p12', join(dir, 'missing.p12'), '--mch-id', MCH_ID], piped, /does not exist/],
    ['--put-ssm without --out', ['--p12', legacy, '--mch-id', MCH_ID, '--put-ssm', '/a/b'], piped, /--put-ssm needs --out FILE/],
    [
      '--put-ssm with a name SSM refuses',
      ['--p12', legacy, '--mch-id', MCH_ID, '--out', join(dir, 'x.pem'), '--put-ssm', '/a b; rm -rf ~'],
      piped,
      /is not an SSM parameter name/,
    ],
    ['an unknown option', ['--p12', legacy, '--mch-id', MCH_ID, '--password', 'x'], piped, /Unknown option '--password'/],
    [
      'the private key to a terminal, not asked for',
      ['--p12', legacy, '--mch-id', MCH_ID],
      tty,
      /the PEM holds the private key: give --out FILE/,
    ],
  ] as const)('%s', (_label, args, environment, message) => {
    const result = runCert([...args], environment);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage:');
  });

  it('prints the PEM to a terminal when --out - asks for it', () => {
    const result = runCert(['--p12', legacy, '--mch-id', MCH_ID, '--out', '-'], { stdoutIsTTY: true, now: new Date() });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('-----BEGIN PRIVATE KEY-----');
  });
});

// The https server in the TLS test needs an identity of its own; any self-signed one will do.
const serverIdentity = (() => {
  const server = merchantCertificate(30);
  return { cert: server.certPem, key: server.keyPem };
})();
