import * as v from 'valibot';
import { TRADE_TYPES, type TradeType } from './model';
import { InvalidOrderRequestError } from './errors';

// WeChat Pay carries only the 1-to-3-byte part of UTF-8: no emoji or other astral characters.
const ASTRAL_OR_LONE_SURROGATE = /[\uD800-\uDFFF]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F]/;

function wechatText(maxChars: number) {
  return v.pipe(
    v.string(),
    v.check((s) => !ASTRAL_OR_LONE_SURROGATE.test(s), 'must not contain emoji or other characters WeChat Pay cannot carry (4-byte UTF-8)'),
    v.check((s) => !CONTROL.test(s), 'must not contain control characters'),
    v.check((s) => s.trim() === s, 'must not start or end with white space (it breaks signatures)'),
    v.maxLength(maxChars, `must be at most ${maxChars} characters`),
  );
}

const sceneInfo = v.object({
  h5_info: v.looseObject({
    type: v.picklist(['Wap', 'IOS', 'Android'], 'must be Wap, IOS or Android'),
  }),
});

const CreateOrderBody = v.strictObject(
  {
    tradeType: v.picklist(TRADE_TYPES, `must be one of ${TRADE_TYPES.join(', ')}`),
    totalFee: v.pipe(
      v.number('must be a number of fen'),
      v.integer('must be a whole number of fen (1 yuan = 100 fen)'),
      v.minValue(1, 'must be at least 1 fen'),
      v.maxValue(100_000_000, 'must be at most 100000000 fen'),
    ),
    description: v.pipe(wechatText(128), v.minLength(1, 'must not be empty')),
    openid: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WeChat openid ([A-Za-z0-9_-], up to 128)'))),
    productId: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1 to 32 characters of [A-Za-z0-9_-]'))),
    attach: v.optional(
      v.pipe(
        wechatText(127),
        v.check((s) => Buffer.byteLength(s, 'utf8') <= 127, 'must be at most 127 bytes of UTF-8'),
      ),
    ),
    sceneInfo: v.optional(sceneInfo),
    idempotencyKey: v.optional(
      v.pipe(v.string(), v.regex(/^[\x21-\x7E]{1,64}$/, 'must be 1 to 64 visible ASCII characters')),
    ),
  },
  'is not a field of an order request',
);

export type CreateOrderBody = v.InferOutput<typeof CreateOrderBody>;

export interface CreateOrderRequest {
  tradeType: TradeType;
  totalFee: number;
  description: string;
  openid?: string;
  productId?: string;
  attach?: string;
  sceneInfo?: CreateOrderBody['sceneInfo'];
  idempotencyKey?: string;
  /** From the request context, never from the body: WeChat Pay checks it for H5. */
  clientIp: string;
}

function describePath(issue: v.BaseIssue<unknown>): string | undefined {
  const path = issue.path?.map((item) => String(item.key)).join('.');
  return path || undefined;
}

/**
 * Validates a create-order body. `verifiedOpenid` (from an authorizer claim) wins over the body's.
 * Throws InvalidOrderRequestError naming the first wrong field.
 */
export function parseCreateOrderRequest(
  body: unknown,
  context: { clientIp: string; verifiedOpenid?: string },
): CreateOrderRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidOrderRequestError('the body must be a JSON object');
  }
  const result = v.safeParse(CreateOrderBody, body);
  if (!result.success) {
    const issue = result.issues[0];
    const field = describePath(issue);
    if (issue.kind === 'schema' && issue.type === 'strict_object' && field) {
      throw new InvalidOrderRequestError(`unknown field "${field}"`, field);
    }
    const message = issue.input === undefined && issue.kind === 'schema' ? 'is required' : issue.message;
    throw new InvalidOrderRequestError(field ? `${field} ${message}` : message, field);
  }
  const input = result.output;
  const openid = context.verifiedOpenid ?? input.openid;
  if (input.tradeType === 'JSAPI' && !openid) {
    throw new InvalidOrderRequestError('openid is required for JSAPI (the payer\'s openid under this app id)', 'openid');
  }
  if (input.tradeType !== 'JSAPI' && openid && !context.verifiedOpenid) {
    throw new InvalidOrderRequestError('openid is only for JSAPI orders', 'openid');
  }
  if (input.sceneInfo && input.tradeType !== 'MWEB') {
    throw new InvalidOrderRequestError('sceneInfo is only for MWEB orders', 'sceneInfo');
  }
  if (input.productId && input.tradeType !== 'NATIVE') {
    throw new InvalidOrderRequestError('productId is only for NATIVE orders', 'productId');
  }
  return {
    ...input,
    ...(input.tradeType === 'JSAPI' ? { openid } : { openid: undefined }),
    clientIp: context.clientIp,
  };
}
