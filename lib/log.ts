import { Logger } from '@aws-lambda-powertools/logger';

/** The `service` of every log line, and the `service` dimension of every metric (lib/metrics.ts). */
export const SERVICE_NAME = 'wechatpay';

/**
 * One structured JSON logger for the whole product. Fields that could carry a secret are never
 * passed to it: the API key lives only in the config object, and string-to-sign text is never built
 * outside the signing code.
 */
export const logger = new Logger({ serviceName: SERVICE_NAME });
