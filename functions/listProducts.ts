import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { catalogStore } from '../lib/runtime';

/** GET /merchant/products: the whole catalog, active or not (merchant's server only). */
export const handler = merchantRoute(async () => json(200, { products: await catalogStore().list() }));
