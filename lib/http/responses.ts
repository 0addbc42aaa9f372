import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** The answers of the JSON API. */

export function json(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

/** A JSON answer no cache may keep (a session token, a signed JS-SDK config). */
export function privateJson(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  const answer = json(statusCode, body);
  return { ...answer, headers: { ...answer.headers, 'cache-control': 'no-store' } };
}
