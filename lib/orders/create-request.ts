import * as v from 'valibot';
import { TRADE_TYPES, type TradeType } from './model';
import { parseBody, requiredWechatText, wechatText } from '../validation';
import { InvalidOrderRequestError } from './errors';

// The v2 string to sign escapes nothing: a value WeChat Pay echoes back must hold no field boundary.
const FIELD_BOUNDARY = /[&=]/;

const appIdentifier = v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1 to 128 characters of [A-Za-z0-9._-]'));

/** `scene_info` for H5 (MWEB) payments: WeChat Pay's three shapes of `h5_info`, nothing else. */
const SCENE_INFO_MAX_BYTES = 256;
const sceneInfo = v.pipe(
  v.strictObject(
    {
      h5_info: v.variant(
        'type',
        [
          v.strictObject(
            {
              type: v.literal('Wap'),
              wap_url: v.pipe(requiredWechatText(200), v.regex(/^https?:\/\/[^\s]+$/, 'must be the http(s) URL of the paying site')),
              wap_name: requiredWechatText(64),
            },
            'is not a field of a Wap h5_info (type, wap_url, wap_name)',
          ),
          v.strictObject(
            { type: v.literal('IOS'), app_name: requiredWechatText(64), bundle_id: appIdentifier },
            'is not a field of an IOS h5_info (type, app_name, bundle_id)',
          ),
          v.strictObject(
            { type: v.literal('Android'), app_name: requiredWechatText(64), package_name: appIdentifier },
            'is not a field of an Android h5_info (type, app_name, package_name)',
          ),
        ],
        'must be an object whose type is Wap, IOS or Android',
      ),
    },
    'is not a field of sceneInfo (only h5_info)',
  ),
  v.check(
    (info) => Buffer.byteLength(JSON.stringify(info), 'utf8') <= SCENE_INFO_MAX_BYTES,
    `must serialise to at most ${SCENE_INFO_MAX_BYTES} bytes of JSON (WeChat Pay's scene_info limit)`,
  ),
);

const CreateOrderBody = v.strictObject(
  {
    tradeType: v.picklist(TRADE_TYPES, `must be one of ${TRADE_TYPES.join(', ')}`),
    totalFee: v.pipe(
      v.number('must be a number of fen'),
      v.integer('must be a whole number of fen (1 yuan = 100 fen)'),
      v.minValue(1, 'must be at least 1 fen'),
      v.maxValue(100_000_000, 'must be at most 100000000 fen'),
    ),
    description: requiredWechatText(128),
    openid: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WeChat openid ([A-Za-z0-9_-], up to 128)'))),
    productId: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1 to 32 characters of [A-Za-z0-9_-]'))),
    attach: v.optional(
      v.pipe(
        wechatText(127),
        v.check((s) => Buffer.byteLength(s, 'utf8') <= 127, 'must be at most 127 bytes of UTF-8'),
        v.check((s) => !FIELD_BOUNDARY.test(s), 'must not contain "&" or "=" (WeChat Pay echoes it back in signed callbacks, where they would forge a field boundary)'),
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
  /**
   * Whose idempotency keys these are: a key names an order only for the caller that sent it, so
   * another caller who learns the key cannot fetch that order. Anonymous frontends share one scope.
   */
  idempotencyScope: string;
  /** From the request context, never from the body: WeChat Pay checks it for H5. */
  clientIp: string;
}

/**
 * Validates a create-order body. `verifiedOpenid` (from an authorizer claim) wins over the body's.
 * Throws InvalidOrderRequestError naming the first wrong field.
 */
export function parseCreateOrderRequest(
  body: unknown,
  context: { clientIp: string; verifiedOpenid?: string },
): CreateOrderRequest {
  const input = parseBody(CreateOrderBody, body, (message, field) => new InvalidOrderRequestError(message, field));
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
    idempotencyScope: context.verifiedOpenid ? `payer:${encodeURIComponent(context.verifiedOpenid)}` : 'anonymous',
    clientIp: context.clientIp,
  };
}
