import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../handler';
import { errorResponse } from './errors';
import type { ApiEvent } from './event';
import { authenticateMerchant, loadMerchantTokens } from './merchant-auth';

type Answer = APIGatewayProxyStructuredResultV2;

/** A JSON API route: a failure its work lets through is answered by `errorResponse` (4xx/5xx, JSON). */
export function apiRoute(work: (event: ApiEvent) => Promise<Answer>) {
  return lambdaHandler(work, errorResponse);
}

/**
 * A route of the merchant's server (`/merchant/...`): the bearer token is checked before the work
 * runs, so a request without a valid one is answered 401 and changes nothing.
 */
export function merchantRoute(work: (event: ApiEvent) => Promise<Answer>) {
  return apiRoute(async (event) => {
    authenticateMerchant(event, await loadMerchantTokens());
    return work(event);
  });
}
