import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { XmlFormatError } from '../../../lib/wechatpay/errors';
import { buildXml, parseXml } from '../../../lib/wechatpay/xml';

// The C0 controls XML 1.0 cannot carry (tab and LF excepted), CR (which parsers turn into LF) and
// the two non-characters: buildXml refuses them by design.
// eslint-disable-next-line no-control-regex
const UNCARRIABLE = /[\u0000-\u0008\u000B-\u001F\uFFFE\uFFFF]/;

function refusal(input: string | Uint8Array): string {
  try {
    parseXml(input);
  } catch (error) {
    expect(error).toBeInstanceOf(XmlFormatError);
    return (error as Error).message;
  }
  throw new Error('parseXml accepted the input');
}

describe('buildXml / parseXml round trip (property)', () => {
  const value = fc
    .oneof(
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.constantFrom('&', '&amp;', '<', '>', ']]>', ']]]]>', 'a]]>b]]>', '支付测试 订单额外描述', '  padded  ', '\t\n'),
      fc.stringMatching(/^0[0-9]{0,20}$/),
      fc.stringMatching(/^[0-9]{28,200}$/),
    )
    .filter((v) => !UNCARRIABLE.test(v));
  const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/);

  it('gives back every field exactly, as strings', () => {
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: 12 }), (fields) => {
        expect(parseXml(buildXml(fields))).toEqual(fields);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to build a value XML cannot carry', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 10 }),
        fc.constantFrom('\u0000', '\u0001', '\u0008', '\u000B', '\u000C', '\r', '\u001F', '\uFFFE', '\uFFFF'),
        fc.string({ maxLength: 10 }),
        (before, control, after) => {
          expect(() => buildXml({ attach: before + control + after })).toThrow(/control character that XML cannot carry/);
        },
      ),
    );
  });

  it('keeps a 28-digit transaction_id and leading zeros, never coerced to numbers', () => {
    const fields = { transaction_id: '4200000540202005511234567890', out_trade_no: '000123', total_fee: '1' };
    const parsed = parseXml(
      '<xml><transaction_id>4200000540202005511234567890</transaction_id><out_trade_no>000123</out_trade_no><total_fee>1</total_fee></xml>',
    );
    expect(parsed).toEqual(fields);
    expect(parseXml(buildXml(fields))).toEqual(fields);
  });
});

describe('parseXml refuses hostile input', () => {
  it('refuses an external entity reading /etc/passwd (XXE) without reading it', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><attach>&xxe;</attach></xml>`;
    const message = refusal(xxe);
    expect(message).toMatch(/DOCTYPE or ENTITY declaration is refused/);
    expect(message).not.toMatch(/root:/);
  });

  it('refuses parameter entities and a lower-case doctype', () => {
    const parameterEntity = `<!doctype xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd">%remote;]><xml><a>1</a></xml>`;
    expect(refusal(parameterEntity)).toMatch(/DOCTYPE or ENTITY/);
    expect(refusal('<xml><a>1</a></xml><!ENTITY x "y">')).toMatch(/DOCTYPE or ENTITY/);
  });

  it('refuses billion laughs quickly, without expanding it', () => {
    let entities = '<!ENTITY lol0 "lol">';
    for (let i = 1; i <= 9; i++) entities += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
    const bomb = `<?xml version="1.0"?><!DOCTYPE xml [${entities}]><xml><attach>&lol9;</attach></xml>`;
    const started = performance.now();
    expect(refusal(bomb)).toMatch(/DOCTYPE or ENTITY/);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('refuses oversize bodies before parsing', () => {
    const big = `<xml><attach>${'a'.repeat(64 * 1024)}</attach></xml>`;
    expect(refusal(big)).toMatch(/XML body of \d+ bytes is over the 65536-byte limit/);
    expect(refusal(new TextEncoder().encode(big))).toMatch(/over the 65536-byte limit/);
  });

  it('refuses bytes that are not UTF-8', () => {
    // "支付" in GBK, as a misconfigured sender would send it.
    const gbk = Buffer.concat([Buffer.from('<xml><body>'), Buffer.from([0xd6, 0xa7, 0xb8, 0xb6]), Buffer.from('</body></xml>')]);
    expect(refusal(gbk)).toBe('XML body is not valid UTF-8');
  });

  it('refuses nested, repeated, truncated, empty and foreign-root documents, each saying why', () => {
    expect(refusal('<xml><detail><goods>1</goods></detail></xml>')).toBe('XML field <detail> is nested; WeChat Pay documents are flat');
    expect(refusal('<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>')).toBe('XML field <total_fee> appears more than once');
    expect(refusal('<xml><return_code><![CDATA[SUCCESS]]></return_code><return_ms')).toMatch(/^XML is malformed/);
    expect(refusal('')).toBe('XML body is empty');
    expect(refusal('<root><a>1</a></root>')).toMatch(/^XML root must be a single <xml> element, found <root>/);
    expect(refusal('<xml>text</xml>')).toMatch(/must hold fields, not text/);
  });

  it('accepts an XML declaration, whitespace between fields and an empty document', () => {
    expect(parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <a>1</a>\n  <b><![CDATA[x]]></b>\n</xml>\n')).toEqual({
      a: '1',
      b: 'x',
    });
    expect(parseXml('<xml></xml>')).toEqual({});
  });
});

/**
 * parseXml as it was before it read the parser's ordered output in one walk: the parser's object
 * mode, then checks over the object. The walk must accept and refuse exactly what this accepted and
 * refused, with the same message, except a repeated root, which this let through as fields named 0, 1...
 */
function objectModeParseXml(text: string, rootName = 'xml'): Record<string, string> {
  if (text.trim() === '') throw new XmlFormatError('XML body is empty');
  if (/<!(DOCTYPE|ENTITY)/i.test(text)) throw new XmlFormatError('XML with a DOCTYPE or ENTITY declaration is refused (XXE protection)');
  let document: Record<string, unknown>;
  try {
    document = objectModeParser.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new XmlFormatError('XML is malformed', cause);
  }
  const roots = Object.keys(document);
  if (roots.length !== 1 || roots[0] !== rootName) {
    throw new XmlFormatError(`XML root must be a single <${rootName}> element, found <${roots.join('>, <')}>`);
  }
  if (!text.trimEnd().endsWith(`</${rootName}>`))
    throw new XmlFormatError(`XML is malformed: it does not end with </${rootName}> (truncated?)`);
  const root = document[rootName];
  if (root === '') return {};
  if (typeof root !== 'object' || root === null) throw new XmlFormatError(`XML root <${rootName}> must hold fields, not text`);
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(root as Record<string, unknown>)) {
    if (name === '#text') {
      if (typeof value === 'string' && value.trim() === '') continue;
      throw new XmlFormatError(`XML root <${rootName}> holds text beside its fields`);
    }
    if (Array.isArray(value)) throw new XmlFormatError(`XML field <${name}> appears more than once`);
    if (typeof value !== 'string') throw new XmlFormatError(`XML field <${name}> is nested; WeChat Pay documents are flat`);
    fields[name] = value;
  }
  return fields;
}

const objectModeParser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

function outcome(run: () => Record<string, string>): { fields: Record<string, string> } | { refused: string } {
  try {
    return { fields: run() };
  } catch (error) {
    expect(error).toBeInstanceOf(XmlFormatError);
    return { refused: (error as Error).message };
  }
}

describe('parseXml reads the ordered parse in one walk, as the object mode did (property)', () => {
  const text = fc.constantFrom('1', 'SUCCESS', ' ', '\n  ', 'a&amp;b', '&lt;x&gt;', '支付', 'x y', '');
  const cdata = fc.constantFrom('OK', '', ' padded ', 'a]]]]><![CDATA[>b', '<not a tag>', '&amp;');
  const name = fc.constantFrom('a', 'b', 'c', 'total_fee', 'sign', 'xml', 'root');
  type Node = string;
  const leaf: fc.Arbitrary<Node> = fc.oneof(
    text,
    cdata.map((c) => `<![CDATA[${c}]]>`),
    fc.constant('<!-- a comment -->'),
  );
  const element = (inner: fc.Arbitrary<Node>): fc.Arbitrary<Node> =>
    fc.oneof(
      fc.tuple(name, fc.array(inner, { maxLength: 3 })).map(([n, kids]) => `<${n}>${kids.join('')}</${n}>`),
      name.map((n) => `<${n}/>`),
    );
  const field = element(fc.oneof({ weight: 4, arbitrary: leaf }, { weight: 1, arbitrary: element(leaf) }));
  const body = fc.array(fc.oneof({ weight: 5, arbitrary: field }, { weight: 1, arbitrary: leaf }), { maxLength: 8 });
  const document = fc
    .tuple(
      fc.constantFrom('', '<?xml version="1.0" encoding="UTF-8"?>\n', '\n'),
      fc.constantFrom('xml', 'xml', 'xml', 'root'),
      body,
      fc.constantFrom('', '\n', ' trailing', '<xml></xml>', '</b>'),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([head, root, kids, tail, cut]) => {
      const whole = `${head}<${root}>${kids.join('')}</${root}>${tail}`;
      return cut === undefined ? whole : whole.slice(0, cut % (whole.length + 1));
    });

  it('accepts and refuses the same documents, with the same message', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(document, (xml) => {
        const before = outcome(() => objectModeParseXml(xml));
        const now = outcome(() => parseXml(xml));
        seen.add(
          'fields' in now
            ? Object.keys(now.fields).length
              ? 'fields'
              : 'no fields'
            : now.refused.replace(/<[^>]*>/g, '<>').replace(/[;:(].*/, ''),
        );
        // A repeated root: the object mode read it as fields named 0, 1... (accepted, or refused as nested).
        if ('refused' in now && /^XML root must be a single <xml> element, found <xml>, <xml>/.test(now.refused)) return;
        expect(now).toEqual(before);
      }),
      // A root holding only text comes up in about one run of 3,000 documents in twenty: tried every time.
      { numRuns: 3000, examples: [['<xml>only text</xml>']] },
    );
    // Every way through the walk was taken.
    expect([...seen].sort()).toEqual([
      'XML body is empty',
      'XML field <> appears more than once',
      'XML field <> is nested',
      'XML is malformed',
      'XML root <> holds text beside its fields',
      'XML root <> must hold fields, not text',
      'XML root must be a single <> element, found <>',
      'XML root must be a single <> element, found <>, <>',
      'fields',
      'no fields',
    ]);
  });

  it('refuses a repeated root, which the object mode read as fields named 0 and 1', () => {
    expect(objectModeParseXml('<xml></xml><xml></xml>')).toEqual({ 0: '', 1: '' });
    expect(() => objectModeParseXml('<xml><a>1</a></xml>\n<xml></xml>')).toThrow('XML field <0> is nested');
    expect(refusal('<xml></xml><xml></xml>')).toBe('XML root must be a single <xml> element, found <xml>, <xml>');
    expect(refusal('<xml><a>1</a></xml><xml><a>2</a></xml>')).toMatch(/single <xml> element/);
  });

  it('reads bytes and strings alike, and measures a string only when it may be over the limit', () => {
    const xml = '<xml><attach><![CDATA[支付测试]]></attach></xml>';
    expect(parseXml(new TextEncoder().encode(xml))).toEqual(parseXml(xml));
    const limit = Buffer.byteLength(xml);
    expect(parseXml(xml, { maxBytes: limit })).toEqual({ attach: '支付测试' });
    expect(() => parseXml(xml, { maxBytes: limit - 1 })).toThrow(`XML body of ${limit} bytes is over the ${limit - 1}-byte limit`);
  });
});

describe('parseXml remembers field lists (property)', () => {
  // A few kinds of document, each a list of names (now and then one twice), so that documents of
  // the same kind follow each other or another kind; their values now and then nested, and text
  // now and then beside their fields.
  const name = fc.constantFrom('appid', 'mch_id', 'sign', 'total_fee', 'coupon_fee_0', 'a', 'B', 'constructor', 'toString');
  const kinds = fc.array(fc.array(name, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 });
  const value = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('', '1', 'SUCCESS', '支付', ' x ', '<![CDATA[a&b]]>', '&amp;', '1<!-- c -->2') },
    { weight: 1, arbitrary: fc.constant('<b>1</b>') },
  );
  const after = fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('\n', 'text') });
  const document = fc.tuple(fc.nat(), fc.array(fc.tuple(value, after), { minLength: 6, maxLength: 6 }));

  it('reads every document as the object mode does, in document order, whatever it read before and whatever was done to what it returned', () => {
    fc.assert(
      fc.property(kinds, fc.array(document, { minLength: 1, maxLength: 20 }), (lists, documents) => {
        for (const [kind, pieces] of documents) {
          const names = lists[kind % lists.length]!;
          const xml = `<xml>${names.map((n, i) => `<${n}>${pieces[i]![0]}</${n}>${pieces[i]![1]}`).join('')}</xml>`;
          const before = outcome(() => objectModeParseXml(xml));
          const now = outcome(() => parseXml(xml));
          expect(now).toEqual(before);
          if ('fields' in now && 'fields' in before) {
            // The parser renames what could reach a prototype (toString comes back as __toString), as it always has.
            expect(Object.keys(now.fields)).toEqual(Object.keys(before.fields));
            expect(Object.getPrototypeOf(now.fields)).toBe(Object.prototype);
            // A caller changing what it got changes nothing for the next document.
            for (const key of Object.keys(now.fields)) now.fields[key] = 'changed';
            now.fields.added = 'added';
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
