import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTBOX_GRACE_MS } from '../../lib/events/outbox';
import type { OrdersContext } from '../../lib/orders/context';
import { recoverOrders } from '../../lib/orders/recovery';
import { ordersContext } from '../../lib/runtime';
import { tableInput, type TableResource } from '../../dev/local/tables';
import { callback, create } from '../support/api';
import { paidCallback } from '../support/callbacks';
import { validateTemplate } from '../support/cfn-validate';
import { deliveriesById, eventsOf } from '../support/events';
import { validateIam } from '../support/iam-validate';
import { cliEnv, ROOT, SERVERLESS } from '../support/packaging';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * examples/fulfilment: the sample consumer. Its stack packages and would deploy (the same offline
 * checks as the backend's); its handler fulfils each event once whatever EventBridge and the
 * backend redeliver; and subscribed to the backend's bus, it fulfils every paid order exactly once
 * even when the backend publishes an event again.
 */

const EXAMPLE = join(ROOT, 'examples/fulfilment');
// Plain JavaScript (the Lambda runtime's SDK, no build step): imported by path.
const HANDLER = join(EXAMPLE, 'handler.mjs');
type Fulfil = (
  event: unknown,
  options?: { db?: DynamoDBClient; table?: string; work?: (detail: Record<string, unknown>) => Promise<void>; now?: () => number },
) => Promise<'fulfilled' | 'duplicate'>;

let fulfil: Fulfil;
let stack: TestStack;
let ctx: OrdersContext;
let db: DynamoDBClient;
const TABLE = 'fulfilment-processed-events';
/** What the consumer's work was called with, in order. */
const fulfilled: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  ({ fulfil } = (await import(HANDLER)) as { fulfil: Fulfil });
  stack = await startTestStack({
    // The example's rule: Order Paid events of the backend's source, handed to its handler.
    eventTargets: [
      async (event) => {
        if (event.source !== 'wechatpay.orders' || event['detail-type'] !== 'Order Paid') return;
        await fulfil(event, { db, table: TABLE, work: async (detail) => void fulfilled.push(detail) });
      },
    ],
  });
  ctx = await ordersContext();
  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
  db = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  // The example's own table, as its serverless.yml defines it.
  await db.send(new CreateTableCommand(tableInput('ProcessedEventsTable' as TableResource, TABLE, join(EXAMPLE, 'serverless.yml'))));
});

afterAll(async () => {
  db?.destroy();
  await stack?.close();
});

const event = (eventId: string, outTradeNo = '20261123example0001') => ({
  version: '0',
  id: 'not-the-event-id',
  'detail-type': 'Order Paid',
  source: 'wechatpay.orders',
  detail: { eventId, outTradeNo, status: 'PAID', totalFee: 100, items: [] },
});

describe('the sample consumer', () => {
  it("subscribes to Order Paid on the backend's bus, imported from its stack, with retries and a dead-letter queue", () => {
    const config = readFileSync(join(EXAMPLE, 'serverless.yml'), 'utf8');
    expect(config).toContain("'Fn::ImportValue': '${param:backendService}-${sls:stage}-EventBusName'");
    expect(config).toMatch(/source: \[wechatpay\.orders\]\n\s+detail-type: \[Order Paid\]/);
  });

  it("packages, and its template passes the checks the backend's does (resources, references, IAM)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fulfilment-'));
    try {
      await promisify(execFile)(SERVERLESS, ['package', '--stage', 'dev', '--package', dir], { cwd: EXAMPLE, env: cliEnv() });
      const template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
      expect(validateTemplate(template)).toEqual([]);
      expect(await validateIam(template)).toEqual([]);
      const rule = Object.values(template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>).find(
        (resource) => resource.Type === 'AWS::Events::Rule',
      )!;
      expect(rule.Properties).toMatchObject({
        EventBusName: { 'Fn::ImportValue': 'wechatpay-dev-EventBusName' },
        EventPattern: { source: ['wechatpay.orders'], 'detail-type': ['Order Paid'] },
        Targets: [
          {
            RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
            DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] } },
          },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('fulfils an event once: a redelivery of the same eventId is a duplicate', async () => {
    const work: string[] = [];
    const run = (id: string) => fulfil(event(id), { db, table: TABLE, work: async (detail) => void work.push(detail.eventId as string) });
    expect(await run('a1')).toBe('fulfilled');
    expect(await run('a1')).toBe('duplicate');
    expect(await run('a2')).toBe('fulfilled');
    expect(work).toEqual(['a1', 'a2']);
  });

  it('ten deliveries of one event at once: fulfilled once; the others are duplicates or asked to retry', async () => {
    let calls = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => fulfil(event('b1'), { db, table: TABLE, work: async () => void (calls += 1) })),
    );
    expect(calls).toBe(1);
    expect(results.filter((result) => result.status === 'fulfilled' && result.value === 'fulfilled')).toHaveLength(1);
    for (const result of results) if (result.status === 'rejected') expect(String(result.reason)).toMatch(/retry later/);
    // EventBridge's retry then finds it done.
    expect(await fulfil(event('b1'), { db, table: TABLE, work: async () => void (calls += 1) })).toBe('duplicate');
  });

  it('a failed fulfilment releases its claim, and the retry fulfils', async () => {
    await expect(fulfil(event('c1'), { db, table: TABLE, work: async () => Promise.reject(new Error('warehouse down')) })).rejects.toThrow(
      'warehouse down',
    );
    expect(await fulfil(event('c1'), { db, table: TABLE, work: async () => undefined })).toBe('fulfilled');
  });

  it('a delivery that died mid-way holds its claim until its lease runs out; then a retry takes over', async () => {
    const hang = new Promise<void>(() => undefined);
    void fulfil(event('d1'), { db, table: TABLE, work: () => hang });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(fulfil(event('d1'), { db, table: TABLE, work: async () => undefined })).rejects.toThrow(/retry later/);
    const later = () => Date.now() + 121_000;
    expect(await fulfil(event('d1'), { db, table: TABLE, work: async () => undefined, now: later })).toBe('fulfilled');
    const { Item } = await db.send(new GetItemCommand({ TableName: TABLE, Key: { eventId: { S: 'd1' } } }));
    expect(Item?.status?.S).toBe('DONE');
    expect(Number(Item?.expiresAt?.N)).toBeGreaterThan(Date.now() / 1000 + 29 * 24 * 3600);
  });

  it("subscribed to the backend's bus: every paid order fulfilled once, even when the backend publishes its event again", async () => {
    const ids: string[] = [];
    stack.confirmEvents(false);
    try {
      for (let i = 0; i < 5; i += 1) {
        const created = await create({ tradeType: 'NATIVE', totalFee: 100 + i, description: 'fulfilment' });
        const id = created.body.outTradeNo as string;
        ids.push(id);
        const copy = paidCallback(id, 100 + i, { transaction_id: `42000000002026112377${String(i).padStart(8, '0')}` });
        await Promise.all([callback(copy), callback(copy), callback(copy)]);
      }
      // No confirmation came: the sweep publishes every event a second time.
      await stack.events.settled();
      await recoverOrders({ ...ctx, now: () => new Date(Date.now() + OUTBOX_GRACE_MS + 1_000) }, { deadline: Date.now() + 20_000 });
      await stack.events.settled();
    } finally {
      stack.confirmEvents(true);
    }
    const deliveries = deliveriesById(ids.flatMap((id) => eventsOf(stack, id)));
    expect([...deliveries.values()]).toEqual([2, 2, 2, 2, 2]);
    expect(fulfilled.map((detail) => detail.outTradeNo)).toEqual(ids);
  });
});
