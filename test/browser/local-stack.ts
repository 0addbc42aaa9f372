import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveDemo } from '../../demo/server';

/** The real local stack (`npm start`) as a child process, for tests that need it whole. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

export interface LocalStack {
  apiUrl: string;
  emulatorUrl: string;
  demoUrl: string;
  /** Everything the stack printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The stack's `{"event":"ready",...}` log line, once it has printed it. */
function readyLine(output: string): Record<string, unknown> | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('"ready"') || !line.includes('local-stack')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.event === 'ready') return entry;
    } catch {
      // Not a JSON line.
    }
  }
  return undefined;
}

/** The demo page's URL as the stack prints it: `Demo checkout  http://...`. */
function demoLine(output: string): string | undefined {
  return /Demo checkout\s+(http:\/\/\S+)/.exec(output)?.[1];
}

/** Starts `tsx local/start.ts` on free ports and waits until it prints its URLs. */
export async function startLocalStack(timeoutMs = 150_000): Promise<LocalStack> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(await freePort()),
    WECHATPAY_SIM_PORT: String(await freePort()),
    DYNAMODB_PORT: String(await freePort()),
    DEMO_PORT: String(await freePort()),
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
  // Whatever the caller's shell says, the stack must use its own local defaults.
  for (const name of ['WECHATPAY_BASE_URL', 'WECHATPAY_NOTIFY_URL', 'DYNAMODB_ENDPOINT', 'ORDERS_TABLE']) delete env[name];

  // Its own process group: if it will not stop, the group (serverless offline included) is killed.
  const child = spawn(TSX, ['local/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const graceful = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!graceful) killGroup(child);
    }
    await exited;
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = readyLine(output);
    // The URL block follows the ready line; it ends with the Ctrl-C hint.
    if (ready && output.includes('Ctrl-C')) {
      const apiUrl = String(ready.api);
      const emulatorUrl = String(ready.emulator);
      const demoUrl = demoLine(output);
      if (demoUrl) return { apiUrl, emulatorUrl, demoUrl, output: () => output, stop };
      // A stack that does not serve the demo page yet: serve it here, against that stack.
      console.log('the local stack printed no demo page URL; serving the demo page from the test');
      const demo = await serveDemo({ apiUrl, emulatorUrl });
      const stopBoth = async (): Promise<void> => {
        await demo.close();
        await stop();
      };
      return { apiUrl, emulatorUrl, demoUrl: demo.url, output: () => output, stop: stopBoth };
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      const why = child.exitCode !== null ? `exited with code ${child.exitCode}` : 'did not print its URLs in time';
      throw new Error(`the local stack ${why}; its output:\n${output}`);
    }
    await sleep(200);
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
