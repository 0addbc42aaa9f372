import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lambdaHandler, workDeadline } from '../../lib/handler';
import { logger } from '../../lib/log';
import { countMetric, metrics } from '../../lib/metrics';

const context = {
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  functionName: 'wechatpay-dev-notify',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:ap-southeast-1:123456789012:function:wechatpay-dev-notify',
  memoryLimitInMB: '128',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

/** The log lines the logger writes while `run` runs, parsed. */
async function logged(run: () => Promise<unknown>): Promise<Array<Record<string, unknown>>> {
  const lines: string[] = [];
  const capture = (stream: NodeJS.WriteStream) =>
    vi.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof stream.write);
  logger.setLogLevel('INFO');
  const spies = [capture(process.stdout), capture(process.stderr)];
  try {
    await run();
  } finally {
    for (const spy of spies) spy.mockRestore();
    logger.setLogLevel('SILENT');
  }
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('lambdaHandler', () => {
  it('puts the Lambda request id and the cold start flag on every log line of the invocation', async () => {
    const handler = lambdaHandler(async () => {
      logger.info('first');
      logger.warn('second');
    });
    const entries = await logged(() => handler({}, context));
    expect(entries.map((entry) => entry.message)).toEqual(['first', 'second']);
    for (const entry of entries) {
      expect(entry).toMatchObject({ function_request_id: context.awsRequestId, function_name: context.functionName, cold_start: expect.any(Boolean) });
    }
  });

  it('flushes the metrics once per invocation, also when the work fails', async () => {
    const publish = vi.spyOn(metrics, 'publishStoredMetrics');
    const counted = lambdaHandler(async () => {
      countMetric('OrdersCreated');
      countMetric('OrdersCreated');
      return 'done';
    });
    await expect(counted({})).resolves.toBe('done');
    expect(publish).toHaveBeenCalledTimes(1);
    const failing = lambdaHandler(async () => {
      countMetric('StorageErrors');
      throw new Error('boom');
    });
    await expect(failing({})).rejects.toThrow('boom');
    expect(publish).toHaveBeenCalledTimes(2);
  });

  it('answers a failure through the route\'s own error answer, and throws without one', async () => {
    const work = async (): Promise<string> => {
      throw new Error('broken');
    };
    await expect(lambdaHandler(work, (error) => `answered: ${(error as Error).message}`)({})).resolves.toBe('answered: broken');
    await expect(lambdaHandler(work)({})).rejects.toThrow('broken');
  });
});

describe('workDeadline', () => {
  it('stops the margin before Lambda\'s deadline, or after the default budget without a Lambda context', () => {
    const now = Date.now();
    expect(workDeadline(context, 15_000, 45_000) - now).toBeGreaterThanOrEqual(45_000);
    expect(workDeadline(context, 15_000, 45_000) - now).toBeLessThan(45_100);
    expect(workDeadline(undefined, 15_000, 30_000) - now).toBeLessThan(30_100);
    const almostOut = { ...context, getRemainingTimeInMillis: () => 10_000 } as Context;
    expect(workDeadline(almostOut, 15_000, 45_000) - now).toBeGreaterThanOrEqual(1_000);
  });
});
