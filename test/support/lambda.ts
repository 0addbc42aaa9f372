import type { Context } from 'aws-lambda';
import { vi } from 'vitest';
import { logger } from '../../lib/log';

/** A Lambda invocation as the tests make one: its context, and what it writes to stdout and stderr. */

/** The context Lambda hands a function (a minute left). */
export const LAMBDA_CONTEXT = {
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  functionName: 'wechatpay-dev-notify',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:ap-southeast-1:123456789012:function:wechatpay-dev-notify',
  memoryLimitInMB: '128',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

/**
 * Sends every line written to stdout and stderr into `lines` instead, until the spies returned are
 * restored (or vitest restores every mock).
 */
export function captureOutput(lines: string[]) {
  const capture = (stream: NodeJS.WriteStream) =>
    vi.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof stream.write);
  return [capture(process.stdout), capture(process.stderr)];
}

/** Every line written to stdout and stderr while `run` runs, parsed, with the logger at `level`. */
export async function writtenLines<Line = Record<string, unknown>>(level: 'INFO' | 'WARN', run: () => Promise<unknown>): Promise<Line[]> {
  const lines: string[] = [];
  logger.setLogLevel(level);
  const spies = captureOutput(lines);
  try {
    await run();
  } finally {
    for (const spy of spies) spy.mockRestore();
    logger.setLogLevel('SILENT');
  }
  return lines.map((line) => JSON.parse(line) as Line);
}
