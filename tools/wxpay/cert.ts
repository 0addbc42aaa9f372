/**
 * `wxpay cert`: turns WeChat Pay's `apiclient_cert.p12` into the one PEM (certificate, then private
 * key) the backend presents to `/secapi/` endpoints, and says whose certificate it is and when it
 * expires.
 *
 * The `.p12`'s password is the merchant id, and its encryption is the legacy kind (RC2-40 for the
 * certificate, 3DES for the key) that Node's OpenSSL 3 no longer opens without its legacy provider:
 * node-forge, in pure JS, reads it here. Node's crypto then checks the result.
 */
import { closeSync, existsSync, fchmodSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { help, readCommandLine, usageFailure, UsageError, type WxpayResult } from './result';

export const CERT_USAGE = `Usage:
  wxpay cert --p12 apiclient_cert.p12 --mch-id MCH_ID [--out client.pem [--force]] [--put-ssm NAME]

Converts WeChat Pay's API certificate (apiclient_cert.p12, whose password is the merchant id) into
one PEM file holding the certificate and its private key, after checking that the key matches the
certificate. Prints the certificate's subject CN, serial number and expiry, and warns when it
expires within 30 days.
  --out FILE      writes the PEM to FILE, readable only by you (mode 0600); an existing FILE is
                  replaced only with --force. Without --out the PEM goes to standard output,
                  which must then not be a terminal (or say --out - to print it anyway).
  --put-ssm NAME  also prints the aws command that stores FILE as the SSM SecureString NAME;
                  it is not run.
Exit status 1 means the .p12 could not be converted, 2 that the command line could not be used.`;

/** Warn this long before the certificate expires. */
const WARN_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;
/** A standard SSM parameter holds at most 4 KB; an advanced one 8 KB. */
const SSM_STANDARD_BYTES = 4096;
const MAX_P12_BYTES = 1024 * 1024;
// SSM parameter names: letters, digits, _ . - and /; a hierarchical name starts with /.
const SSM_NAME = /^(?:\/?[A-Za-z0-9_.-]+)(?:\/[A-Za-z0-9_.-]+)*$/;

export interface CertEnvironment {
  /** Whether standard output is a terminal (the PEM holds the private key). */
  stdoutIsTTY: boolean;
  now: Date;
}

class CertConversionError extends Error {}

interface Converted {
  certificate: X509Certificate;
  privateKey: KeyObject;
  /** Other certificates the .p12 holds (a CA chain): left out of the PEM. */
  others: number;
}

const CERT_BAG = forge.pki.oids.certBag as string;
const KEY_BAGS = [forge.pki.oids.pkcs8ShroudedKeyBag as string, forge.pki.oids.keyBag as string];

function toDer(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
}

function openP12(bytes: Buffer, password: string): Converted {
  if (bytes.subarray(0, 64).toString('latin1').includes('-----BEGIN')) {
    throw new CertConversionError('the file is PEM text, not a .p12: it needs no conversion');
  }
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    // Not strict: some tools write .p12 files in BER; the MAC still covers their contents.
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary')), false);
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/MAC could not be verified|Invalid password/i.test(message)) {
      throw new CertConversionError(
        'the .p12 does not open with the merchant id as its password: is --mch-id the merchant id this certificate was issued to?',
      );
    }
    throw new CertConversionError(`cannot read the file as a PKCS#12 (.p12) certificate: ${message}`);
  }

  const certificates: X509Certificate[] = [];
  for (const bag of p12.getBags({ bagType: CERT_BAG })[CERT_BAG] ?? []) {
    const node = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
    if (node) certificates.push(new X509Certificate(toDer(node)));
  }
  const keys: KeyObject[] = [];
  for (const bagType of KEY_BAGS) {
    for (const bag of p12.getBags({ bagType })[bagType] ?? []) {
      const node = bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : bag.asn1;
      if (node) keys.push(createPrivateKey({ key: toDer(node), format: 'der', type: 'pkcs8' }));
    }
  }
  if (keys.length === 0) throw new CertConversionError('the .p12 holds no private key');
  if (keys.length > 1) throw new CertConversionError(`the .p12 holds ${keys.length} private keys; a WeChat Pay one holds one`);
  if (certificates.length === 0) throw new CertConversionError('the .p12 holds no certificate');
  const privateKey = keys[0] as KeyObject;
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const certificate = certificates.find((cert) => cert.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKey));
  if (!certificate) {
    throw new CertConversionError(
      'the private key in the .p12 does not match its certificate (their public keys differ): it cannot be used',
    );
  }
  return { certificate, privateKey, others: certificates.length - 1 };
}

function commonName(certificate: X509Certificate): string {
  const line = certificate.subject.split('\n').find((part) => part.startsWith('CN='));
  return line ? line.slice(3) : '(none)';
}

function utc(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  return `${(key.asymmetricKeyType ?? 'unknown').toUpperCase()}${details?.modulusLength ? ` ${details.modulusLength}` : ''}`;
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function writePrivateFile(path: string, content: string, force: boolean): void {
  let fd: number;
  try {
    fd = openSync(path, force ? 'w' : 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(`${path} exists; add --force to replace it`);
    }
    throw new UsageError(`cannot write ${path}: ${(error as Error).message}`);
  }
  try {
    // A file that existed keeps its mode on open: make it private before the key goes in.
    fchmodSync(fd, 0o600);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/** The whole `wxpay cert` command; `argv` is what follows `cert`. */
export function runCert(argv: readonly string[], environment: CertEnvironment): WxpayResult {
  try {
    const { values, positionals } = readCommandLine(argv, {
      p12: { type: 'string' },
      'mch-id': { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      'put-ssm': { type: 'string' },
    });
    if (values.help) return help(CERT_USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const p12Path = values.p12;
    if (!p12Path) throw new UsageError('--p12 FILE is required (apiclient_cert.p12, from the merchant platform)');
    const mchId = values['mch-id'];
    if (!mchId) throw new UsageError("--mch-id MCH_ID is required: the merchant id is the .p12's password");
    const out = values.out;
    const toStdout = out === undefined || out === '-';
    if (out === undefined && environment.stdoutIsTTY) {
      throw new UsageError('the PEM holds the private key: give --out FILE (or redirect standard output, or say --out - to print it here)');
    }
    const ssmName = values['put-ssm'];
    if (ssmName !== undefined) {
      if (toStdout) throw new UsageError('--put-ssm needs --out FILE: the aws command reads the PEM from that file');
      if (!SSM_NAME.test(ssmName) || ssmName.length > 1011) {
        throw new UsageError(`--put-ssm "${ssmName}" is not an SSM parameter name (letters, digits, _ . - and /)`);
      }
    }
    if (!existsSync(p12Path)) throw new UsageError(`${p12Path} does not exist`);
    const size = statSync(p12Path).size;
    if (size > MAX_P12_BYTES) throw new UsageError(`${p12Path} is ${size} bytes; a .p12 certificate is a few KB`);

    const { certificate, privateKey, others } = openP12(readFileSync(p12Path), mchId);
    const pem = `${certificate.toString().trimEnd()}\n${String(privateKey.export({ type: 'pkcs8', format: 'pem' }))}`;

    const info: string[] = [];
    const warnings: string[] = [];
    const validTo = new Date(certificate.validTo);
    const validFrom = new Date(certificate.validFrom);
    const daysLeft = Math.floor((validTo.getTime() - environment.now.getTime()) / DAY_MS);
    info.push(`certificate: CN=${commonName(certificate)}`);
    info.push(`serial: ${certificate.serialNumber}`);
    info.push(`expires: ${utc(validTo)} (${daysLeft >= 0 ? `in ${daysLeft} days` : `${-daysLeft} days ago`})`);
    info.push(`private key: ${describeKey(privateKey)}, matches the certificate`);
    if (others > 0) info.push(`note: the .p12 also holds ${others} other certificate(s) (a CA's); they are left out`);
    if (validTo.getTime() <= environment.now.getTime()) {
      warnings.push(
        `warning: the certificate EXPIRED on ${utc(validTo)}: WeChat Pay refuses it; download a new one from the merchant platform (API security)`,
      );
    } else if (daysLeft < WARN_DAYS) {
      warnings.push(
        `warning: the certificate expires in ${daysLeft} days (${utc(validTo)}): renew it in the merchant platform (API security)`,
      );
    }
    if (validFrom.getTime() > environment.now.getTime()) {
      warnings.push(`warning: the certificate is not valid before ${utc(validFrom)} (is this machine's clock right?)`);
    }

    if (toStdout) {
      // The PEM alone on standard output, so that it can be piped; everything else on standard error.
      return { exitCode: 0, stdout: pem, stderr: `${[...info, ...warnings].join('\n')}\n` };
    }
    writePrivateFile(out as string, pem, values.force);
    info.push(`wrote ${out} (certificate and private key, mode 0600)`);
    if (ssmName !== undefined) {
      const bytes = Buffer.byteLength(pem);
      const tier = bytes > SSM_STANDARD_BYTES ? ' --tier Advanced' : '';
      info.push('store it in SSM (not run here; add --overwrite to replace an existing parameter):');
      info.push(`aws ssm put-parameter --type SecureString${tier} --name ${shellWord(ssmName)} --value ${shellWord(`file://${out}`)}`);
    }
    return { exitCode: 0, stdout: `${info.join('\n')}\n`, stderr: warnings.length > 0 ? `${warnings.join('\n')}\n` : '' };
  } catch (error) {
    const failure = usageFailure(error, 'wxpay cert', CERT_USAGE);
    if (failure) return failure;
    if (error instanceof CertConversionError) {
      return { exitCode: 1, stdout: '', stderr: `wxpay cert: ${error.message}\n` };
    }
    throw error;
  }
}
