import type { Product } from '../../lib/catalog/product';

/**
 * The catalog the local stack starts with: what the demo page sells and what the sample events
 * order. Prices in fen.
 */
export const DEMO_PRODUCTS: ReadonlyArray<Pick<Product, 'sku' | 'name' | 'priceFen'>> = [
  { sku: 'latte-large', name: 'Latte (large)', priceFen: 2800 },
  { sku: 'croissant', name: 'Croissant', priceFen: 1200 },
  { sku: 'matcha-cake', name: '抹茶蛋糕', priceFen: 3200 },
];
