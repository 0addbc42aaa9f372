import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';

// Logs and metrics on, before any product module is loaded: this file reads what a deployment would log.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});

const { loadConfig } = await import('../../lib/config');
const { clearCaches } = await import('@aws-lambda-powertools/parameters');
const { newOutTradeNo } = await import('../../lib/wechatpay/ids');
const { TEST_MERCHANT } = await import('../../dev/emulator/test-merchant');
const { listen, readBody } = await import('../../dev/emulator/http-server');
const { startTestStack } = await import('../support/stack');
const { ordersContext } = await import('../../lib/runtime');
const { recoverOrders } = await import('../../lib/orders/recovery');
const { handler: recoverOrdersHandler } = await import('../../functions/recoverOrders');
const { injectFault, reportFigures } = await import('./support');
const { callback, create, get } = await import('../support/api');
const { paidCallback } = await import('../support/callbacks');
const { sleep } = await import('../support/eventually');
const { captureOutput } = await import('../support/lambda');

const figures: Record<string, unknown> = {};
afterAll(() => reportFigures('secrets and observability', figures));

describe('the API key from SSM', () => {
  let server: Awaited<ReturnType<typeof listen>>;
  const requests: Array<{ target: string; body: { Name: string; WithDecryption?: boolean } }> = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    const ssm = createServer((req, res) => {
      void readBody(req).then((raw) => {
        const body = JSON.parse(String(raw));
        requests.push({ target: String(req.headers['x-amz-target']), body });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ Parameter: { Name: body.Name, Type: 'SecureString', Value: TEST_MERCHANT.apiKey, Version: 1 } }));
      });
    });
    server = await listen(ssm);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SSM: server.origin,
      AWS_REGION: 'ap-southeast-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
  });
  afterAll(async () => {
    for (const name of ['AWS_ENDPOINT_URL_SSM', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    clearCaches();
    await server.close();
  });

  const env = {
    WECHATPAY_APPID: TEST_MERCHANT.appId,
    WECHATPAY_MCHID: TEST_MERCHANT.mchId,
    WECHATPAY_NOTIFY_URL: 'https://pay.example.com/wechatpay/notify',
    ORDERS_TABLE: 'orders',
    WECHATPAY_API_KEY_PARAM: '/wechatpay/prod/api-key',
    // Set too, to show that the parameter wins over a key in the environment.
    WECHATPAY_API_KEY: 'envKeyThatMustNotBeUsed000000000',
  };

  it('is read once, decrypted, and served from the cache afterwards', async () => {
    const configs = await Promise.all([loadConfig(env), loadConfig(env)]);
    for (let i = 0; i < 20; i += 1) configs.push(await loadConfig(env));
    for (const config of configs) expect(config.apiKey).toBe(TEST_MERCHANT.apiKey);
    const reads = requests.filter((r) => r.target === 'AmazonSSM.GetParameter');
    expect(reads.length).toBeLessThanOrEqual(2); // the two at once may both miss the empty cache
    expect(reads[0]!.body).toEqual({ Name: '/wechatpay/prod/api-key', WithDecryption: true });
    const before = reads.length;
    clearCaches();
    await loadConfig(env);
    expect(requests.length).toBe(before + 1);
    figures.ssmReadsFor23Loads = before;
  });
});

describe('a full run, logged', () => {
  const lines: string[] = [];
  const responses: string[] = [];
  const OPENID = 'oSecretOpenid_Never_Shown_123';
  let stack: Awaited<ReturnType<typeof startTestStack>>;

  beforeAll(async () => {
    stack = await startTestStack();
    captureOutput(lines);

    const ctx = await ordersContext();
    await stack.sim.faults({ dropNotifies: 1_000_000_000 });
    // Create: JSAPI with an openid, and the other kinds.
    const jsapi = await create({
      tradeType: 'JSAPI',
      totalFee: 100,
      description: 'secret run',
      openid: OPENID,
      attach: 'a',
      idempotencyKey: 'secret-run-1',
    });
    const again = await create({
      tradeType: 'JSAPI',
      totalFee: 100,
      description: 'secret run',
      openid: OPENID,
      attach: 'a',
      idempotencyKey: 'secret-run-1',
    });
    const native = await create({ tradeType: 'NATIVE', totalFee: 200, description: 'secret run' });
    const byRecovery = await create({ tradeType: 'APP', totalFee: 300, description: 'secret run' });
    const toClose = await create({
      tradeType: 'MWEB',
      totalFee: 400,
      description: 'secret run',
      sceneInfo: { h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' } },
    });
    const bad = await create({ tradeType: 'JSAPI', totalFee: 100, description: 'x' });
    responses.push(jsapi.raw, again.raw, native.raw, byRecovery.raw, toClose.raw, bad.raw);
    const id = jsapi.body.outTradeNo as string;
    // Callbacks: good, duplicate, forged, another key, amount mismatch, XXE, a storage fault.
    await stack.sim.pay(id);
    const good = paidCallback(id, 100, { transaction_id: (await stack.sim.order(id)).transaction_id });
    const fault = injectFault(ctx.store.db, { kind: 'InternalServerError', timing: 'before', nth: 1 });
    for (const document of [
      good,
      good,
      good,
      good.replace(/<sign>.*<\/sign>/, `<sign>${'A'.repeat(64)}</sign>`),
      paidCallback(id, 100, {}, 'HMAC-SHA256', 'ffffffffffffffffffffffffffffffff'),
      paidCallback(native.body.outTradeNo as string, 1),
      `<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>`,
    ]) {
      responses.push((await callback(document)).raw);
    }
    fault.stop();
    // GET: paid, pending (asks WeChat Pay), unknown, malformed.
    for (const outTradeNo of [id, native.body.outTradeNo as string, '20990101unknownOrder000000', 'x'])
      responses.push((await get(outTradeNo)).raw);
    // Recovery: one payment whose callbacks were lost, one expired order closed.
    await stack.sim.pay(byRecovery.body.outTradeNo as string);
    await sleep(350);
    await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 10_000) }, { deadline: Date.now() + 10_000 });
    await recoverOrders({ ...ctx, now: () => new Date(Date.now() + 31 * 60_000) }, { deadline: Date.now() + 10_000 });
    await recoverOrdersHandler({} as never);
    vi.restoreAllMocks();
    figures.logLinesCaptured = lines.length;
  }, 60_000);
  afterAll(async () => {
    vi.restoreAllMocks();
    await stack?.close();
  });

  const json = () => lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);

  it('logs neither the API key nor any string-to-sign', () => {
    expect(lines.length).toBeGreaterThan(20);
    const leaks = lines.filter((line) => line.includes(TEST_MERCHANT.apiKey) || line.includes('&key=') || /key=[0-9a-f]{32}/i.test(line));
    expect(leaks).toEqual([]);
  });

  it('answers frontends without the openid', () => {
    expect(responses.filter((body) => body.includes(OPENID))).toEqual([]);
    expect(responses.filter((body) => /openid/i.test(body) && !/"field":"openid"/.test(body) && !/openid is/.test(body))).toEqual([]);
  });

  it('logs each transition as structured JSON with the order id, transition and outcome', () => {
    const entries = json().filter((entry) => entry.message !== undefined);
    const paid = entries.filter((entry) => entry.message === 'order paid');
    expect(paid.length).toBe(2);
    for (const entry of paid)
      expect(entry).toMatchObject({ level: 'INFO', service: 'wechatpay', transition: 'PENDING->PAID', outcome: 'PAID' });
    expect(paid.map((entry) => entry.source).sort()).toEqual(['notify', 'recovery']);
    expect(entries.some((entry) => entry.message === 'order closed' && entry.transition === 'PENDING->CLOSED')).toBe(true);
    expect(
      entries.some((entry) => entry.message === 'payment needs review' && entry.level === 'ERROR' && entry.review === 'AMOUNT_MISMATCH'),
    ).toBe(true);
    expect(entries.some((entry) => entry.message === 'payment callback refused' && entry.outcome === 'BAD_SIGNATURE')).toBe(true);
    for (const entry of entries.filter((e) => /paid|closed|refused|review/.test(String(e.message)))) {
      if (entry.outcome !== 'MALFORMED_XML') expect(entry.outTradeNo, JSON.stringify(entry)).toEqual(expect.any(String));
    }
    figures.structuredLogEntries = entries.length;
  });

  it('emits the business metrics as EMF, under the namespace and dimension the alarms watch', () => {
    const emf = json().filter((entry) => entry._aws !== undefined) as Array<
      Record<string, unknown> & {
        _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
      }
    >;
    const totals: Record<string, number> = {};
    const paths: string[] = [];
    for (const entry of emf) {
      for (const directive of entry._aws.CloudWatchMetrics) {
        expect(directive.Namespace).toBe('WechatPay');
        expect(directive.Dimensions.flat()).toContain('service');
        expect(entry.service).toBe('wechatpay');
        for (const { Name } of directive.Metrics) {
          totals[Name] =
            (totals[Name] ?? 0) +
            (Array.isArray(entry[Name]) ? (entry[Name] as number[]).reduce((a, b) => a + b, 0) : (entry[Name] as number));
          if (Name === 'PaymentsRecorded') {
            expect(directive.Dimensions.flat()).toContain('path');
            paths.push(entry.path as string);
          }
        }
      }
    }
    expect(totals).toMatchObject({
      OrdersCreated: 4,
      PaymentsRecorded: 2,
      DuplicateCallbacks: 1,
      SignatureFailures: 2,
      AmountMismatches: 1,
      RecoveryRepaired: 1,
      RecoveryClosed: 2,
      StorageErrors: 1,
    });
    expect(totals.CallbacksRefused).toBeGreaterThanOrEqual(1);
    expect(paths.sort()).toEqual(['notify', 'recovery']);
    figures.metricsEmitted = totals;

    // The alarms in serverless.yml watch exactly these metrics (and the daily reconciliation's mismatches and the events the sweep published again).
    const resources = (
      parseYaml(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as {
        resources: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
      }
    ).resources.Resources;
    const alarms = Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm')
      .map((resource) => resource.Properties);
    expect(alarms.map((alarm) => alarm.MetricName).sort()).toEqual([
      'AmountMismatches',
      'EventsRepublished',
      'ReconciliationMismatches',
      'RefundAnswersRefused',
      'SignatureFailures',
    ]);
    for (const alarm of alarms) {
      expect(alarm.Namespace).toBe('WechatPay');
      expect(alarm.Dimensions).toEqual([{ Name: 'service', Value: 'wechatpay' }]);
      expect(alarm.AlarmActions).toBeDefined();
    }
    const mismatch = alarms.find((alarm) => alarm.MetricName === 'AmountMismatches')!;
    expect(mismatch).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Statistic: 'Sum' });
  });
});

describe('out_trade_no', () => {
  it('cannot be guessed: unique, uniformly random over 20 characters (about 119 bits), not from Math.random', () => {
    const COUNT = 20_000;
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const ids = Array.from({ length: COUNT }, () => newOutTradeNo(new Date('2026-01-02T03:04:05Z')));
    spy.mockRestore();
    expect(new Set(ids).size).toBe(COUNT);
    for (const id of ids) expect(id).toMatch(/^20260102[0-9A-Za-z]{20}$/);
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    // Chi-square of each random position against the uniform distribution over 62 symbols (61 degrees of
    // freedom): the 1e-6 critical value is about 135, so a fair source fails this about once in 50,000 runs.
    let worst = 0;
    for (let position = 8; position < 28; position += 1) {
      const counts = new Array<number>(62).fill(0);
      for (const id of ids) counts[ALPHABET.indexOf(id[position]!)]! += 1;
      const expected = COUNT / 62;
      const chi = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
      worst = Math.max(worst, chi);
    }
    expect(worst).toBeLessThan(135);
    // Consecutive ids share no more random characters than chance (1 in 62 per position).
    let shared = 0;
    for (let i = 1; i < COUNT; i += 1) for (let p = 8; p < 28; p += 1) if (ids[i]![p] === ids[i - 1]![p]) shared += 1;
    const expectedShared = ((COUNT - 1) * 20) / 62;
    expect(Math.abs(shared - expectedShared)).toBeLessThan(6 * Math.sqrt(expectedShared));
    figures.outTradeNo = { ids: COUNT, randomBits: Math.floor(20 * Math.log2(62)), worstChiSquare: Math.round(worst) };
  });
});
