import * as v from 'valibot';
import { MAX_ORDER_FEN, SKU_PATTERN } from '../catalog/product';
import { TRADE_TYPES, type OrderLine } from './model';
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

const TOTAL_FEE = v.pipe(
  v.number('must be a number of fen'),
  v.integer('must be a whole number of fen (1 yuan = 100 fen)'),
  v.minValue(1, 'must be at least 1 fen'),
  v.maxValue(MAX_ORDER_FEN, `must be at most ${MAX_ORDER_FEN} fen`),
);

/** What frontends and the merchant's server send alike. */
const COMMON_FIELDS = {
  tradeType: v.picklist(TRADE_TYPES, `must be one of ${TRADE_TYPES.join(', ')}`),
  /** One of the merchant's apps (WECHAT_APPS); the default app when absent. */
  appId: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be an app id (1 to 32 of [A-Za-z0-9_-])'))),
  openid: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WeChat openid ([A-Za-z0-9_-], up to 128)'))),
  productId: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1 to 32 characters of [A-Za-z0-9_-]'))),
  attach: v.optional(
    v.pipe(
      wechatText(127),
      v.check((s) => Buffer.byteLength(s, 'utf8') <= 127, 'must be at most 127 bytes of UTF-8'),
      v.check(
        (s) => !FIELD_BOUNDARY.test(s),
        'must not contain "&" or "=" (WeChat Pay echoes it back in signed callbacks, where they would forge a field boundary)',
      ),
    ),
  ),
  sceneInfo: v.optional(sceneInfo),
  idempotencyKey: v.optional(v.pipe(v.string(), v.regex(/^[\x21-\x7E]{1,64}$/, 'must be 1 to 64 visible ASCII characters'))),
};

export const MAX_ITEMS = 20;
export const MAX_QUANTITY = 999;

const Item = v.strictObject(
  {
    sku: v.pipe(v.string('must be a sku'), v.regex(SKU_PATTERN, 'must be 1 to 64 characters of [A-Za-z0-9_.-]')),
    quantity: v.pipe(
      v.number('must be a number'),
      v.integer('must be a whole number'),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(MAX_QUANTITY, `must be at most ${MAX_QUANTITY}`),
    ),
  },
  'is not a field of an item (sku, quantity); prices come from the catalog',
);

const FrontendOrderBody = v.strictObject(
  {
    ...COMMON_FIELDS,
    items: v.pipe(
      v.array(Item, 'must be a list of {sku, quantity}'),
      v.minLength(1, 'must list at least one item'),
      v.maxLength(MAX_ITEMS, `must list at most ${MAX_ITEMS} items`),
    ),
  },
  'is not a field of an order request',
);

const MerchantOrderBody = v.strictObject(
  { ...COMMON_FIELDS, totalFee: TOTAL_FEE, description: requiredWechatText(128) },
  'is not a field of a merchant order request',
);

type CommonFields = v.InferOutput<ReturnType<typeof v.object<typeof COMMON_FIELDS>>>;

interface RequestContext {
  /** Whose idempotency keys these are (see `idempotencyScope`). */
  idempotencyScope: string;
  clientIp: string;
}

/** A frontend's order: items by sku, to be priced from the catalog. */
export type FrontendOrderRequest = CommonFields & RequestContext & { items: Array<{ sku: string; quantity: number }> };

/** An order ready to be made: its amount and description settled. */
export type CreateOrderRequest = Omit<CommonFields, 'sceneInfo'> &
  RequestContext & {
    sceneInfo?: CommonFields['sceneInfo'];
    totalFee: number;
    description: string;
    /** The catalog lines it was priced from (frontend orders only). */
    lines?: OrderLine[];
  };

function invalid(message: string, field?: string): InvalidOrderRequestError {
  return new InvalidOrderRequestError(message, field);
}

/** A payer proven by a session token: the app they logged in to and their openid there. */
export interface VerifiedPayer {
  appId: string;
  openid: string;
}

/** The checks that span fields, and the app and openid of a verified payer, which win over the body's. */
function checkCommon<T extends CommonFields>(input: T, payer: VerifiedPayer | undefined): T {
  if (payer && input.appId !== undefined && input.appId !== payer.appId) {
    throw invalid(`appId ${input.appId} is not the app of the session token (${payer.appId})`, 'appId');
  }
  const verifiedOpenid = payer?.openid;
  const openid = verifiedOpenid ?? input.openid;
  if (input.tradeType === 'JSAPI' && !openid) {
    throw invalid("openid is required for JSAPI (the payer's openid under this app id)", 'openid');
  }
  if (input.tradeType !== 'JSAPI' && openid && !verifiedOpenid) throw invalid('openid is only for JSAPI orders', 'openid');
  if (input.sceneInfo && input.tradeType !== 'MWEB') throw invalid('sceneInfo is only for MWEB orders', 'sceneInfo');
  if (input.productId && input.tradeType !== 'NATIVE') throw invalid('productId is only for NATIVE orders', 'productId');
  return { ...input, appId: payer?.appId ?? input.appId, openid: input.tradeType === 'JSAPI' ? openid : undefined };
}

/**
 * Validates a frontend's `POST /orders` body: items by sku, never an amount. A verified payer's app
 * and openid (from a session token) win over the body's, and the payer scopes the idempotency key.
 * Throws InvalidOrderRequestError naming the first wrong field.
 */
export function parseFrontendOrderRequest(body: unknown, context: { clientIp: string; payer?: VerifiedPayer }): FrontendOrderRequest {
  if (typeof body === 'object' && body !== null) {
    for (const field of ['totalFee', 'description']) {
      if (Object.hasOwn(body, field)) {
        throw invalid(
          `${field} is not accepted from a frontend: the amount and description come from the catalog (send items: [{sku, quantity}]); orders of any amount come from the merchant's server (POST /merchant/orders)`,
          field,
        );
      }
    }
  }
  const { payer } = context;
  const input = checkCommon(parseBody(FrontendOrderBody, body, invalid), payer);
  const seen = new Set<string>();
  input.items.forEach(({ sku }, i) => {
    if (seen.has(sku)) throw invalid(`items.${i}.sku "${sku}" is listed twice; send one line with its quantity`, `items.${i}.sku`);
    seen.add(sku);
  });
  return {
    ...input,
    idempotencyScope: payer ? `payer:${encodeURIComponent(payer.appId)}:${encodeURIComponent(payer.openid)}` : 'anonymous',
    clientIp: context.clientIp,
  };
}

/** Validates `POST /merchant/orders`: any amount, the merchant's own description. */
export function parseMerchantOrderRequest(body: unknown, context: { clientIp: string }): CreateOrderRequest {
  const input = checkCommon(parseBody(MerchantOrderBody, body, invalid), undefined);
  return { ...input, idempotencyScope: 'merchant', clientIp: context.clientIp };
}
