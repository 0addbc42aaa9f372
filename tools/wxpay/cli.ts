/**
 * `wxpay`: signs and checks WeChat Pay v2 documents, to find out why a signature does not match;
 * `wxpay cert` converts the merchant's API certificate (cert.ts).
 * `runWxpay` is the whole tool without process I/O; `main` wires it to the terminal.
 */
import { runCert } from './cert';
import { help, readCommandLine, usageFailure, UsageError, type WxpayResult } from './result';
import { XmlFormatError } from '../../lib/wechatpay/errors';
import {
  explainStringToSign,
  isSignType,
  resolveSignType,
  sign,
  verifySignature,
  type Fields,
  type SignType,
} from '../../lib/wechatpay/sign';
import { parseXml } from '../../lib/wechatpay/xml';

export const USAGE = `Usage:
  wxpay sign   --key KEY [--sign-type MD5|HMAC-SHA256] [--explain] < document
  wxpay verify --key KEY [--sign-type MD5|HMAC-SHA256] [--explain] < document
  wxpay cert   --p12 apiclient_cert.p12 --mch-id MCH_ID [--out client.pem] [--put-ssm NAME]

The document on standard input is a WeChat Pay v2 <xml> document or a JSON object of strings.
  sign     prints the signature of the document's fields (any sign field is left out).
  verify   prints "valid" (exit 0) or "invalid: <why>" (exit 1).
  cert     converts WeChat Pay's .p12 certificate into a PEM (wxpay cert --help says more).
Without --sign-type the document's sign_type is used, else MD5.
--explain also prints the exact string that was signed, with the key masked.
Exit status 2 means the command line or the document could not be used.`;

const MASK = '********';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readDocument(input: string | Uint8Array): Fields {
  let decoded: string;
  try {
    decoded = typeof input === 'string' ? input : utf8.decode(input);
  } catch {
    throw new UsageError('standard input is not UTF-8; WeChat Pay signs the UTF-8 bytes of each value');
  }
  const text = decoded.replace(/^\uFEFF/, '').trim();
  if (text === '') throw new UsageError('no document on standard input: pipe an <xml> document or a JSON object into wxpay');
  if (text.startsWith('<')) {
    try {
      return parseXml(text);
    } catch (error) {
      if (error instanceof XmlFormatError) throw new UsageError(`cannot read the XML document: ${error.message}`);
      throw error;
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `standard input is neither an <xml> document nor JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('the JSON document must be an object of field names to string values');
  }
  const fields: Fields = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') {
      throw new UsageError(
        `field ${name} is ${value === null ? 'null' : `a ${typeof value}`}; write it as a string (e.g. "${name}": "1") so long ids keep every digit, exactly as WeChat Pay sends them`,
      );
    }
    fields[name] = value;
  }
  return fields;
}

/** Likely causes of a mismatch that are visible in the input itself. */
function hints(fields: Fields, key: string): string[] {
  const out: string[] = [];
  if (key.length !== 32) out.push(`note: the key has ${key.length} characters; a WeChat Pay API v2 key has 32`);
  if (key !== key.trim()) out.push('note: the key has whitespace around it');
  for (const [name, value] of Object.entries(fields)) {
    if (value !== '' && value !== value.trim()) {
      out.push(`note: ${name} has whitespace around its value; some SDKs trim values before signing`);
    }
  }
  return out;
}

function chooseSignType(fields: Fields, option: string | undefined): SignType {
  if (option === undefined) {
    const resolved = resolveSignType(fields);
    if (!resolved.ok) throw new UsageError(`the document's ${resolved.message}`);
    return resolved.signType;
  }
  if (!isSignType(option)) throw new UsageError(`--sign-type must be MD5 or HMAC-SHA256, not "${option}"`);
  if (fields.sign_type && fields.sign_type !== option) {
    // sign_type is itself signed: the receiver checks with the declared one, so a different
    // algorithm can never match.
    throw new UsageError(
      `the document declares sign_type=${fields.sign_type} but --sign-type is ${option}; WeChat Pay uses the declared one (drop --sign-type or fix the document)`,
    );
  }
  return option;
}

export function runWxpay(argv: readonly string[], input: string | Uint8Array): WxpayResult {
  let key = '';
  try {
    const { values, positionals } = readCommandLine(argv, {
      key: { type: 'string' },
      'sign-type': { type: 'string' },
      explain: { type: 'boolean', default: false },
    });
    if (values.help) return help(USAGE);
    const [verb, ...extra] = positionals;
    if (verb !== 'sign' && verb !== 'verify') {
      throw new UsageError(verb === undefined ? 'say what to do: sign or verify' : `unknown command "${verb}"`);
    }
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (the document goes on standard input)`);
    if (values.key === undefined || values.key === '') throw new UsageError('--key KEY is required (the API v2 key)');
    key = values.key;
    const fields = readDocument(input);
    const signType = chooseSignType(fields, values['sign-type']);

    const lines: string[] = [];
    if (values.explain) {
      lines.push(`sign type: ${signType}`);
      lines.push(`string to sign: ${explainStringToSign(fields)}`);
      lines.push(...hints(fields, key));
    }
    if (verb === 'sign') {
      lines.push(sign(fields, key, signType));
      return done(0, lines, key);
    }
    const check = verifySignature(fields, key, signType);
    if (values.explain && fields.sign) lines.push(`expected sign: ${sign(fields, key, signType)}`);
    lines.push(check.ok ? 'valid' : `invalid: ${check.message}`);
    return done(check.ok ? 0 : 1, lines, key);
  } catch (error) {
    const failure = usageFailure(error, 'wxpay', USAGE);
    if (failure) return { ...failure, stderr: redact(failure.stderr, key) };
    throw error;
  }
}

// A document may happen to contain the key (pasted into the wrong field): it still never reaches the terminal.
function redact(text: string, key: string): string {
  return key === '' ? text : text.replaceAll(key, MASK);
}

function done(exitCode: 0 | 1, lines: string[], key: string): WxpayResult {
  return { exitCode, stdout: redact(`${lines.join('\n')}\n`, key), stderr: '' };
}

async function readStdin(): Promise<Uint8Array> {
  // At a terminal there is no document coming; say so instead of waiting for one.
  if (process.stdin.isTTY) return new Uint8Array();
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs the tool on this process's arguments and standard streams; returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const result =
    argv[0] === 'cert'
      ? runCert(argv.slice(1), { stdoutIsTTY: process.stdout.isTTY === true, now: new Date() })
      : runWxpay(argv, wantsHelp ? new Uint8Array() : await readStdin());
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  return result.exitCode;
}
