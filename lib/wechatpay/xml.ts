import { XMLParser, type X2jOptions } from 'fast-xml-parser';
import { XmlFormatError } from './errors';
import { ByNameList } from './name-lists';
import type { Fields, SignableFields } from './sign';

/** WeChat Pay documents are small; anything larger is refused before it is parsed. */
export const DEFAULT_MAX_XML_BYTES = 64 * 1024;

export interface ParseXmlOptions {
  maxBytes?: number;
  /** The root element's name: `xml` for WeChat Pay's documents, `root` inside a refund callback's `req_info`. */
  rootName?: string;
}

/** How parseXml calls fast-xml-parser (the bench's limit parses with the same options). */
export const XML_PARSER_OPTIONS = {
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
  // The document comes back as the parser's own ordered list of nodes, which parseXml reads in one
  // walk: no second pass building an object tree, no path strings for callbacks nobody registers.
  preserveOrder: true,
  jPath: false,
} as const satisfies X2jOptions;

const parser = new XMLParser(XML_PARSER_OPTIONS);

/** One node of the parser's ordered output: `{ name: children }` for an element, `{ '#text': value }` for text. */
type OrderedNode = Record<string, unknown>;

const TEXT = '#text';
const DECLARATION = /<!(DOCTYPE|ENTITY)/i;
const MAYBE_DECLARATION = /<![DEde]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a flat WeChat Pay `<xml>` document into its fields. Refuses, with an error that says why:
 * bodies over `maxBytes`, bytes that are not UTF-8, DOCTYPE or ENTITY declarations (XXE and entity
 * expansion), malformed or truncated XML, a root other than a single `<xml>` (or `rootName`),
 * nested or repeated fields, text beside the fields.
 */
export function parseXml(input: string | Uint8Array, options: ParseXmlOptions = {}): Fields {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_XML_BYTES;
  const rootName = options.rootName ?? 'xml';
  // A string takes at most 3 bytes of UTF-8 per UTF-16 unit: only one that may be over the limit is measured.
  const size = typeof input !== 'string' ? input.byteLength : input.length * 3 > maxBytes ? Buffer.byteLength(input, 'utf8') : 0;
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
  // The case-sensitive look for "<!D", "<!E" (either case) is a fraction of the cost of the full pattern.
  if (MAYBE_DECLARATION.test(text) && DECLARATION.test(text)) {
    throw new XmlFormatError('XML with a DOCTYPE or ENTITY declaration is refused (XXE protection)');
  }
  let document: OrderedNode[];
  try {
    document = parser.parse(text) as OrderedNode[];
  } catch (cause) {
    throw new XmlFormatError('XML is malformed', cause);
  }
  const children = document.length === 1 ? document[0]![rootName] : undefined;
  if (!Array.isArray(children)) {
    throw new XmlFormatError(`XML root must be a single <${rootName}> element, found <${names(document).join('>, <')}>`);
  }
  // A document cut short is the malformation that matters in practice; it is caught here without a
  // separate validation pass (which would cost the callback path a quarter of its time). Anything
  // else malformed either fails the structure checks below or reads as fields whose signature then
  // fails: WeChat Pay signs only well-formed documents.
  if (!text.trimEnd().endsWith(`</${rootName}>`)) {
    throw new XmlFormatError(`XML is malformed: it does not end with </${rootName}> (truncated?)`);
  }
  return flatFields(children as OrderedNode[], rootName);
}

/** The names of a document's top-level elements, in order, then `#text` if it holds text there. */
function names(nodes: OrderedNode[]): string[] {
  const out: string[] = [];
  let text = '';
  for (const node of nodes) {
    for (const name in node) {
      if (name === TEXT) text += String(node[name]);
      else out.push(name);
    }
  }
  if (text !== '') out.push(TEXT);
  return out;
}

/** A field's value: its text (every text and CDATA piece, in order), or undefined when it holds elements. */
function fieldValue(children: OrderedNode[]): string | undefined {
  if (children.length === 1) {
    const only = children[0]![TEXT];
    if (typeof only === 'string') return only;
  }
  let value = '';
  for (const child of children) {
    const piece = child[TEXT];
    if (typeof piece !== 'string') return undefined;
    value += piece;
  }
  return value;
}

/** The fields of the root's children, in one walk; any irregularity is explained by `refuseRoot`. */
function flatFields(children: OrderedNode[], rootName: string): Fields {
  const likeLast = fieldsLikeLast(children);
  if (likeLast !== undefined) return likeLast;
  const names: string[] = [];
  const values: string[] = [];
  let rootText = '';
  for (const node of children) {
    for (const name in node) {
      const content = node[name];
      if (name === TEXT) {
        rootText += String(content);
        continue;
      }
      const value = Array.isArray(content) ? fieldValue(content as OrderedNode[]) : undefined;
      if (value === undefined) refuseRoot(children, rootName);
      names.push(name);
      values.push(value);
    }
  }
  const fields = fieldsObject(names, values, children, rootName);
  if (names.length === 0) {
    if (rootText === '') return fields;
    throw new XmlFormatError(`XML root <${rootName}> must hold fields, not text`);
  }
  if (rootText !== '' && rootText.trim() !== '') {
    throw new XmlFormatError(`XML root <${rootName}> holds text beside its fields`);
  }
  return fields;
}

/**
 * For each field list read, an object of those fields in that order, every value empty. An object
 * given a few dozen fields one by one (`fields[name] = value`) becomes a slow dictionary, to build
 * and to read; a copy of one of these keeps its fast shape, and filling it only replaces values.
 */
const emptyFields = new ByNameList<Fields>(8, 64);

/** The fields `names` and `values` spell; a repeated name is explained by `refuseRoot`. */
function fieldsObject(names: string[], values: string[], children: OrderedNode[], rootName: string): Fields {
  let empty = emptyFields.get(names);
  if (empty === undefined) {
    // A remembered list holds no name twice.
    if (new Set(names).size !== names.length) refuseRoot(children, rootName);
    empty = Object.fromEntries(names.map((name) => [name, '']));
    emptyFields.remember(names, empty);
  }
  lastNames = names;
  lastEmpty = empty;
  const fields: Fields = { ...empty };
  for (let i = 0; i < names.length; i += 1) fields[names[i]!] = values[i]!;
  return fields;
}

/**
 * The field list `fieldsObject` used last, with its empty object: most documents are of the same
 * kind as the one before, and are read straight into a copy of it, without listing their names
 * and looking the list up first.
 */
let lastNames: readonly string[] = [];
let lastEmpty: Fields = {};

/**
 * The fields of `children` when they are exactly the last list's, in its order, each holding only
 * text (so no name twice and no text beside them); else undefined, and `flatFields` reads them
 * the long way.
 */
function fieldsLikeLast(children: OrderedNode[]): Fields | undefined {
  if (children.length === 0 || children.length !== lastNames.length) return undefined;
  const fields: Fields = { ...lastEmpty };
  for (let i = 0; i < children.length; i += 1) {
    const node = children[i]!;
    let read = false;
    for (const name in node) {
      const content = node[name];
      const value = !read && name === lastNames[i] && Array.isArray(content) ? fieldValue(content as OrderedNode[]) : undefined;
      if (value === undefined) return undefined;
      fields[name] = value;
      read = true;
    }
    if (!read) return undefined;
  }
  return fields;
}

/**
 * Says what is wrong with a root that holds a repeated or nested field: of the fields in the order
 * they first appear, the first that is repeated or nested.
 */
function refuseRoot(children: OrderedNode[], rootName: string): never {
  const seen = new Map<string, { repeated: boolean; nested: boolean }>();
  for (const node of children) {
    for (const name in node) {
      if (name === TEXT) continue;
      const content = node[name];
      const nested = !Array.isArray(content) || fieldValue(content as OrderedNode[]) === undefined;
      const entry = seen.get(name);
      if (entry) entry.repeated = true;
      else seen.set(name, { repeated: false, nested });
    }
  }
  for (const [name, { repeated, nested }] of seen) {
    if (repeated) throw new XmlFormatError(`XML field <${name}> appears more than once`);
    if (nested) throw new XmlFormatError(`XML field <${name}> is nested; WeChat Pay documents are flat`);
  }
  throw new XmlFormatError(`XML root <${rootName}> is not a flat list of fields`);
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
