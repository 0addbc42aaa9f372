import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerApiCall } from './api';
import type { ApiContext, EmulatorLog } from './api';
import { answerControlCall } from './control';
import { answerDownloadBill, DOWNLOADBILL_PATH } from './bill';
import { listen, readBody } from './http-server';
import { answerScanPage } from './scan-page';
import { DEFAULT_NOTIFY_TIMEOUT_MS, Notifier } from './notifier';
import { emptyState, ENDPOINT_PATHS } from './state';
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
}

export interface RunningEmulator {
  url: string;
  port: number;
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
  const api: ApiContext = { merchant, state, timeScale, log };
  const platform = new PlatformEmulator({ apps: options.apps ?? localApps(appId), timeScale, log });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://emulator').pathname;
    const method = request.method ?? 'GET';
    const body = await readBody(request, MAX_BODY_BYTES);
    if (body === undefined) {
      sendJson(response, 413, { error: { code: 'BODY_TOO_LARGE', message: `over ${MAX_BODY_BYTES} bytes` } });
      return;
    }
    // The trade bill answers bill text (or gzip), not XML: emulator/bill.ts answers it whole.
    if (path === DOWNLOADBILL_PATH) {
      const bill = answerDownloadBill(api, method, body);
      if (state.faults.delayMs > 0) await sleep(state.faults.delayMs);
      response.writeHead(bill.status, bill.headers).end(bill.body);
      return;
    }
    const endpoint = ENDPOINT_PATHS[path as keyof typeof ENDPOINT_PATHS];
    if (endpoint) {
      // The call takes effect at once and only its answer is late, as when WeChat Pay is slow:
      // a client that times out has still created (or closed) the order.
      const xml = answerApiCall(api, endpoint, method, body);
      if (state.faults.delayMs > 0) await sleep(state.faults.delayMs);
      response.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(xml);
      return;
    }
    // WeChat's platform API (/sns/..., /cgi-bin/...) and its control calls: emulator/platform.ts.
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
    const control = answerControlCall({ state, notifier, platform }, method, path, body.toString('utf8'));
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
  return { url: listening.origin, port: listening.port, close: listening.close };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}
