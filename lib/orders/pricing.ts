import { MAX_ORDER_FEN, type Product } from '../catalog/product';
import { InvalidOrderRequestError } from './errors';
import type { OrderLine } from './model';

/** WeChat Pay's `body`: at most 128 characters. */
const DESCRIPTION_MAX_CHARS = 128;

export interface PricedItems {
  lines: OrderLine[];
  totalFee: number;
  description: string;
}

/** "Latte ×2, Croissant", cut to WeChat Pay's 128 characters. */
function describe(lines: readonly OrderLine[]): string {
  const text = lines.map((line) => (line.quantity > 1 ? `${line.name} ×${line.quantity}` : line.name)).join(', ');
  return text.length <= DESCRIPTION_MAX_CHARS ? text : `${text.slice(0, DESCRIPTION_MAX_CHARS - 1).trimEnd()}…`;
}

/**
 * Prices an order's items from the catalog: the amount and the description come from the products,
 * never from the caller, and each line keeps the unit price it was sold at.
 */
export function priceItems(items: ReadonlyArray<{ sku: string; quantity: number }>, catalog: ReadonlyMap<string, Product>): PricedItems {
  const lines = items.map(({ sku, quantity }, i): OrderLine => {
    const product = catalog.get(sku);
    if (!product) throw new InvalidOrderRequestError(`items.${i}.sku "${sku}" is not in the catalog`, `items.${i}.sku`);
    if (!product.active) throw new InvalidOrderRequestError(`items.${i}.sku "${sku}" is not for sale (inactive)`, `items.${i}.sku`);
    return { sku, name: product.name, quantity, unitPriceFen: product.priceFen };
  });
  const totalFee = lines.reduce((sum, line) => sum + line.unitPriceFen * line.quantity, 0);
  if (totalFee > MAX_ORDER_FEN) {
    throw new InvalidOrderRequestError(`items come to ${totalFee} fen; an order may be at most ${MAX_ORDER_FEN} fen`, 'items');
  }
  return { lines, totalFee, description: describe(lines) };
}
