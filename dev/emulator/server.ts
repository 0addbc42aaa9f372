import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerApiCall, refuseWithoutCertificate } from './api';
import type { ApiContext, EmulatorLog } from './api';
import { answerControlCall } from './control';
import { answerDownloadBill, DOWNLOADBILL_PATH } from './bill';
import { listen, readBody } from './http-server';
import { answerScanPage } from './scan-page';
import { DEFAULT_NOTIFY_TIMEOUT_MS, Notifier } from './notifier';
import { endRefund, REFUND_SETTLE_MS } from './refunds';
import { emptyState, ENDPOINT_PATHS } from './state';
import type { EmulatorState, Order, Refund } from './state';
import { PlatformEmulator, type EmulatorApp } from './platform';
import { localApps } from './test-apps';

export type { EmulatorLog } from './api';

export interface EmulatorOptions {
  appId: string;
  mchId: string;
  /** The API v2 key; used to check and make signatures, never logged. */
  apiKey: string;
  /** 0 picks any free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Multiplies the emulator's own durations: the callback retry schedule and the minimum age
   * before closeorder. 0.001 turns 15 s into 15 ms. Default 1.
   */
  timeScale?: number;
  /** Real-time limit for a merchant's answer to one callback. Default 5000 ms. */
  notifyTimeoutMs?: number;
  /** Receives one structured entry per event. Default: a JSON line on standard output. */
  log?: EmulatorLog;
  /**
   * The merchant's apps as WeChat's platform API knows them (login, access_token, jsapi_ticket).
   * Default: the merchant's app (an official account) with the local secret, and a local mini-program.
   */
  apps?: EmulatorApp[];
  /**
   * Serves `/secapi/` (the refund) over mutual TLS, as WeChat Pay does: with this server certificate,
   * to callers presenting a client certificate signed by `caPem` for this merchant id (its CN).
   * Without it, `/secapi/` is not served at all. The local stack makes them with certs.ts.
   */
  tls?: { caPem: string; serverCertPem: string; serverKeyPem: string; /** 0 (default): any free port. */ port?: number };
}

export interface RunningEmulator {
  url: string;
  port: number;
  /** `https://host:port` of the mutual-TLS port serving `/secapi/`, when `tls` was given. */
  secapiUrl?: string;
  /**
   * What it remembers (the same object for its whole life: a reset empties it), for code in the same
   * process that needs more than the control API gives: seeding a day of thousands of payments.
   */
  state: EmulatorState;
  /** Stops the server and every pending callback; calling it again returns the same promise. */
  close(): Promise<void>;
}

/** Bodies larger than this are cut off: WeChat Pay documents are a few kilobytes. */
const MAX_BODY_BYTES = 1024 * 1024;

const logJsonLine: EmulatorLog = (entry) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), source: 'wechatpay-emulator', ...entry }));
};

/** Starts the WeChat Pay v2 emulator for one merchant. */
export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const { appId, mchId, apiKey } = options;
  if (!appId || !mchId || !apiKey) throw new Error('startEmulator needs appId, mchId and apiKey');
  const timeScale = options.timeScale ?? 1;
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    throw new Error(`timeScale must be a positive number, got ${timeScale}`);
  }
  const log = options.log ?? logJsonLine;
  const merchant = { appId, mchId, apiKey };
  const state = emptyState();
  const notifier = new Notifier({
    merchant,
    state,
    timeScale,
    timeoutMs: options.notifyTimeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS,
    log,
  });
  // An accepted refund stays PROCESSING for a while, then ends as planned and is called back.
  const refundAccepted = (refund: Refund, order: Order) => {
    notifier.later(REFUND_SETTLE_MS * timeScale, () => {
      endRefund(refund, refund.outcome, new Date());
      log({ event: 'refund_ended', out_trade_no: refund.outTradeNo, out_refund_no: refund.outRefundNo, refund_status: refund.status });
      notifier.startRefund(refund, order);
    });
  };
  const apps = options.apps ?? localApps(appId);
  // WeChat Pay takes calls under the merchant's app and under every other app the platform knows.
  const boundAppIds = [appId, ...apps.map((app) => app.appId).filter((id) => id !== appId)];
  const api: ApiContext = { merchant, state, timeScale, log, refundAccepted, boundAppIds };
  const platform = new PlatformEmulator({ apps, timeScale, log });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://emulator').pathname;
    const method = request.method ?? 'GET';
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(response, 413, { error: { code: 'BODY_TOO_LARGE', message: `over ${MAX_BODY_BYTES} bytes` } });
      return;
    }
    // The trade bill answers bill text (or gzip), not XML: dev/emulator/bill.ts answers it whole.
    if (path === DOWNLOADBILL_PATH) {
      const bill = answerDownloadBill(api, method, body);
      if (state.faults.delayMs > 0) await sleep(state.faults.delayMs);
      response.writeHead(bill.status, bill.headers).end(bill.body);
      return;
    }
    const endpoint = ENDPOINT_PATHS[path as keyof typeof ENDPOINT_PATHS];
    if (path.startsWith('/secapi/')) {
      // Only the mutual-TLS port serves /secapi/: here the certificate is missing by construction.
      const xml = refuseWithoutCertificate(api, endpoint ?? 'refund', body);
      response.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(xml);
      return;
    }
    if (endpoint) {
      // The call takes effect at once and only its answer is late, as when WeChat Pay is slow:
      // a client that times out has still created (or closed) the order.
      const xml = answerApiCall(api, endpoint, method, body);
      if (state.faults.delayMs > 0) await sleep(state.faults.delayMs);
      response.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(xml);
      return;
    }
    // WeChat's platform API (/sns/..., /cgi-bin/...) and its control calls: dev/emulator/platform.ts.
    const platformAnswer = platform.answer(method, request.url ?? '/', body);
    if (platformAnswer) {
      if (platformAnswer.api && state.faults.delayMs > 0) await sleep(state.faults.delayMs);
      sendJson(response, platformAnswer.status, platformAnswer.body);
      return;
    }
    const page = answerScanPage({ state, merchant }, method, request.url ?? '/');
    if (page) {
      response.writeHead(page.status, page.headers).end(method === 'HEAD' ? undefined : page.body);
      return;
    }
    const control = answerControlCall({ state, notifier, platform, refundAccepted }, method, path, body.toString('utf8'));
    if (control) sendJson(response, control.status, control.body);
    else sendJson(response, 404, { error: { code: 'NOT_FOUND', message: `no route ${method} ${path}` } });
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log({ event: 'internal_error', message: error instanceof Error ? error.message : String(error) });
      if (!response.headersSent) sendJson(response, 500, { error: { code: 'INTERNAL', message: 'emulator error' } });
      else response.destroy();
    });
  });
  const listening = await listen(server, options.port, options.host, () => notifier.stop());
  if (!options.tls) return { url: listening.origin, port: listening.port, state, close: listening.close };

  /** The mutual-TLS port: `/secapi/` only, for a client certificate of this merchant signed by the CA. */
  async function handleSecapi(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'https://emulator').pathname;
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(response, 413, { error: { code: 'BODY_TOO_LARGE', message: `over ${MAX_BODY_BYTES} bytes` } });
      return;
    }
    const endpoint = ENDPOINT_PATHS[path as keyof typeof ENDPOINT_PATHS];
    if (!endpoint || !path.startsWith('/secapi/')) {
      sendJson(response, 404, { error: { code: 'NOT_FOUND', message: `the TLS port serves /secapi/ only, not ${path}` } });
      return;
    }
    // The handshake already required a certificate signed by the CA; WeChat Pay also requires it to be this merchant's.
    const peer = (request.socket as TLSSocket).getPeerCertificate();
    const xml =
      peer?.subject?.CN === mchId
        ? answerApiCall(api, endpoint, request.method ?? 'GET', body)
        : refuseWithoutCertificate(api, endpoint, body);
    if (state.faults.delayMs > 0) await sleep(state.faults.delayMs);
    response.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(xml);
  }
  const tlsServer = createTlsServer(
    { ca: options.tls.caPem, cert: options.tls.serverCertPem, key: options.tls.serverKeyPem, requestCert: true, rejectUnauthorized: true },
    (request, response) => {
      handleSecapi(request, response).catch((error: unknown) => {
        log({ event: 'internal_error', message: error instanceof Error ? error.message : String(error) });
        if (!response.headersSent) sendJson(response, 500, { error: { code: 'INTERNAL', message: 'emulator error' } });
        else response.destroy();
      });
    },
  );
  let secure;
  try {
    secure = await listen(tlsServer, options.tls.port ?? 0, options.host);
  } catch (error) {
    await listening.close();
    throw error;
  }
  let closed: Promise<void> | undefined;
  return {
    url: listening.origin,
    port: listening.port,
    secapiUrl: secure.origin.replace(/^http:/, 'https:'),
    state,
    close() {
      closed ??= Promise.all([listening.close(), secure.close()]).then(() => undefined);
      return closed;
    },
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}
