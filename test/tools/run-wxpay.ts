import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/wxpay.mjs', import.meta.url));

export interface WxpayRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the wxpay command as `npm run wxpay` does (node bin/wxpay.mjs), with `stdin` piped in if given. */
export function runWxpay(args: string[], options: { stdin?: string | Buffer; cwd?: string } = {}): Promise<WxpayRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}
