import { XmlFormatError } from './errors';
import type { Fields, SignableFields } from './sign';

/** WeChat Pay documents are small; anything larger is refused before it is parsed. */
export const DEFAULT_MAX_XML_BYTES = 64 * 1024;

export interface ParseXmlOptions {
  maxBytes?: number;
}

const DECLARATION = /<!(DOCTYPE|ENTITY)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/*
 * WeChat Pay documents are one flat level of fields under <xml>, so they are read by a small strict
 * scanner rather than a general XML parser: one pass, no intermediate tree, and nothing that could
 * expand an entity or fetch a DTD. It accepts the XML these documents use (a declaration, processing
 * instructions and comments around elements, whitespace between fields, text and CDATA values with
 * the five predefined entities; other references are kept as they are) and refuses everything else with a reason.
 */
const NAME = /[A-Za-z_:\u00C0-\uFFFD][\w.:\-\u00B7\u00C0-\uFFFD]*/y;
const ATTRIBUTES = /(?:\s+[^\s=/>]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*/y;
const ENTITY = /&(?:[A-Za-z_][\w.:-]*|#[0-9]+|#x[0-9A-Fa-f]+);/y;
const PREDEFINED = new Map([['&amp;', '&'], ['&lt;', '<'], ['&gt;', '>'], ['&quot;', '"'], ['&apos;', "'"]]);
const WHITESPACE = /^[ \t\r\n]*$/;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  fail(message: string): never {
    let line = 1;
    for (let i = this.text.indexOf('\n'); i !== -1 && i < this.pos; i = this.text.indexOf('\n', i + 1)) line += 1;
    throw new XmlFormatError(`XML is malformed (line ${line}): ${message}`);
  }

  skipWhitespace(): void {
    const { text } = this;
    let c = text.charCodeAt(this.pos);
    while (c === 32 || c === 9 || c === 10 || c === 13) c = text.charCodeAt(++this.pos);
  }

  /** Skips `<?...?>` and `<!--...-->` at the position; true when it skipped one. */
  skipMisc(): boolean {
    const { text } = this;
    if (text.startsWith('<?', this.pos)) {
      const end = text.indexOf('?>', this.pos + 2);
      if (end === -1) this.fail('unterminated processing instruction');
      this.pos = end + 2;
      return true;
    }
    if (text.startsWith('<!--', this.pos)) {
      const end = text.indexOf('-->', this.pos + 4);
      if (end === -1) this.fail('unterminated comment');
      this.pos = end + 3;
      return true;
    }
    return false;
  }

  skipMiscAndWhitespace(): void {
    do this.skipWhitespace();
    while (this.skipMisc());
  }

  /** Reads `<name attributes>` or `<name attributes/>`; the position is on `<`. */
  startTag(): { name: string; empty: boolean } {
    this.pos += 1;
    NAME.lastIndex = this.pos;
    const match = NAME.exec(this.text);
    if (!match) this.fail('expected an element name after "<"');
    this.pos = NAME.lastIndex;
    ATTRIBUTES.lastIndex = this.pos;
    ATTRIBUTES.exec(this.text);
    this.pos = ATTRIBUTES.lastIndex;
    if (this.text.startsWith('/>', this.pos)) {
      this.pos += 2;
      return { name: match[0], empty: true };
    }
    if (this.text.charCodeAt(this.pos) !== 62 /* > */) this.fail(`unterminated start tag <${match[0]}>`);
    this.pos += 1;
    return { name: match[0], empty: false };
  }

  /** Reads `</name>`; the position is on `</`. */
  endTag(name: string): void {
    const { text } = this;
    if (!text.startsWith(name, this.pos + 2)) this.fail(`expected </${name}>`);
    this.pos += 2 + name.length;
    this.skipWhitespace();
    if (text.charCodeAt(this.pos) !== 62) this.fail(`expected </${name}>`);
    this.pos += 1;
  }

  /** Character data up to the next `<`, entities decoded. */
  text_(): string {
    const { text } = this;
    const end = text.indexOf('<', this.pos);
    if (end === -1) this.fail('document ends inside text');
    let raw = text.slice(this.pos, end);
    if (raw.includes('&')) raw = this.decode(raw);
    this.pos = end;
    return raw;
  }

  decode(raw: string): string {
    let out = '';
    let from = 0;
    for (let amp = raw.indexOf('&'); amp !== -1; amp = raw.indexOf('&', from)) {
      out += raw.slice(from, amp);
      ENTITY.lastIndex = amp;
      const match = ENTITY.exec(raw);
      if (!match) this.fail('"&" must start an entity or character reference, such as &amp;');
      // Only the five predefined entities are replaced; anything else stays as it came, as before.
      out += PREDEFINED.get(match[0]) ?? match[0];
      from = ENTITY.lastIndex;
    }
    return out + raw.slice(from);
  }
}

/** Reads the content of one field up to its end tag: text and CDATA, nothing nested. */
function fieldValue(scanner: Scanner, name: string): string {
  const { text } = scanner;
  let value = '';
  for (;;) {
    value += scanner.text_();
    if (text.startsWith('<![CDATA[', scanner.pos)) {
      const end = text.indexOf(']]>', scanner.pos + 9);
      if (end === -1) scanner.fail(`unterminated CDATA section in <${name}>`);
      value += text.slice(scanner.pos + 9, end);
      scanner.pos = end + 3;
    } else if (text.startsWith('</', scanner.pos)) {
      scanner.endTag(name);
      return value;
    } else if (!scanner.skipMisc()) {
      if (text.startsWith('<!', scanner.pos)) scanner.fail(`unexpected markup in <${name}>`);
      throw new XmlFormatError(`XML field <${name}> is nested; WeChat Pay documents are flat`);
    }
  }
}

/**
 * Parses a flat WeChat Pay `<xml>` document into its fields. Refuses, with an error that says why:
 * bodies over `maxBytes`, bytes that are not UTF-8, DOCTYPE or ENTITY declarations (XXE and entity
 * expansion), malformed or truncated XML, a root other than `<xml>`, nested or repeated fields.
 */
export function parseXml(input: string | Uint8Array, options: ParseXmlOptions = {}): Fields {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_XML_BYTES;
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: count exactly only when it matters.
  const size =
    typeof input === 'string' ? (input.length * 3 <= maxBytes ? input.length : Buffer.byteLength(input, 'utf8')) : input.byteLength;
  if (size > maxBytes) {
    throw new XmlFormatError(`XML body of ${size} bytes is over the ${maxBytes}-byte limit`);
  }
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = utf8.decode(input);
    } catch (cause) {
      throw new XmlFormatError('XML body is not valid UTF-8', cause);
    }
  }
  if (WHITESPACE.test(text)) throw new XmlFormatError('XML body is empty');
  if (DECLARATION.test(text)) {
    throw new XmlFormatError('XML with a DOCTYPE or ENTITY declaration is refused (XXE protection)');
  }
  const scanner = new Scanner(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  scanner.skipMiscAndWhitespace();
  const roots: string[] = [];
  let fields: Fields | undefined;
  while (scanner.pos < scanner.text.length) {
    if (scanner.text.charCodeAt(scanner.pos) !== 60 /* < */) scanner.fail('text outside the root element');
    const root = scanner.startTag();
    roots.push(root.name);
    if (root.name === 'xml' && roots.length === 1) fields = root.empty ? {} : readFields(scanner);
    else if (!root.empty) skipElement(scanner, root.name);
    scanner.skipMiscAndWhitespace();
  }
  if (roots.length !== 1 || roots[0] !== 'xml' || !fields) {
    throw new XmlFormatError(`XML root must be a single <xml> element, found <${roots.join('>, <')}>`);
  }
  return fields;
}

/** The fields of the root, up to and including `</xml>`. */
function readFields(scanner: Scanner): Fields {
  const { text } = scanner;
  const fields: Fields = {};
  let sawField = false;
  let sawText = false;
  for (;;) {
    const between = scanner.text_();
    if (!WHITESPACE.test(between)) sawText = true;
    if (text.startsWith('</', scanner.pos)) {
      scanner.endTag('xml');
      if (sawText) {
        throw new XmlFormatError(sawField ? 'XML root <xml> holds text beside its fields' : 'XML root <xml> must hold fields, not text');
      }
      return fields;
    }
    if (scanner.skipMisc()) continue;
    if (text.startsWith('<![CDATA[', scanner.pos)) {
      const end = text.indexOf(']]>', scanner.pos + 9);
      if (end === -1) scanner.fail('unterminated CDATA section');
      if (!WHITESPACE.test(text.slice(scanner.pos + 9, end))) sawText = true;
      scanner.pos = end + 3;
      continue;
    }
    const { name, empty } = scanner.startTag();
    const value = empty ? '' : fieldValue(scanner, name);
    if (Object.hasOwn(fields, name)) throw new XmlFormatError(`XML field <${name}> appears more than once`);
    // A field may be called anything, `__proto__` included: define it rather than assign it.
    Object.defineProperty(fields, name, { value, enumerable: true, writable: true, configurable: true });
    sawField = true;
  }
}

/** Skips a well-formed element of a foreign root, so the refusal can name every root. */
function skipElement(scanner: Scanner, name: string): void {
  const end = scanner.text.indexOf(`</${name}`, scanner.pos);
  if (end === -1) scanner.fail(`<${name}> is never closed`);
  scanner.pos = end;
  scanner.endTag(name);
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
// XML 1.0 cannot carry C0 controls other than tab and newline, and parsers turn CR into LF: such a
// value would arrive changed and break its signature, so it is refused here.
// eslint-disable-next-line no-control-regex
const UNCARRIABLE = /[\u0000-\u0008\u000B-\u001F\uFFFE\uFFFF]/;

/** Builds a flat `<xml>` document; values go in CDATA (a `]]>` inside is split across sections). */
export function buildXml(fields: SignableFields): string {
  let out = '<xml>';
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (!FIELD_NAME.test(name)) throw new XmlFormatError(`"${name.slice(0, 40)}" is not a valid XML field name`);
    if (UNCARRIABLE.test(value)) {
      throw new XmlFormatError(`field ${name} holds a control character that XML cannot carry`);
    }
    out += `<${name}><![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]></${name}>`;
  }
  return `${out}</xml>`;
}
