import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { parseXml } from '../../lib/wechatpay/xml';

// lib/wechatpay/xml.ts reads WeChat Pay documents with its own flat scanner (smaller bundles, a
// faster notify path). It must read every flat document as a general XML parser does.
const reference = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: true, htmlEntities: false });

const text = fc.array(
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => s.replace(/[<&\r]/g, '')),
    fc.constantFrom('&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#20013;', '&#x4E2D;', ' ', '\n', '支付'),
  ),
  { maxLength: 6 },
).map((parts) => parts.join(''));
const cdata = fc.string({ maxLength: 20 }).filter((s) => !s.includes(']]>') && !s.includes('\r'));
const value = fc.oneof(
  text,
  cdata.map((s) => `<![CDATA[${s}]]>`),
  fc.tuple(text, cdata).map(([t, c]) => `${t}<![CDATA[${c}]]>`),
);
const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,15}$/);

describe('the flat XML scanner against fast-xml-parser', () => {
  it('reads the same fields from any flat document', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, value), { selector: ([n]) => n, maxLength: 10 }), fc.constantFrom('', '\n  ', ' '), (pairs, gap) => {
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<xml>${pairs.map(([n, v]) => `${gap}<${n}>${v}</${n}>`).join('')}${gap}</xml>`;
        const expected = (reference.parse(xml) as { xml: Record<string, string> | string }).xml;
        const fields = expected === '' || typeof expected === 'string' ? {} : Object.fromEntries(Object.entries(expected).filter(([k]) => k !== '#text'));
        expect(parseXml(xml)).toEqual(fields);
      }),
      { numRuns: 500 },
    );
  });
});
