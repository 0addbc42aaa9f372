import { logger, SERVICE_NAME } from './log';

/** CloudWatch namespace of the product's metrics; the alarms in serverless.yml name it too. */
export const METRICS_NAMESPACE = 'WechatPay';
/** Every metric carries the dimension `service` with this value (Powertools' default dimension). */
export const METRICS_SERVICE = SERVICE_NAME;

/**
 * The business metrics, as Embedded Metric Format lines in the function's log: CloudWatch extracts
 * them, so no function needs `cloudwatch:PutMetricData`.
 */
export type MetricName =
  | 'OrdersCreated'
  /** PENDING → PAID, with the dimension `path`: notify, query or recovery. */
  | 'PaymentsRecorded'
  /** A callback for a payment already recorded (WeChat Pay's retries and concurrent copies). */
  | 'DuplicateCallbacks'
  /** Callbacks refused for their signature: forged, another key, another sign type. */
  | 'SignatureFailures'
  /** Callbacks refused for anything else: malformed, foreign app or merchant, unknown order. */
  | 'CallbacksRefused'
  /** A payment whose amount differs from the order's: never marked paid, flagged for review. */
  | 'AmountMismatches'
  /** Money for an order that was CLOSED/FAILED, or a second transaction: recorded and flagged. */
  | 'PaymentsFlagged'
  | 'RecoveryRepaired'
  | 'RecoveryClosed'
  /** Items of a daily reconciliation that a person must look at (missing from the bill, amounts that differ, unknown orders). */
  | 'ReconciliationMismatches'
  /** A daily reconciliation whose report could not be stored (its run still answered its counts, and counted its mismatches). */
  | 'ReconciliationReportsNotStored'
  /** A request answered 503 because DynamoDB failed. */
  | 'StorageErrors'
  /** Order events EventBridge accepted (inline, or by the sweep). */
  | 'EventsPublished'
  /** Order events EventBridge refused or did not answer for: they wait in their outbox for the sweep. */
  | 'EventsNotPublished'
  /** Order events the sweep published again: their first publish was not confirmed in time. */
  | 'EventsRepublished'
  /** Refunds reserved and sent to WeChat Pay. */
  | 'RefundsRequested'
  /** Refunds WeChat Pay refused for good (FAILED, amount given back). */
  | 'RefundsFailed'
  /** Refunds that ended CHANGE: the money could not reach the payer; a person must act. */
  | 'RefundsNeedAction'
  /** Refunds recovery sent again because WeChat Pay never received them. */
  | 'RefundsResent'
  /** WeChat Pay answers about a refund number of ours that concern another order (another system on the merchant id): refused, flagged. */
  | 'RefundAnswersRefused';

interface Counted {
  name: MetricName;
  value: number;
  /** Dimensions besides `service`: the metric goes out on a line of its own (Powertools' single metric). */
  dimensions?: Readonly<Record<string, string>>;
}

type PowertoolsMetrics = import('@aws-lambda-powertools/metrics').Metrics;

/**
 * The invocation's metrics, counted as plain entries and handed to Powertools Metrics only when the
 * handler flushes them. Powertools Metrics is loaded then, on first use: most requests count nothing
 * beyond what their one log line carries (`logAndCount`), and never load it.
 */
class InvocationMetrics {
  #counted: Counted[] = [];
  #powertools: PowertoolsMetrics | undefined;

  addMetric(name: MetricName, value: number, dimensions?: Readonly<Record<string, string>>): void {
    this.#counted.push(dimensions ? { name, value, dimensions } : { name, value });
  }

  hasStoredMetrics(): boolean {
    return this.#counted.length > 0;
  }

  /** Writes what was counted, as Powertools Metrics writes it: each metric with extra dimensions on its own line, then the others on one. */
  async publishStoredMetrics(): Promise<void> {
    const counted = this.#counted;
    this.#counted = [];
    if (counted.length === 0) return;
    const { Metrics, MetricUnit } = await import('@aws-lambda-powertools/metrics');
    const metrics = (this.#powertools ??= new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE }));
    for (const { name, value, dimensions } of counted) {
      if (!dimensions) continue;
      const single = metrics.singleMetric();
      for (const [key, dimension] of Object.entries(dimensions)) single.addDimension(key, dimension);
      single.addMetric(name, MetricUnit.Count, value);
    }
    for (const { name, value, dimensions } of counted) if (!dimensions) metrics.addMetric(name, MetricUnit.Count, value);
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}

export const metrics = new InvocationMetrics();

/** Adds to a counter; flushed with the others when the handler ends. */
export function countMetric(name: MetricName, value = 1): void {
  metrics.addMetric(name, value);
}

/** Writes the buffered metrics; the handler wrapper (lib/handler.ts) calls it once per invocation. Never throws. */
export async function flushMetrics(): Promise<void> {
  try {
    if (metrics.hasStoredMetrics()) await metrics.publishStoredMetrics();
  } catch {
    // A metric must never turn a recorded payment into a failed request.
  }
}

const TRUTHY = new Set(['1', 'y', 'yes', 't', 'true', 'on']);

/** Powertools Metrics' own rule: POWERTOOLS_METRICS_DISABLED when set, else off in POWERTOOLS_DEV mode. */
function metricsEnabled(env: Record<string, string | undefined> = process.env): boolean {
  const disabled = env.POWERTOOLS_METRICS_DISABLED;
  if (disabled !== undefined) return !TRUTHY.has(disabled.toLowerCase());
  return !TRUTHY.has((env.POWERTOOLS_DEV ?? '').toLowerCase());
}

/** Powertools Logger's threshold for INFO: a line at INFO is written while the logger's level is at most this. */
const INFO_LEVEL = 12;

/**
 * Logs `message` at INFO and counts `name` once, in one line: the log line also carries the metric
 * in CloudWatch's embedded metric format (the `_aws` directive, the dimension values and the count,
 * as Powertools Metrics writes them), so the request that did it writes a single line. When that
 * line would not be written (the log level is above INFO) or metrics are off, the metric is counted
 * as usual and flushed with the others.
 */
export function logAndCount(
  message: string,
  fields: Record<string, unknown>,
  name: MetricName,
  dimensions: Readonly<Record<string, string>> = {},
): void {
  if (logger.level > INFO_LEVEL || !metricsEnabled()) {
    logger.info(message, fields);
    metrics.addMetric(name, 1, Object.keys(dimensions).length > 0 ? dimensions : undefined);
    return;
  }
  logger.info(message, {
    ...fields,
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        { Namespace: METRICS_NAMESPACE, Dimensions: [['service', ...Object.keys(dimensions)]], Metrics: [{ Name: name, Unit: 'Count' }] },
      ],
    },
    // The logger writes `service` itself, with the same value (lib/log.ts).
    ...dimensions,
    [name]: 1,
  });
}
