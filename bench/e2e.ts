/**
 * A first callback end to end: the notify bundle, as serverless.yml packages it, answering the first
 * callback of each of many pending orders on dynalite, against the floor bundle's one UpdateItem,
 * alternately in one process of their own.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import { batchWrite, seedClient } from '../test/support/seed';
import type { TestStack } from '../test/support/stack';
import type { Bundle } from './bundles';
import { OUT, ROOT } from './bundles';
import { callbackEvent } from './dynamo';

/** Runs a script in a node process of its own, its stdout discarded; rejects with its stderr if it fails. */
function runDiscardingStdout(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bench child exited ${code}: ${stderr}`))));
  });
}

export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
}

export interface FirstCallbacks {
  callbacks: number;
  /** Answers with return_code SUCCESS. */
  success: number;
  /** Orders PAID by notify afterwards, read back from the table. */
  paid: number;
  notifyMs: Percentiles;
  floorMs: Percentiles;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

function pendingOrder(outTradeNo: string, totalFee: number, now: number) {
  return {
    pk: outTradeNo,
    outTradeNo,
    status: 'PENDING',
    tradeType: 'JSAPI',
    totalFee,
    description: 'Bench first callback',
    signType: 'HMAC-SHA256',
    createdAt: new Date(now - 5_000).toISOString(),
    expiresAt: new Date(now + 30 * 60_000).toISOString(),
    prepayId: `wx${outTradeNo}`,
    review: {},
  };
}

/** `count` first callbacks, each for a pending order of its own, after `warmup` untimed ones. */
export async function firstCallbacks(stack: TestStack, notify: Bundle, floor: Bundle, count = 1_000, warmup = 20): Promise<FirstCallbacks> {
  const now = Date.now();
  const runId = now.toString(36);
  const orders = Array.from({ length: warmup + count }, (_, i) => ({
    outTradeNo: `e2e${runId}${String(i).padStart(6, '0')}`,
    totalFee: 1_000 + (i % 9_000),
  }));
  const db = seedClient(stack);
  await batchWrite(
    db,
    stack.table,
    orders.map((o) => pendingOrder(o.outTradeNo, o.totalFee, now)),
  );
  const pairs = orders.map((o, i) => ({
    notify: callbackEvent(o.outTradeNo, o.totalFee, `4201${String(now % 1e8).padStart(8, '0')}${String(i).padStart(16, '0')}`),
    floor: { pk: `floor-${runId}-${i}` },
  }));
  const env = {
    WECHATPAY_APPID: TEST_MERCHANT.appId,
    WECHATPAY_MCHID: TEST_MERCHANT.mchId,
    WECHATPAY_API_KEY: TEST_MERCHANT.apiKey,
    WECHATPAY_BASE_URL: stack.emulator.url,
    WECHATPAY_NOTIFY_URL: stack.notifyUrl,
    ORDERS_TABLE: stack.table,
    DYNAMODB_ENDPOINT: stack.dynamoEndpoint,
    AWS_ENDPOINT_URL_DYNAMODB: stack.dynamoEndpoint,
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    // As deployed: INFO lines and metrics on (the lines go to a discarded stdout).
    POWERTOOLS_LOG_LEVEL: 'INFO',
    POWERTOOLS_METRICS_DISABLED: 'false',
  };
  const jobFile = join(OUT, 'e2e.job.json');
  const outFile = join(OUT, 'e2e.out.json');
  writeFileSync(
    jobFile,
    JSON.stringify({ notify: notify.file, floor: floor.file, env, warmup: pairs.slice(0, warmup), pairs: pairs.slice(warmup) }),
  );
  await runDiscardingStdout(['--no-warnings', join(ROOT, 'bench/e2e-child.mjs'), jobFile, outFile]);
  const result = JSON.parse(readFileSync(outFile, 'utf8')) as { notifyMs: number[]; floorMs: number[]; answers: string[] };
  const success = result.answers.filter((body) => body.includes('<return_code><![CDATA[SUCCESS]]></return_code>')).length;
  let paid = 0;
  const timed = orders.slice(warmup);
  for (let i = 0; i < timed.length; i += 100) {
    const keys = timed.slice(i, i + 100).map((o) => ({ pk: o.outTradeNo }));
    let request: Record<string, { Keys: Array<Record<string, unknown>>; ConsistentRead?: boolean }> | undefined = {
      [stack.table]: { Keys: keys, ConsistentRead: true },
    };
    while (request && Object.keys(request).length > 0) {
      const read = await db.send(new BatchGetCommand({ RequestItems: request }));
      paid += (read.Responses?.[stack.table] ?? []).filter((item) => item.status === 'PAID' && item.paidVia === 'notify').length;
      request = read.UnprocessedKeys as typeof request;
    }
  }
  db.destroy();
  return { callbacks: result.notifyMs.length, success, paid, notifyMs: percentiles(result.notifyMs), floorMs: percentiles(result.floorMs) };
}
