import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lambdaHandler } from '../../lib/handler';
import { countMetric, logAndCount, metrics, METRICS_NAMESPACE, METRICS_SERVICE } from '../../lib/metrics';
import { LAMBDA_CONTEXT as context, writtenLines } from '../support/lambda';

type Line = Record<string, unknown> & {
  _aws?: {
    Timestamp: number;
    CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }>;
  };
};

/** The metric values an EMF line declares, by name, as CloudWatch would extract them. */
function extracted(line: Line): Array<{ name: string; value: unknown; dimensions: Record<string, unknown> }> {
  return (line._aws?.CloudWatchMetrics ?? []).flatMap((directive) => {
    expect(directive.Namespace).toBe(METRICS_NAMESPACE);
    const dimensions = Object.fromEntries(directive.Dimensions.flat().map((key) => [key, line[key]]));
    return directive.Metrics.map(({ Name }) => ({ name: Name, value: line[Name], dimensions }));
  });
}

const saved = process.env.POWERTOOLS_METRICS_DISABLED;
beforeEach(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});
afterEach(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = saved;
  vi.restoreAllMocks();
});

describe('logAndCount', () => {
  it('writes one line that is both the log entry and the metric, and loads no metrics library', async () => {
    const publish = vi.spyOn(metrics, 'publishStoredMetrics');
    const handler = lambdaHandler(async () => {
      logAndCount('order paid', { outTradeNo: '20261130abc', transition: 'PENDING->PAID' }, 'PaymentsRecorded', { path: 'notify' });
    });
    const lines = await writtenLines<Line>('INFO', () => handler({}, context));
    expect(lines).toHaveLength(1);
    const [line] = lines as [Line];
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'order paid',
      service: METRICS_SERVICE,
      function_request_id: context.awsRequestId,
      cold_start: expect.any(Boolean),
      outTradeNo: '20261130abc',
      transition: 'PENDING->PAID',
    });
    expect(extracted(line)).toEqual([{ name: 'PaymentsRecorded', value: 1, dimensions: { service: METRICS_SERVICE, path: 'notify' } }]);
    expect(line._aws!.CloudWatchMetrics[0]!.Metrics).toEqual([{ Name: 'PaymentsRecorded', Unit: 'Count' }]);
    expect(Math.abs(line._aws!.Timestamp - Date.now())).toBeLessThan(60_000);
    expect(publish).not.toHaveBeenCalled();
  });

  it('counts without a dimension of its own under the service dimension alone', async () => {
    const lines = await writtenLines<Line>('INFO', async () => logAndCount('order created', { outTradeNo: 'x' }, 'OrdersCreated'));
    expect(lines).toHaveLength(1);
    expect(extracted(lines[0]!)).toEqual([{ name: 'OrdersCreated', value: 1, dimensions: { service: METRICS_SERVICE } }]);
  });

  it('still counts when INFO lines are not written: the metric goes out at the flush, as Powertools writes it', async () => {
    const handler = lambdaHandler(async () => {
      logAndCount('order paid', { outTradeNo: 'x' }, 'PaymentsRecorded', { path: 'recovery' });
      logAndCount('order created', { outTradeNo: 'y' }, 'OrdersCreated');
    });
    const lines = await writtenLines<Line>('WARN', () => handler({}, context));
    expect(lines.every((line) => line.message === undefined)).toBe(true);
    expect(lines.flatMap(extracted)).toEqual([
      { name: 'PaymentsRecorded', value: 1, dimensions: { service: METRICS_SERVICE, path: 'recovery' } },
      { name: 'OrdersCreated', value: 1, dimensions: { service: METRICS_SERVICE } },
    ]);
  });

  it('carries no metric while metrics are disabled, as Powertools Metrics would write none', async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const handler = lambdaHandler(async () => logAndCount('order paid', { outTradeNo: 'x' }, 'PaymentsRecorded', { path: 'notify' }));
    const lines = await writtenLines<Line>('INFO', () => handler({}, context));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ message: 'order paid' });
    expect(lines[0]!._aws).toBeUndefined();
    expect(lines[0]!.PaymentsRecorded).toBeUndefined();
  });
});

describe('counted metrics', () => {
  it('go out once, at the end of the invocation, on one line per dimension set', async () => {
    const handler = lambdaHandler(async () => {
      countMetric('DuplicateCallbacks');
      countMetric('SignatureFailures');
      countMetric('SignatureFailures');
    });
    const lines = await writtenLines<Line>('WARN', () => handler({}, context));
    expect(lines).toHaveLength(1);
    expect(extracted(lines[0]!)).toEqual([
      { name: 'DuplicateCallbacks', value: 1, dimensions: { service: METRICS_SERVICE } },
      { name: 'SignatureFailures', value: [1, 1], dimensions: { service: METRICS_SERVICE } },
    ]);
    // Nothing is left for the next invocation.
    expect(metrics.hasStoredMetrics()).toBe(false);
    expect(await writtenLines<Line>('WARN', () => lambdaHandler(async () => undefined)({}, context))).toEqual([]);
  });
});
