/**
 * The catalog: what the merchant sells and at what price. Frontends order by sku; the backend
 * takes every amount from here, so no browser can set a price.
 */
import * as v from 'valibot';
import { InvalidRequestError, parseBody, requiredWechatText } from '../validation';

export interface Product {
  sku: string;
  /** Shown to the payer in WeChat Pay (the order's description is built from names). */
  name: string;
  /** Integer fen (1/100 yuan), at least 1. */
  priceFen: number;
  /** Inactive products stay listed for the merchant but cannot be ordered. */
  active: boolean;
  updatedAt: string;
}

export const SKU_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** The most one order may come to, by catalog or merchant: 1,000,000 yuan. */
export const MAX_ORDER_FEN = 100_000_000;

const ProductBody = v.strictObject(
  {
    name: requiredWechatText(40),
    priceFen: v.pipe(
      v.number('must be a number of fen'),
      v.integer('must be a whole number of fen (1 yuan = 100 fen)'),
      v.minValue(1, 'must be at least 1 fen'),
      v.maxValue(MAX_ORDER_FEN, `must be at most ${MAX_ORDER_FEN} fen`),
    ),
    active: v.optional(v.boolean('must be true or false'), true),
  },
  'is not a field of a product (name, priceFen, active)',
);

export function checkSku(sku: string | undefined): string {
  if (sku === undefined || !SKU_PATTERN.test(sku)) {
    throw new InvalidRequestError('sku must be 1 to 64 characters of [A-Za-z0-9_.-]', 'sku');
  }
  return sku;
}

/** Validates `PUT /merchant/products/{sku}`; throws InvalidRequestError naming the field. */
export function parseProduct(sku: string | undefined, body: unknown, now: Date): Product {
  const checkedSku = checkSku(sku);
  const input = parseBody(ProductBody, body);
  return { sku: checkedSku, name: input.name, priceFen: input.priceFen, active: input.active, updatedAt: now.toISOString() };
}
