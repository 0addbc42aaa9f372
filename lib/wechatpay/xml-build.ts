import { XmlFormatError } from './errors';
import type { SignableFields } from './sign';

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
