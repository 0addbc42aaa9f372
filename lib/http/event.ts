import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { InvalidOrderRequestError } from '../orders/errors';
import { InvalidRequestError } from '../validation';

/**
 * The request as API Gateway's HTTP API (payload 2.0) hands it over, and the readers of its parts:
 * headers, the caller's IP, the body, the query string. Imports no other module of lib/http.
 */

/** API Gateway HTTP API events, with whatever authorizer the deployment put in front. */
export type ApiEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { jwt?: { claims?: Record<string, unknown> }; lambda?: Record<string, unknown> };
  };
};

/** The raw body text; API Gateway base64-encodes bodies it considers binary. */
export function rawBody(event: ApiEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/** The raw body bytes, for XML whose encoding the parser checks itself. */
export function rawBodyBytes(event: ApiEvent): Uint8Array {
  if (!event.body) return new Uint8Array();
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/**
 * A JSON request of this API is well under 2 KiB; a larger body is refused before it is parsed, so
 * nobody can make a function parse, log or store megabytes.
 */
export const MAX_JSON_BODY_BYTES = 16 * 1024;

/** The request body is over the API's size limit: answered 413 before anything is parsed. */
export class RequestTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the request body is ${size} bytes; this API accepts at most ${limit}`);
    this.name = 'RequestTooLargeError';
  }
}

export function jsonBody(event: ApiEvent): unknown {
  const text = rawBody(event);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_JSON_BODY_BYTES) throw new RequestTooLargeError(size, MAX_JSON_BODY_BYTES);
  if (text.trim() === '') throw new InvalidOrderRequestError('the request has no body; send a JSON object');
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidOrderRequestError('the body is not valid JSON');
  }
}

/** The caller's IP as API Gateway saw it: never taken from the body, which the caller controls. */
export function clientIp(event: ApiEvent): string {
  return event.requestContext.http.sourceIp;
}

/** A request header's value, whatever the case of its name (API Gateway's payload 2.0 lower-cases them). */
export function header(event: ApiEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * The query parameters of a GET, read from the raw query string: each at most once, and none but
 * `allowed`. (API Gateway's own map joins a repeated parameter with commas, and an unencoded URL in
 * a parameter shows up as stray parameters, which this names.)
 */
export function queryParameters<Name extends string>(event: ApiEvent, allowed: readonly Name[]): Partial<Record<Name, string>> {
  const params = new URLSearchParams(event.rawQueryString ?? '');
  const found: Partial<Record<Name, string>> = {};
  for (const [name, value] of params) {
    if (!(allowed as readonly string[]).includes(name)) {
      throw new InvalidRequestError(
        `unknown query parameter "${name.slice(0, 40)}" (this route takes ${allowed.join(', ')}; encode a URL parameter with encodeURIComponent)`,
        name.slice(0, 40),
      );
    }
    if (found[name as Name] !== undefined) throw new InvalidRequestError(`query parameter ${name} is given twice`, name);
    found[name as Name] = value;
  }
  return found;
}
