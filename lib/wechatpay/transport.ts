import type { Agent } from 'node:https';
import type { ClientCertificate } from './client-certificate';
import type { ClientSettings } from './client-options';
import {
  WechatPayBusinessError,
  WechatPayCommunicationError,
  WechatPayConfigError,
  WechatPayError,
  WechatPayNetworkError,
  WechatPayResponseError,
  XmlFormatError,
} from './errors';
import { nonceStr } from './ids';
import { signFields, verifySignature, type Fields, type SignableFields, type SignType } from './sign';
import { buildXml, parseXml } from './xml';

/** An answer as it came back with a 2xx status, before anything in it is read or trusted. */
export interface RawAnswer {
  status: number;
  contentType: string | null;
  bytes: Uint8Array;
}

/** What reading an answer may need besides the answer itself. */
export interface AnswerContext<Request> {
  /** The endpoint's name, for messages: `orderquery`. */
  endpoint: string;
  request: Request;
  /** The sign type the request was signed with: WeChat Pay signs its answer with the same. */
  signType: SignType;
  settings: ClientSettings;
}

/** Turns an endpoint's answer into its result, or throws a WechatPayError saying why it cannot. */
export type AnswerReader<Request, Result> = (answer: RawAnswer, context: AnswerContext<Request>) => Result;

/**
 * A WeChat Pay endpoint, declared: adding an endpoint is writing one of these, and the transport
 * does the rest (signing, posting, timeouts, retries with the same bytes, HTTP errors). Refund
 * (`/secapi/pay/refund`) sets `needsClientCert`: it is posted over mutual TLS to the `/secapi/`
 * base; downloadbill, which answers text (GZIP on request) on success and XML only on failure,
 * brings its own `answer` reader instead of `signedXml`.
 */
export interface Endpoint<Request, Result> {
  /** WeChat Pay's name for it, in messages and errors: `unifiedorder`. */
  name: string;
  /** The client method that calls it, in messages about a wrong request: `unifiedOrder`. */
  method: string;
  /** Under the base URL: `/pay/unifiedorder`. */
  path: string;
  /** WeChat Pay accepts the call only over mutual TLS with the merchant's API client certificate. */
  needsClientCert: boolean;
  /** The merchant's fields WeChat Pay requires (appid, mch_id, nonce_str and sign are added here). */
  required: readonly string[];
  /** The merchant's fields of the request, in WeChat Pay's names. */
  fields(request: Request): SignableFields;
  /** Refuses, with a TypeError, a request WeChat Pay would refuse, before it is sent. */
  check?(request: Request): void;
  answer: AnswerReader<Request, Result>;
}

export interface Transport {
  call<Request, Result>(endpoint: Endpoint<Request, Result>, request: Request, signType: SignType): Promise<Result>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function describeNetworkCause(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, other side closed) in cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

function requireFields(endpoint: Pick<Endpoint<never, unknown>, 'method' | 'required'>, fields: SignableFields): void {
  for (const name of endpoint.required) {
    if (typeof fields[name] !== 'string' || fields[name] === '') {
      throw new TypeError(`${endpoint.method}: ${name} is required`);
    }
  }
}

/**
 * The answer of WeChat Pay's XML endpoints, checked in WeChat Pay's three layers before `read` sees
 * it: return_code, then the signature (with the request's sign type) and our appid and mch_id, then
 * result_code.
 */
export function signedXml<Request, Result>(read: (fields: Fields, request: Request) => Result): AnswerReader<Request, Result> {
  return (answer, context) => read(verifiedFields(answer.bytes, context), context.request);
}

function verifiedFields(bytes: Uint8Array, { endpoint, signType, settings }: AnswerContext<unknown>): Fields {
  let fields: Fields;
  try {
    fields = parseXml(bytes);
  } catch (error) {
    if (!(error instanceof XmlFormatError)) throw error;
    throw new WechatPayResponseError(
      `WeChat Pay ${endpoint} answered something that is not a WeChat Pay document: ${error.message}`,
      'XML_FORMAT_ERROR',
    );
  }
  // Some gateways answer a refused call with retcode/retmsg instead of return_code/return_msg.
  const refusedWithRetcode = fields.return_code === undefined && fields.retcode !== undefined && fields.retcode !== '0';
  if (fields.return_code === 'FAIL' || refusedWithRetcode) {
    const message = fields.return_msg || fields.retmsg || '';
    const retcode = fields.retcode ? ` (retcode ${fields.retcode})` : '';
    throw new WechatPayCommunicationError(`${endpoint}: ${message.slice(0, 500)}${retcode}`);
  }
  if (fields.return_code !== 'SUCCESS') {
    throw new WechatPayResponseError(
      `WeChat Pay ${endpoint} answered without return_code SUCCESS or FAIL (got "${(fields.return_code ?? '').slice(0, 40)}")`,
    );
  }
  const check = verifySignature(fields, settings.apiKey, signType);
  if (!check.ok) {
    throw new WechatPayResponseError(`WeChat Pay ${endpoint} answer failed signature verification: ${check.message}`, 'INVALID_SIGNATURE');
  }
  if (fields.appid !== undefined && fields.appid !== settings.appId) {
    throw new WechatPayResponseError(
      `WeChat Pay ${endpoint} answer is for appid "${fields.appid.slice(0, 40)}", not ours (${settings.appId})`,
      'FOREIGN_APPID',
    );
  }
  if (fields.mch_id !== undefined && fields.mch_id !== settings.mchId) {
    throw new WechatPayResponseError(
      `WeChat Pay ${endpoint} answer is for mch_id "${fields.mch_id.slice(0, 40)}", not ours (${settings.mchId})`,
      'FOREIGN_MCH_ID',
    );
  }
  if (fields.result_code === 'FAIL') {
    throw new WechatPayBusinessError(fields.err_code || 'UNKNOWN', fields.err_code_des ?? '', endpoint);
  }
  if (fields.result_code !== 'SUCCESS') {
    throw new WechatPayResponseError(
      `WeChat Pay ${endpoint} answer has no result_code SUCCESS or FAIL (got "${(fields.result_code ?? '').slice(0, 40)}")`,
    );
  }
  return fields;
}

/**
 * One POST over mutual TLS, presenting the client certificate through `agent` (Node's fetch cannot
 * present one). A `http:` base (a test's plain server) gets a plain request: nothing is presented.
 */
async function postWithAgent(url: string, body: string, agent: Agent, signal: AbortSignal): Promise<RawAnswer> {
  const target = new URL(url);
  // Loaded with the first refund only: no other call, and no cold start, pays for node:https.
  const send = target.protocol === 'https:' ? (await import('node:https')).request : (await import('node:http')).request;
  return new Promise((resolve, reject) => {
    const request = send(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(body) },
        signal,
        ...(target.protocol === 'https:' ? { agent } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const type = response.headers['content-type'];
          resolve({ status: response.statusCode ?? 0, contentType: type ?? null, bytes: new Uint8Array(Buffer.concat(chunks)) });
        });
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

/** Posts signed requests to WeChat Pay: one attempt's timeout, retries of the same bytes, HTTP errors. */
export function createTransport(settings: ClientSettings): Transport {
  let tlsAgent: Promise<Agent> | undefined;
  /** The mutual-TLS agent, made from the certificate on the first call that needs it; a failure is not kept. */
  function clientCertAgent(endpointName: string): Promise<Agent> {
    const load = settings.clientCertificate;
    if (!load) {
      return Promise.reject(
        new WechatPayConfigError(`WeChat Pay ${endpointName} needs the merchant's API client certificate, which this client was not given`),
      );
    }
    tlsAgent ??= Promise.all([load(), import('node:https')]).then(
      ([certificate, https]: [ClientCertificate, typeof import('node:https')]) =>
        new https.Agent({
          cert: certificate.cert,
          key: certificate.key,
          ...(certificate.ca ? { ca: certificate.ca } : {}),
          keepAlive: true,
        }),
    );
    tlsAgent.catch(() => {
      tlsAgent = undefined;
    });
    return tlsAgent;
  }

  async function attempt(
    endpoint: Pick<Endpoint<never, unknown>, 'name' | 'path' | 'needsClientCert'>,
    body: string,
    agent?: Agent,
  ): Promise<RawAnswer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
    const base = endpoint.needsClientCert ? settings.secapiBaseUrl : settings.baseUrl;
    let answer: RawAnswer;
    try {
      if (agent) {
        answer = await postWithAgent(`${base}${endpoint.path}`, body, agent, controller.signal);
      } else {
        const response = await settings.fetch(`${base}${endpoint.path}`, {
          method: 'POST',
          headers: { 'content-type': 'text/xml; charset=utf-8' },
          body,
          signal: controller.signal,
        });
        answer = {
          status: response.status,
          contentType: response.headers.get('content-type'),
          bytes: new Uint8Array(await response.arrayBuffer()),
        };
      }
    } catch (error) {
      if (controller.signal.aborted) {
        throw new WechatPayNetworkError(`WeChat Pay ${endpoint.name} did not answer within ${settings.timeoutMs} ms`, {
          code: 'TIMEOUT',
          cause: error,
        });
      }
      throw new WechatPayNetworkError(`WeChat Pay ${endpoint.name} could not be reached at ${base} (${describeNetworkCause(error)})`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
    const { status } = answer;
    if (status >= 500) {
      throw new WechatPayNetworkError(`WeChat Pay ${endpoint.name} answered HTTP ${status}`, { code: `HTTP_${status}` });
    }
    if (status < 200 || status >= 300) {
      throw new WechatPayResponseError(
        `WeChat Pay ${endpoint.name} answered HTTP ${status} (is baseUrl ${settings.baseUrl} right?)`,
        `HTTP_${status}`,
      );
    }
    return answer;
  }

  return {
    async call(endpoint, request, signType) {
      const fields = endpoint.fields(request);
      requireFields(endpoint, fields);
      endpoint.check?.(request);
      // Loaded on the first call that needs it: no function pays for it at cold start.
      const agent = endpoint.needsClientCert ? await clientCertAgent(endpoint.name) : undefined;
      // Signed once: every retry sends the same bytes (same nonce_str), which WeChat Pay treats as
      // the same request, never as a second order.
      const body = buildXml(
        signFields({ ...fields, appid: settings.appId, mch_id: settings.mchId, nonce_str: nonceStr() }, settings.apiKey, signType),
      );
      const context = { endpoint: endpoint.name, request, signType, settings };
      let lastError: WechatPayError | undefined;
      for (let attemptNo = 1; attemptNo <= settings.maxAttempts; attemptNo++) {
        if (attemptNo > 1) await sleep(settings.retryDelayMs * 2 ** (attemptNo - 2));
        try {
          return endpoint.answer(await attempt(endpoint, body, agent), context);
        } catch (error) {
          if (!(error instanceof WechatPayError) || !error.retryable) throw error;
          lastError = error;
        }
      }
      // maxAttempts >= 1, so the loop ran and failed at least once.
      throw lastError as WechatPayError;
    },
  };
}
