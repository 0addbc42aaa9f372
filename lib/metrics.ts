import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { PaymentSource } from './orders/model';

/** CloudWatch namespace of the product's metrics; the alarms in serverless.yml name it too. */
export const METRICS_NAMESPACE = 'WechatPay';
/** Every metric carries the dimension `service` with this value (Powertools' default dimension). */
export const METRICS_SERVICE = 'wechatpay';

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
  | 'RefundsResent';

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });

/** Adds to a counter; flushed with the others when the handler ends. */
export function countMetric(name: MetricName, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

/** A payment recorded, by the path that learned of it first (emitted at once, with its own dimension). */
export function countPaymentRecorded(path: PaymentSource): void {
  const single = metrics.singleMetric();
  single.addDimension('path', path);
  single.addMetric('PaymentsRecorded' satisfies MetricName, MetricUnit.Count, 1);
}

/** Writes the buffered metrics; the handler wrapper (lib/handler.ts) calls it once per invocation. Never throws. */
export function flushMetrics(): void {
  try {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  } catch {
    // A metric must never turn a recorded payment into a failed request.
  }
}
