import { localCertificates } from './certs';
import { TEST_MERCHANT } from './test-merchant';
import { startEmulator } from './server';

/**
 * Runs the WeChat Pay emulator on its own: `tsx dev/emulator/main.ts`. Settings come from the same
 * variables as the API's, so both sides share one merchant; prints one JSON line with its URL.
 */
function numberFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got "${raw}"`);
  return value;
}

async function main(): Promise<void> {
  const mchId = process.env.WECHATPAY_MCHID || TEST_MERCHANT.mchId;
  // /secapi/ over mutual TLS, with a local CA made for this run (certs.ts).
  const certs = localCertificates(mchId);
  const emulator = await startEmulator({
    appId: process.env.WECHATPAY_APPID || TEST_MERCHANT.appId,
    mchId,
    apiKey: process.env.WECHATPAY_API_KEY || TEST_MERCHANT.apiKey,
    port: numberFrom('WECHATPAY_SIM_PORT', 3010),
    timeScale: numberFrom('WECHATPAY_SIM_TIME_SCALE', 1),
    tls: { ...certs, port: numberFrom('WECHATPAY_SIM_TLS_PORT', 3011) },
  });
  console.log(JSON.stringify({ event: 'listening', service: 'wechatpay-emulator', url: emulator.url, secapiUrl: emulator.secapiUrl }));
  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    emulator.close().then(
      () => console.log(JSON.stringify({ event: 'stopped', service: 'wechatpay-emulator', signal })),
      (error: unknown) => {
        console.error(JSON.stringify({ event: 'stop_failed', message: String(error) }));
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ event: 'start_failed', message: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
