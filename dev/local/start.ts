import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { accepts, freePort } from '../emulator/http-server';
import { startEmulator, type RunningEmulator } from '../emulator/server';
import { serveDemo, type RunningDemo } from '../demo/server';
import { startDynaliteServer, type RunningDynalite } from './dynalite';
import { startEventBridge, type DeliveredEvent, type RunningEventBridge } from './eventbridge';
import { CatalogStore } from '../../lib/catalog/store';
import { createDocumentClient } from '../../lib/store/dynamo';
import { DEMO_PRODUCTS } from './demo-products';
import { createCatalogTable, createOrdersTable } from './tables';
import { TEST_MERCHANT } from '../emulator/test-merchant';
import { localCertificates } from '../emulator/certs';
import { localStackApps } from './apps';
import { LOCAL_SESSION_KEY } from './session-key';

/**
 * The local stack (`npm start`): DynamoDB (dynalite, in memory), the WeChat Pay emulator, a local
 * EventBridge (the functions publish their events to it; it serves them at GET /events and hands
 * each to clearOutbox, as the stage's rule does) and the API under `serverless offline --stage
 * local`, whose scheduler also runs the recovery function at the rate serverless.yml gives it.
 * Settings of the configuration table (docs/reference/configuration.md) set in the environment win over these defaults.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVERLESS = fileURLToPath(new URL('../../node_modules/.bin/serverless', import.meta.url));
const HOST = '127.0.0.1';
/** serverless.yml's table name for the local stage: `${self:service}-${sls:stage}-orders`. */
const LOCAL_TABLE = 'wechatpay-local-orders';
const LOCAL_CATALOG_TABLE = 'wechatpay-local-catalog';
/** serverless.yml's bus for the local stage, `${self:service}-${sls:stage}`, and the function its rule invokes. */
const LOCAL_EVENT_BUS = 'wechatpay-local';
const CLEAR_OUTBOX_FUNCTION = 'wechatpay-local-clearOutbox';
/** The merchant server's bearer token on the local stack, unless MERCHANT_API_TOKEN names another. */
const LOCAL_MERCHANT_TOKEN = 'local-merchant-token';

/** Creates a table unless a DynamoDB that keeps its data between runs already has it. */
async function ensureTable(create: () => Promise<void>): Promise<boolean> {
  try {
    await create();
    return true;
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceInUseException') throw error;
    return false;
  }
}
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 5_000;

function setting(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === '' ? undefined : value;
}

function portFrom(name: string, fallback: number): number {
  const raw = setting(name);
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return port;
}

function positiveNumberFrom(name: string, fallback: number): number {
  const raw = setting(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** Fails early and by name: a busy port would otherwise pass for a ready API, or fail half-way. */
async function ensureFree(port: number, name: string): Promise<void> {
  try {
    await freePort(port, HOST);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`port ${port} (${name}) is not available: ${code ?? String(error)}; set ${name} to another port`);
  }
}

function log(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), source: 'local-stack', event, ...fields }));
}

/** Stops a process group: SIGTERM, then SIGKILL for whatever is left after the grace period. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is already gone.
    }
  };
  signalGroup('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
  // Workers and esbuild's service process share the group; none may outlive the stack.
  signalGroup('SIGKILL');
  if (!graceful) await exited;
}

async function main(): Promise<void> {
  const apiPort = portFrom('PORT', 3000);
  const emulatorPort = portFrom('WECHATPAY_SIM_PORT', 3010);
  const emulatorTlsPort = portFrom('WECHATPAY_SIM_TLS_PORT', 3011);
  const dynamoPort = portFrom('DYNAMODB_PORT', 8000);
  const demoPort = portFrom('DEMO_PORT', 3020);
  const eventsPort = portFrom('EVENTS_PORT', 3030);
  const timeScale = positiveNumberFrom('WECHATPAY_SIM_TIME_SCALE', 1);
  const merchant = {
    appId: setting('WECHATPAY_APPID') ?? TEST_MERCHANT.appId,
    mchId: setting('WECHATPAY_MCHID') ?? TEST_MERCHANT.mchId,
    apiKey: setting('WECHATPAY_API_KEY') ?? TEST_MERCHANT.apiKey,
  };
  const ordersTable = setting('ORDERS_TABLE') ?? LOCAL_TABLE;
  const catalogTable = setting('CATALOG_TABLE') ?? LOCAL_CATALOG_TABLE;
  const merchantToken = setting('MERCHANT_API_TOKEN') ?? LOCAL_MERCHANT_TOKEN;
  // The merchant's official account and a local mini-program, unless WECHAT_APPS names others.
  const { apps, settings: appSettings } = localStackApps(merchant.appId);
  // This stack's own bundles: another stack or a packaging run deletes only its own folder.
  const bundleFolder = `.esbuild/stack-${process.pid}`;

  let dynalite: RunningDynalite | undefined;
  let emulator: RunningEmulator | undefined;
  let demo: RunningDemo | undefined;
  let events: RunningEventBridge | undefined;
  let offline: ChildProcess | undefined;
  let launching: Promise<unknown> = Promise.resolve();
  let stopping: Promise<void> | undefined;

  const stop = (reason: string, exitCode: number): Promise<void> => {
    stopping ??= (async () => {
      log('stopping', { reason });
      // A signal during start-up waits for the step under way, so whatever it starts is stopped too.
      await launching.catch(() => undefined);
      if (offline) await stopGroup(offline);
      rmSync(join(ROOT, bundleFolder), { recursive: true, force: true });
      await demo?.close();
      await events?.close();
      await emulator?.close();
      await dynalite?.close();
      log('stopped');
      process.exitCode = exitCode;
    })();
    return stopping;
  };
  process.once('SIGINT', () => void stop('SIGINT', 0));
  process.once('SIGTERM', () => void stop('SIGTERM', 0));
  // Last resort if this process dies on an error: never leave the API running without its stack.
  process.once('exit', () => {
    if (offline?.pid !== undefined && offline.exitCode === null && offline.signalCode === null) {
      try {
        process.kill(-offline.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  /** Starts DynamoDB, the table, the emulator and serverless offline, stopping at the first signal. */
  const launch = async () => {
    await ensureFree(apiPort, 'PORT');
    await ensureFree(emulatorPort, 'WECHATPAY_SIM_PORT');
    await ensureFree(emulatorTlsPort, 'WECHATPAY_SIM_TLS_PORT');
    await ensureFree(demoPort, 'DEMO_PORT');
    await ensureFree(eventsPort, 'EVENTS_PORT');
    // An explicit DYNAMODB_ENDPOINT means another local DynamoDB is wanted: use it, start none.
    let dynamoEndpoint = setting('DYNAMODB_ENDPOINT');
    if (dynamoEndpoint === undefined) {
      await ensureFree(dynamoPort, 'DYNAMODB_PORT');
      dynalite = await startDynaliteServer({ port: dynamoPort, host: HOST });
      dynamoEndpoint = dynalite.endpoint;
    }
    // Another DynamoDB may keep its data between runs: an existing table is the one to use, and its
    // catalog is the merchant's; only a new catalog gets the demo products.
    await ensureTable(() => createOrdersTable(dynamoEndpoint, ordersTable));
    if (await ensureTable(() => createCatalogTable(dynamoEndpoint, catalogTable))) {
      const catalog = new CatalogStore(createDocumentClient(dynamoEndpoint), catalogTable);
      const updatedAt = new Date().toISOString();
      for (const product of DEMO_PRODUCTS) await catalog.put({ ...product, active: true, updatedAt });
    }
    if (stopping) return undefined;

    // Refunds: the emulator serves /secapi/ over mutual TLS with a local CA made for this run; the API
    // presents the merchant certificate it signed, and trusts that CA for the emulator only.
    const certs = localCertificates(merchant.mchId);
    emulator = await startEmulator({
      ...merchant,
      apps,
      port: emulatorPort,
      host: HOST,
      timeScale,
      tls: { ...certs, port: emulatorTlsPort },
    });
    if (stopping) return undefined;

    // Serverless offline's Lambda API: the local bus hands each event to clearOutbox through it.
    const lambdaPort = await freePort(0, HOST);
    const confirm = async (event: DeliveredEvent) => {
      const answer = await fetch(`http://${HOST}:${lambdaPort}/2015-03-31/functions/${CLEAR_OUTBOX_FUNCTION}/invocations`, {
        method: 'POST',
        headers: { 'x-amz-invocation-type': 'Event' },
        body: JSON.stringify(event),
      });
      if (answer.status !== 202) throw new Error(`clearOutbox was not invoked: ${answer.status} ${await answer.text()}`);
    };
    events = await startEventBridge({ port: eventsPort, host: HOST, busName: LOCAL_EVENT_BUS, targets: [confirm] });
    if (stopping) return undefined;

    const apiUrl = `http://${HOST}:${apiPort}`;
    // The demo page's server is the merchant's web server: it lists the products with the merchant's token.
    // Its mini-program mode logs payers in to the stack's first mini-program.
    const miniProgramAppId = apps.find((app) => app.kind === 'miniprogram')?.appId;
    demo = await serveDemo({
      port: demoPort,
      host: HOST,
      apiUrl,
      emulatorUrl: emulator.url,
      merchantToken,
      eventsUrl: events.url,
      miniProgramAppId,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      WECHATPAY_APPID: merchant.appId,
      WECHATPAY_MCHID: merchant.mchId,
      WECHATPAY_API_KEY: merchant.apiKey,
      WECHATPAY_BASE_URL: setting('WECHATPAY_BASE_URL') ?? emulator.url,
      WECHATPAY_NOTIFY_URL: setting('WECHATPAY_NOTIFY_URL') ?? `${apiUrl}/wechatpay/notify`,
      WECHATPAY_REFUND_NOTIFY_URL: setting('WECHATPAY_REFUND_NOTIFY_URL') ?? `${apiUrl}/wechatpay/refund-notify`,
      WECHATPAY_SECAPI_BASE_URL: setting('WECHATPAY_SECAPI_BASE_URL') ?? emulator.secapiUrl,
      WECHATPAY_CLIENT_CERT_PEM: certs.clientPem,
      WECHATPAY_SECAPI_CA_PEM: certs.caPem,
      ORDERS_TABLE: ordersTable,
      CATALOG_TABLE: catalogTable,
      MERCHANT_API_TOKEN: merchantToken,
      ...appSettings,
      WECHAT_API_BASE_URL: setting('WECHAT_API_BASE_URL') ?? emulator.url,
      SESSION_KEY: setting('SESSION_KEY') ?? LOCAL_SESSION_KEY,
      DYNAMODB_ENDPOINT: dynamoEndpoint,
      EVENTBRIDGE_ENDPOINT: events.url,
      ESBUILD_WORK_FOLDER: bundleFolder,
    };
    const args = ['offline', 'start', '--stage', 'local', '--host', HOST, '--httpPort', String(apiPort)];
    args.push('--lambdaPort', String(lambdaPort));
    if (stopping) return undefined;
    // Its own process group, so stopping the stack stops everything it started.
    const child = spawn(SERVERLESS, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    offline = child;
    child.once('exit', (code) => void stop(`serverless offline exited with code ${code}`, code === 0 ? 0 : 1));
    return {
      apiUrl,
      env,
      dynamoEndpoint,
      emulatorUrl: emulator.url,
      secapiUrl: emulator.secapiUrl,
      demoUrl: demo.url,
      eventsUrl: events.url,
      apiProcessGroup: child.pid,
    };
  };

  try {
    const startup = launch();
    launching = startup;
    const started = await startup;
    if (!started) return;

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await accepts(apiPort, HOST))) {
      if (stopping) return;
      if (Date.now() > deadline) throw new Error(`the API did not listen on port ${apiPort} within ${READY_TIMEOUT_MS} ms`);
      await sleep(250);
    }
    const { apiUrl, env, dynamoEndpoint, emulatorUrl, secapiUrl, demoUrl, eventsUrl, apiProcessGroup } = started;
    log('ready', {
      api: apiUrl,
      notifyUrl: env.WECHATPAY_NOTIFY_URL,
      emulator: emulatorUrl,
      emulatorSecapi: secapiUrl,
      demo: demoUrl,
      events: eventsUrl,
      eventBus: LOCAL_EVENT_BUS,
      wechatpayBaseUrl: env.WECHATPAY_BASE_URL,
      dynamodb: dynamoEndpoint,
      ordersTable,
      // Everything the API runs sits in this process group; stopping the stack ends the group.
      apiProcessGroup,
      bundleFolder,
    });
    console.log(
      [
        '',
        `  API              ${apiUrl}   (POST /orders, GET /orders/{outTradeNo}, /auth/..., POST /wechatpay/notify, /merchant/...)`,
        `  Merchant token   ${merchantToken}   (Authorization: Bearer <token> on /merchant/...)`,
        `  Apps             ${apps.map((app) => `${app.appId} (${app.kind})`).join(', ')}   (POST /__sim/login on the emulator for a login code)`,
        `  WeChat Pay sim   ${emulatorUrl}   (control API under /__sim; /secapi/ over mutual TLS at ${secapiUrl})`,
        `  Demo checkout    ${demoUrl}   (the demo shop: order the demo products, pay with a QR code and the emulator's scan page, or as a mini-program payer; see each order's events)`,
        `  DynamoDB         ${dynamoEndpoint}   (tables ${ordersTable}, ${catalogTable})`,
        `  Events           ${eventsUrl}/events   (every order transition, as on the bus ${LOCAL_EVENT_BUS}; ?outTradeNo= filters)`,
        '  recoverOrders runs on its schedule. Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(JSON.stringify({ time: new Date().toISOString(), source: 'local-stack', event: 'start_failed', message }));
    await stop('start failed', 1);
  }
}

void main();
