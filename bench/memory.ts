/** Peak memory of each function's bundle, in a process of its own, while it serves the bench's requests. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Bundle } from './bundles';
import { OUT, ROOT } from './bundles';

const run = promisify(execFile);

export interface MemoryResult {
  requests: number;
  rssPeakMB: number;
  heapPeakMB: number;
  rssAfterRequireMB: number;
  statuses: Record<string, number>;
}

const ENV_KEYS = [
  'AWS_REGION',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'WECHATPAY_APPID',
  'WECHATPAY_MCHID',
  'WECHATPAY_API_KEY',
  'WECHATPAY_BASE_URL',
  'WECHATPAY_NOTIFY_URL',
  'ORDERS_TABLE',
  'CATALOG_TABLE',
  'MERCHANT_API_TOKEN',
  'DYNAMODB_ENDPOINT',
  'EVENT_BUS_NAME',
  'EVENTBRIDGE_ENDPOINT',
];

/** `nodeOptions`: flags for the child's node, e.g. a smaller heap, to tell what is live from garbage not yet collected. */
export async function peakMemory(
  bundle: Bundle,
  events: unknown[],
  options: { context?: boolean; nodeOptions?: readonly string[] } = {},
): Promise<MemoryResult> {
  const env: Record<string, string> = { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' };
  for (const key of ENV_KEYS) if (process.env[key]) env[key] = process.env[key]!;
  const jobFile = join(OUT, `${bundle.name}.job.json`);
  writeFileSync(jobFile, JSON.stringify({ bundle: bundle.file, env, events, context: options.context ?? false }));
  const { stdout } = await run(
    process.execPath,
    ['--no-warnings', ...(options.nodeOptions ?? []), join(ROOT, 'bench/serve-child.mjs'), jobFile],
    {
      maxBuffer: 4 * 1024 * 1024,
      env: { PATH: process.env.PATH ?? '' },
    },
  );
  const r = JSON.parse(stdout) as { rssPeak: number; heapPeak: number; rssAfterRequire: number; statuses: Record<string, number> };
  const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
  return {
    requests: events.length,
    rssPeakMB: mb(r.rssPeak),
    heapPeakMB: mb(r.heapPeak),
    rssAfterRequireMB: mb(r.rssAfterRequire),
    statuses: r.statuses,
  };
}
