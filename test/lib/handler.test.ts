import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lambdaHandler, workDeadline } from '../../lib/handler';
import { logger } from '../../lib/log';
import { countMetric, metrics } from '../../lib/metrics';
import { LAMBDA_CONTEXT as context, writtenLines } from '../support/lambda';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('lambdaHandler', () => {
  it('puts the Lambda request id and the cold start flag on every log line of the invocation', async () => {
    const handler = lambdaHandler(async () => {
      logger.info('first');
      logger.warn('second');
    });
    const entries = await writtenLines('INFO', () => handler({}, context));
    expect(entries.map((entry) => entry.message)).toEqual(['first', 'second']);
    for (const entry of entries) {
      expect(entry).toMatchObject({
        function_request_id: context.awsRequestId,
        function_name: context.functionName,
        cold_start: expect.any(Boolean),
      });
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

  it("answers a failure through the route's own error answer, and throws without one", async () => {
    const work = async (): Promise<string> => {
      throw new Error('broken');
    };
    await expect(lambdaHandler(work, (error) => `answered: ${(error as Error).message}`)({})).resolves.toBe('answered: broken');
    await expect(lambdaHandler(work)({})).rejects.toThrow('broken');
  });
});

describe('workDeadline', () => {
  it("stops the margin before Lambda's deadline, or after the default budget without a Lambda context", () => {
    const now = Date.now();
    expect(workDeadline(context, 15_000, 45_000) - now).toBeGreaterThanOrEqual(45_000);
    expect(workDeadline(context, 15_000, 45_000) - now).toBeLessThan(45_100);
    expect(workDeadline(undefined, 15_000, 30_000) - now).toBeLessThan(30_100);
    const almostOut = { ...context, getRemainingTimeInMillis: () => 10_000 } as Context;
    expect(workDeadline(almostOut, 15_000, 45_000) - now).toBeGreaterThanOrEqual(1_000);
  });
});
