import { XMLParser } from 'fast-xml-parser';
import { XmlFormatError } from './errors';
import type { Fields, SignableFields } from './sign';

/** WeChat Pay documents are small; anything larger is refused before it is parsed. */
export const DEFAULT_MAX_XML_BYTES = 64 * 1024;

export interface ParseXmlOptions {
  maxBytes?: number;
  /** The root element's name: `xml` for WeChat Pay's documents, `root` inside a refund callback's `req_info`. */
  rootName?: string;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  // Every value stays a string: a 28-digit transaction_id or an out_trade_no with leading zeros
  // must come back exactly as sent, or its signature and its lookups break.
  parseTagValue: false,
  // Values are signed as received, whitespace included.
  trimValues: false,
  // Only the five predefined entities; DOCTYPE (and so any declared entity) is refused earlier.
  processEntities: true,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

const DECLARATION = /<!(DOCTYPE|ENTITY)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a flat WeChat Pay `<xml>` document into its fields. Refuses, with an error that says why:
 * bodies over `maxBytes`, bytes that are not UTF-8, DOCTYPE or ENTITY declarations (XXE and entity
 * expansion), malformed or truncated XML, a root other than `<xml>` (or `rootName`), nested or
 * repeated fields.
 */
export function parseXml(input: string | Uint8Array, options: ParseXmlOptions = {}): Fields {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_XML_BYTES;
  const rootName = options.rootName ?? 'xml';
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
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
  if (text.trim() === '') throw new XmlFormatError('XML body is empty');
  if (DECLARATION.test(text)) {
    throw new XmlFormatError('XML with a DOCTYPE or ENTITY declaration is refused (XXE protection)');
  }
  let document: Record<string, unknown>;
  try {
    document = parser.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new XmlFormatError('XML is malformed', cause);
  }
  const roots = Object.keys(document);
  if (roots.length !== 1 || roots[0] !== rootName) {
    throw new XmlFormatError(`XML root must be a single <${rootName}> element, found <${roots.join('>, <')}>`);
  }
  // A document cut short is the malformation that matters in practice; it is caught here without a
  // separate validation pass (which would cost the callback path a quarter of its time). Anything
  // else malformed either fails the structure checks below or reads as fields whose signature then
  // fails: WeChat Pay signs only well-formed documents.
  if (!text.trimEnd().endsWith(`</${rootName}>`)) {
    throw new XmlFormatError(`XML is malformed: it does not end with </${rootName}> (truncated?)`);
  }
  const root = document[rootName];
  if (root === '') return {};
  if (typeof root !== 'object' || root === null) {
    throw new XmlFormatError(`XML root <${rootName}> must hold fields, not text`);
  }
  const fields: Fields = {};
  for (const [name, value] of Object.entries(root as Record<string, unknown>)) {
    if (name === '#text') {
      if (typeof value === 'string' && value.trim() === '') continue;
      throw new XmlFormatError(`XML root <${rootName}> holds text beside its fields`);
    }
    if (Array.isArray(value)) throw new XmlFormatError(`XML field <${name}> appears more than once`);
    if (typeof value !== 'string') {
      throw new XmlFormatError(`XML field <${name}> is nested; WeChat Pay documents are flat`);
    }
    fields[name] = value;
  }
  return fields;
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
