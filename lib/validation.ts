/**
 * Checking what callers send, with valibot: the text rules of everything that reaches WeChat Pay,
 * and one way to turn the first problem found into an error that names the field.
 */
import * as v from 'valibot';

// WeChat Pay carries only the 1-to-3-byte part of UTF-8: no emoji or other astral characters.
const ASTRAL_OR_LONE_SURROGATE = /[\uD800-\uDFFF]/;
// XML cannot carry C0 controls or the non-characters U+FFFE and U+FFFF (and CR, tab and newline
// would arrive changed and break the signature).
// eslint-disable-next-line no-control-regex
const UNCARRIABLE = /[\u0000-\u001F\u007F\uFFFE\uFFFF]/;

/**
 * Text that reaches WeChat Pay: refused here, before anything is stored, for whatever the XML
 * builder or WeChat Pay would refuse later.
 */
export function wechatText(maxChars: number) {
  return v.pipe(
    v.string(),
    v.check((s) => !ASTRAL_OR_LONE_SURROGATE.test(s), 'must not contain emoji or other characters WeChat Pay cannot carry (4-byte UTF-8)'),
    v.check((s) => !UNCARRIABLE.test(s), 'must not contain control characters or U+FFFE/U+FFFF'),
    v.check((s) => s.trim() === s, 'must not start or end with white space (it breaks signatures)'),
    v.maxLength(maxChars, `must be at most ${maxChars} characters`),
  );
}

export function requiredWechatText(maxChars: number) {
  return v.pipe(wechatText(maxChars), v.minLength(1, 'must not be empty'));
}

/** The caller's request is wrong; `field` names the part to fix (dotted path, e.g. `items.0.sku`). */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

function describePath(issue: v.BaseIssue<unknown>): string | undefined {
  const path = issue.path?.map((item) => String(item.key)).join('.');
  return path || undefined;
}

/**
 * Validates a JSON body against a schema of strict objects. Throws the error `fail` makes, with a
 * message naming the first wrong field: unknown, missing, or what is wrong with its value.
 */
export function parseBody<TSchema extends v.GenericSchema>(
  schema: TSchema,
  body: unknown,
  fail: (message: string, field?: string) => Error = (message, field) => new InvalidRequestError(message, field),
): v.InferOutput<TSchema> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw fail('the body must be a JSON object');
  const result = v.safeParse(schema, body);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const field = describePath(issue);
  const missing = issue.input === undefined && issue.kind === 'schema';
  // A strict object names a key it does not know with an issue that expects nothing there.
  if (!missing && issue.type === 'strict_object' && issue.expected === 'never' && field) throw fail(`unknown field "${field}"`, field);
  const message = missing ? 'is required' : issue.message;
  throw fail(field ? `${field} ${message}` : message, field);
}
