import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { accepts, freePort } from '../../dev/emulator/http-server';
import { groupAlive } from '../support/processes';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('local stack (npm start) shutdown', () => {
  it('stops the API, its workers, the emulator and dynalite on Ctrl-C, leaving nothing behind', async () => {
    const ports = {
      PORT: await freePort(),
      WECHATPAY_SIM_PORT: await freePort(),
      WECHATPAY_SIM_TLS_PORT: await freePort(),
      DYNAMODB_PORT: await freePort(),
      DEMO_PORT: await freePort(),
      EVENTS_PORT: await freePort(),
    };
    const env = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])) };
    const stack = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['dev/local/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    stack.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => stack.once('exit', (code) => resolve(code)));
    const ready = await new Promise<{ apiProcessGroup: number; bundleFolder: string }>((resolve, reject) => {
      stack.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n').find((text) => text.includes('"event":"ready"'));
        if (line) resolve(JSON.parse(line));
      });
      void exited.then((code) => reject(new Error(`the stack exited with ${code}:\n${output.slice(-2000)}`)));
    });
    for (const port of Object.values(ports)) expect(await accepts(port)).toBe(true);
    expect(groupAlive(ready.apiProcessGroup)).toBe(true);
    expect(existsSync(join(ROOT, ready.bundleFolder))).toBe(true);

    stack.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const port of Object.values(ports)) expect(await accepts(port)).toBe(false);
    expect(groupAlive(ready.apiProcessGroup)).toBe(false);
    expect(existsSync(join(ROOT, ready.bundleFolder))).toBe(false);
  }, 150_000);
});
