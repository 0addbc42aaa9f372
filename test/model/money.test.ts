import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { putProduct } from '../support/api';
import { startTestStack, type TestStack } from '../support/stack';
import { startCallbackCapture, type CallbackCapture } from './capture';
import { firstDeployment, startSecondDeployment, type SecondDeployment } from './deployment';
import { MODEL_CATALOG, runMoneyModel, systemOf, type System } from './money-model';

/**
 * The model of the money at CI size (a few hundred commands); `npm run test:model` runs 100,000
 * (MODEL_SIZE=full). MODEL_SEED and MODEL_PATH replay a failure fast-check reported.
 */
const FULL = process.env.MODEL_SIZE === 'full';
const COMMANDS = Number(process.env.MODEL_COMMANDS ?? (FULL ? 100_000 : 300));

const rounded = (record: Record<string, number>) => Object.fromEntries(Object.entries(record).map(([key, ms]) => [key, Math.round(ms)]));

let stack: TestStack;
let capture: CallbackCapture;
let second: SecondDeployment;
let system: System;

beforeAll(async () => {
  capture = await startCallbackCapture(TEST_MERCHANT.apiKey);
  // WeChat Pay's clock rules (5 minutes before a close, a minute between refunds) at a ten-thousandth.
  stack = await startTestStack({
    refunds: true,
    timeScale: 0.0001,
    env: { WECHATPAY_NOTIFY_URL: capture.notifyUrl, WECHATPAY_REFUND_NOTIFY_URL: capture.refundNotifyUrl },
  });
  for (const [sku, priceFen] of Object.entries(MODEL_CATALOG)) await putProduct(sku, { name: sku, priceFen });
  const first = await firstDeployment();
  // B: another deployment of the product on the same merchant, with its own tables, notify URLs and bus.
  second = await startSecondDeployment(stack, MODEL_CATALOG);
  system = systemOf(stack, {
    a: { product: first, capture, events: stack.events, table: stack.table },
    b: { product: second.product, capture: second.capture, events: second.events, table: second.table },
  });
});

afterAll(async () => {
  await second?.close();
  await stack?.close();
  await capture?.close();
});

it(
  'keeps every money invariant through random interleavings of orders, payments, callbacks, refunds, recovery, reconciliation and faults, in two deployments sharing the merchant',
  async () => {
    const started = Date.now();
    const seed = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);
    const { figures, seeds, failure } = await runMoneyModel(system, {
      commands: COMMANDS,
      maxCommands: 100,
      seed,
      path: process.env.MODEL_PATH,
      progress: (f) => {
        if (FULL)
          console.log(
            `[model] ${f.commands} commands, ${f.runs} runs, ${f.invariantChecks} invariant checks, ${Math.round((Date.now() - started) / 1000)} s`,
          );
      },
    });
    console.log(
      `[model] ${JSON.stringify({ commands: figures.commands, runs: figures.runs, invariantChecks: figures.invariantChecks, violations: figures.violations.length, shared: figures.shared, faultsInjected: figures.faultsInjected, faultsFired: figures.faultsFired, seconds: Math.round((Date.now() - started) / 1000), firstSeed: seeds[0], byCommand: figures.byCommand, msByCommand: rounded(figures.msByCommand), msChecking: Math.round(figures.msChecking), msSettling: Math.round(figures.msSettling) })}`,
    );
    if (failure) console.log(`[model] FAILED\n${failure}`);
    expect(failure).toBeUndefined();
    expect(figures.violations).toEqual([]);
  },
  FULL ? 6 * 3_600_000 : 120_000,
);
