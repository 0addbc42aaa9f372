import { serveDemo } from './server';

/**
 * Serves the demo checkout page on its own, next to a running local stack: `tsx demo/main.ts`.
 * DEMO_PORT (default 3020), API_URL (default http://127.0.0.1:$PORT) and WECHATPAY_SIM_URL
 * (default http://127.0.0.1:$WECHATPAY_SIM_PORT) say where it listens and what it talks to.
 */
function setting(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === '' ? undefined : value;
}

async function main(): Promise<void> {
  const port = Number(setting('DEMO_PORT') ?? 3020);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`DEMO_PORT must be a port number, got "${setting('DEMO_PORT')}"`);
  const demo = await serveDemo({
    port,
    apiUrl: setting('API_URL') ?? `http://127.0.0.1:${setting('PORT') ?? 3000}`,
    emulatorUrl: setting('WECHATPAY_SIM_URL') ?? `http://127.0.0.1:${setting('WECHATPAY_SIM_PORT') ?? 3010}`,
  });
  process.stdout.write(`  Demo checkout    ${demo.url}\n`);
  const shutdown = (): void => void demo.close();
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ source: 'demo', event: 'start_failed', message: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
