import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { localStackPorts } from '../../support/processes';
import { eventually } from '../../support/eventually';
import { readDoc } from '../../support/markdown';
import { answerProblems, commandToRun, readTour, runTourCommand } from '../../support/readme-tour';

/** The real local stack, as `npm start` runs it, on free ports. */
let stack: ChildProcess;
let urls: { api: string; emulator: string; dynamodb: string; ordersTable: string; events: string; demo: string };
let output = '';
/** The ports it listens on, by the variable that set each. */
let ports: Record<string, string>;

beforeAll(async () => {
  ports = await localStackPorts();
  const env = { ...process.env, ...ports };
  stack = spawn('node_modules/.bin/tsx', ['dev/local/start.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  stack.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  urls = await new Promise((resolve, reject) => {
    stack.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (line.includes('"event":"ready"')) resolve(JSON.parse(line));
      }
    });
    stack.once('exit', (code) => reject(new Error(`the local stack exited with ${code}:\n${output.slice(-2000)}`)));
  });
}, 150_000);

afterAll(async () => {
  if (!stack || stack.exitCode !== null) return;
  const exited = new Promise((resolve) => stack.once('exit', resolve));
  stack.kill('SIGTERM');
  await exited;
});

/** The few fields these tests read from the API's and the emulator's answers. */
interface Answer {
  outTradeNo: string;
  status: string;
  transactionId?: string;
  transaction_id?: string;
  pay: { codeUrl: string };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer };
}

describe('the local stack (npm start)', () => {
  it("serves the merchant routes to the merchant's server only: its token is checked, others get 401", async () => {
    const refused = await fetch(`${urls.api}/merchant/products`, { headers: { authorization: 'Bearer not-the-token-0000000000' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const listed = await fetch(`${urls.api}/merchant/products`, { headers: { authorization: 'Bearer local-merchant-token' } });
    expect(listed.status).toBe(200);
    const { products } = (await listed.json()) as { products: Array<{ sku: string }> };
    expect(products.map((product) => product.sku).sort()).toEqual(['croissant', 'latte-large', 'matcha-cake']);
    const created = await post(
      `${urls.api}/merchant/orders`,
      { tradeType: 'NATIVE', totalFee: 9900, description: 'Membership' },
      { authorization: 'Bearer local-merchant-token' },
    );
    expect(created.status).toBe(201);
  }, 30_000);

  it('takes an order of the demo products from create to PAID over HTTP', async () => {
    const created = await post(`${urls.api}/orders`, { tradeType: 'NATIVE', items: [{ sku: 'croissant', quantity: 2 }] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ totalFee: 2400, description: 'Croissant ×2' });
    expect(created.body.pay.codeUrl).toMatch(/^weixin:\/\//);
    const paid = await post(`${urls.emulator}/__sim/pay`, { out_trade_no: created.body.outTradeNo });
    expect(paid.status).toBe(200);
    const order = await eventually(async () => {
      const answer = (await (await fetch(`${urls.api}/orders/${created.body.outTradeNo}`)).json()) as Answer;
      return answer.status === 'PAID' ? answer : undefined;
    }, 10_000);
    expect(order.transactionId).toBe(paid.body.transaction_id);
  }, 30_000);

  it("runs the README's tour as written: each curl in a shell, answering as the README shows", async () => {
    const tour = readTour(readDoc('README.md'));
    const answers: unknown[] = [];
    for (const step of tour.steps) {
      // Only what the README tells the reader to change: a placeholder, a port moved by its variable.
      const command = commandToRun(step.command, tour, answers, ports);
      const answer: unknown = JSON.parse(await runTourCommand(command));
      expect(answerProblems(step.expected ?? '', answer), `${command}\n→ ${JSON.stringify(answer)}`).toEqual([]);
      answers.push(answer);
    }
    expect(answers).toHaveLength(3);
  }, 30_000);

  it('publishes the payment to the local bus: GET /events lists it, the demo server shows what the page needs of it, clearOutbox confirms it', async () => {
    const created = await post(`${urls.api}/orders`, { tradeType: 'NATIVE', items: [{ sku: 'croissant', quantity: 1 }] });
    const id = created.body.outTradeNo;
    await post(`${urls.emulator}/__sim/pay`, { out_trade_no: id });
    type Listed = { events: Array<{ id: string; 'detail-type': string; source: string; time: string; detail: Record<string, unknown> }> };
    const listed = await eventually(async () => {
      const answer = (await (await fetch(`${urls.events}/events?outTradeNo=${id}`)).json()) as Listed;
      return answer.events.length > 0 ? answer : undefined;
    }, 10_000);
    expect(listed.events).toHaveLength(1);
    expect(listed.events[0]).toMatchObject({
      'detail-type': 'Order Paid',
      source: 'wechatpay.orders',
      detail: { outTradeNo: id, status: 'PAID', totalFee: 1200 },
    });
    expect(output).toContain(`"event":"Order Paid","outTradeNo":"${id}"`);
    // The demo server hands the page only what it shows: never the detail with the payer's openid.
    const viaDemo = (await (await fetch(new URL(`/events?outTradeNo=${id}`, urls.demo))).json()) as { events: unknown[] };
    expect(viaDemo.events).toEqual(
      listed.events.map((event) => ({ id: event.id, 'detail-type': event['detail-type'], time: event.time, status: event.detail.status })),
    );
    // EventBridge hands it to clearOutbox (through serverless offline's Lambda API), which empties the outbox.
    const db = new DynamoDBClient({
      endpoint: urls.dynamodb,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await eventually(async () => {
      const { Item } = await db.send(new GetItemCommand({ TableName: urls.ordersTable, Key: { pk: { S: id } } }));
      return Item && !Item.outboxShard && Item.outbox?.L?.length === 0 ? true : undefined;
    }, 20_000);
  }, 40_000);

  it('refunds a paid order over HTTP: mutual TLS to the emulator, its callback recorded', async () => {
    const merchant = { authorization: 'Bearer local-merchant-token' };
    const created = await post(`${urls.api}/merchant/orders`, { tradeType: 'NATIVE', totalFee: 500, description: 'Refund me' }, merchant);
    await post(`${urls.emulator}/__sim/pay`, { out_trade_no: created.body.outTradeNo });
    await eventually(async () => {
      const answer = (await (await fetch(`${urls.api}/orders/${created.body.outTradeNo}`)).json()) as Answer;
      return answer.status === 'PAID' ? true : undefined;
    }, 10_000);
    const refund = await post(
      `${urls.api}/merchant/orders/${created.body.outTradeNo}/refunds`,
      { refundFee: 200, idempotencyKey: `local-${Date.now()}` },
      merchant,
    );
    expect(refund.status).toBe(202);
    expect(refund.body.status).toBe('PROCESSING');
    // The emulator ends a refund 10 s after accepting it (time scale 1), then calls back.
    const order = await eventually(
      async () => {
        const answer = (await (await fetch(`${urls.api}/orders/${created.body.outTradeNo}`)).json()) as Answer & { refundedFee: number };
        return answer.refundedFee === 200 ? answer : undefined;
      },
      25_000,
      250,
    );
    expect(order.status).toBe('PAID');
  }, 40_000);

  it("logs a mini-program's payer in and pays under the mini-program: /__sim/login (for wx.login()), /auth/miniprogram, POST /orders with the token", async () => {
    const login = (await post(`${urls.emulator}/__sim/login`, { appId: 'wx00000000000000a2' })).body as unknown as {
      code: string;
      openid: string;
    };
    const session = await fetch(`${urls.api}/auth/miniprogram`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: login.code }),
    });
    expect(session.status).toBe(200);
    const { token } = (await session.json()) as { token: string };
    const created = await post(
      `${urls.api}/orders`,
      { tradeType: 'JSAPI', items: [{ sku: 'croissant', quantity: 1 }] },
      { authorization: `Bearer ${token}` },
    );
    expect(created.status).toBe(201);
    expect(created.body.pay).toMatchObject({ appId: 'wx00000000000000a2', signType: 'HMAC-SHA256' });
    const atWechatPay = (await (await fetch(`${urls.emulator}/__sim/orders/${created.body.outTradeNo}`)).json()) as {
      appid: string;
      openid: string;
    };
    expect(atWechatPay).toMatchObject({ appid: 'wx00000000000000a2', openid: login.openid });
    // A browser may send the token cross-origin: the preflight allows the header.
    const preflight = await fetch(`${urls.api}/orders`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:3020',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
  }, 30_000);

  it("signs an official account page's wx.config (any origin on the local stack)", async () => {
    const page = 'http://127.0.0.1:3020/checkout?from=wechat';
    const answer = await fetch(`${urls.api}/auth/jssdk-config?url=${encodeURIComponent(page)}`);
    expect(answer.status).toBe(200);
    const config = (await answer.json()) as { appId: string; timestamp: number; nonceStr: string; signature: string };
    const { apps } = (await (await fetch(`${urls.emulator}/__sim/platform`)).json()) as { apps: Record<string, { jsapiTicket: string }> };
    const ticket = apps[config.appId]!.jsapiTicket;
    const { createHash } = await import('node:crypto');
    expect(config.signature).toBe(
      createHash('sha1')
        .update(`jsapi_ticket=${ticket}&noncestr=${config.nonceStr}&timestamp=${config.timestamp}&url=${page}`)
        .digest('hex'),
    );
  }, 30_000);

  it('with every callback lost, the recovery schedule records the payment within about a minute, with no client polling', async () => {
    await post(`${urls.emulator}/__sim/faults`, { dropNotifies: 1_000_000 });
    const created = await post(`${urls.api}/orders`, { tradeType: 'NATIVE', items: [{ sku: 'latte-large', quantity: 1 }] });
    await post(`${urls.emulator}/__sim/pay`, { out_trade_no: created.body.outTradeNo });
    const db = new DynamoDBClient({
      endpoint: urls.dynamodb,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const started = Date.now();
    const item = await eventually(async () => {
      const { Item } = await db.send(new GetItemCommand({ TableName: urls.ordersTable, Key: { pk: { S: created.body.outTradeNo } } }));
      return Item?.status?.S === 'PAID' ? Item : undefined;
    }, 80_000);
    expect(item.paidVia?.S).toBe('recovery');
    console.log(`recovered a lost callback in ${Math.round((Date.now() - started) / 1000)} s`);
  }, 90_000);
});
