import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupAlive, killGroup, localStackPorts } from '../support/processes';

/** The real local stack (`npm start`) as a child process, for tests that need it whole. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

export interface LocalStack {
  apiUrl: string;
  emulatorUrl: string;
  demoUrl: string;
  /** The local events service (the EventBridge stand-in): what the bus got, whole. */
  eventsUrl: string;
  /** The merchant API token the stack was given: the demo's server holds it, no browser may see it. */
  merchantToken: string;
  /** Everything the stack printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
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

/** Starts `tsx dev/local/start.ts` on free ports and waits until it prints its URLs. */
export async function startLocalStack(timeoutMs = 150_000): Promise<LocalStack> {
  // A token of this run's own, so that finding it anywhere it must not be cannot be a coincidence.
  const merchantToken = `browser-test-merchant-${randomBytes(12).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(await localStackPorts()),
    MERCHANT_API_TOKEN: merchantToken,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
  // Whatever the caller's shell says, the stack must use its own local defaults.
  for (const name of [
    'WECHATPAY_BASE_URL',
    'WECHATPAY_NOTIFY_URL',
    'DYNAMODB_ENDPOINT',
    'EVENTBRIDGE_ENDPOINT',
    'ORDERS_TABLE',
    'CATALOG_TABLE',
  ])
    delete env[name];

  // Its own process group: if it will not stop, the group (serverless offline included) is killed.
  const child = spawn(TSX, ['dev/local/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const graceful = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!graceful && child.pid !== undefined) killGroup(child.pid);
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
      const eventsUrl = String(ready.events);
      // serverless offline runs in a process group of its own, which the stack ends when it stops.
      const apiGroup = typeof ready.apiProcessGroup === 'number' ? ready.apiProcessGroup : undefined;
      const stopAll = async (): Promise<void> => {
        await stop();
        // Killed members may take a moment to be reaped.
        for (let i = 0; i < 20 && apiGroup !== undefined && groupAlive(apiGroup); i++) await sleep(100);
        if (apiGroup !== undefined && groupAlive(apiGroup)) {
          killGroup(apiGroup);
          throw new Error(`the local stack left its API process group ${apiGroup} running; it has been killed`);
        }
      };
      if (demoUrl) return { apiUrl, emulatorUrl, demoUrl, eventsUrl, merchantToken, output: () => output, stop: stopAll };
      await stop();
      throw new Error(`the local stack printed no "Demo checkout" URL; its output:\n${output}`);
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      const why = child.exitCode !== null ? `exited with code ${child.exitCode}` : 'did not print its URLs in time';
      throw new Error(`the local stack ${why}; its output:\n${output}`);
    }
    await sleep(200);
  }
}
