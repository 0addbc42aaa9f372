import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { lambdaHandler } from '../handler';
import { logger } from '../log';
import { notificationReply } from '../wechatpay/notification';
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

export function xml(body: string): Answer {
  return { statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body };
}

function callbackFailed(error: unknown): Answer {
  // Whatever failed, the payment is not recorded yet: FAIL makes WeChat Pay call again.
  logger.error('payment callback failed', { error });
  return xml(notificationReply('FAIL', 'temporarily unable to process the callback; please retry'));
}

/**
 * A WeChat Pay callback route: its work answers the XML reply; any failure it lets through is
 * answered FAIL in WeChat Pay's XML (never a 5xx), so that WeChat Pay calls again.
 */
export function notifyRoute(work: (event: ApiEvent) => Promise<string>) {
  return lambdaHandler(async (event: ApiEvent) => xml(await work(event)), callbackFailed);
}
