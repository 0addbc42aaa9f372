import { jsonBody } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { parseProduct } from '../lib/catalog/product';
import { catalogStore } from '../lib/runtime';

/** PUT /merchant/products/{sku}: create or replace a catalog product (merchant's server only). */
export const handler = merchantRoute(async (event) => {
  const product = parseProduct(event.pathParameters?.sku, jsonBody(event), new Date());
  await catalogStore().put(product);
  return json(200, product);
});
