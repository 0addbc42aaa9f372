/**
 * The findings of the payment path's security review, each pinned by a test named after it,
 * through the handlers' real entry points on dynalite and the emulator.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { handler as notify } from '../../functions/notify';
import { createWechatPayClient } from '../../lib/wechatpay/client';
import { stringToSign } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { apiEvent, create as createMerchantOrder, order, putProduct } from '../support/api';
import { eventually } from '../support/eventually';
import { bearer, sessionToken } from '../support/identity';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  await stack.sim.reset();
});

/** Orders of any amount, as the merchant's server makes them: the checks below apply to both routes. */
async function create(body: unknown) {
  const { status, body: answer } = await createMerchantOrder(body);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status, body: answer as any };
}

async function db() {
  const { ordersContext } = await import('../../lib/runtime');
  return (await ordersContext()).store.db;
}

async function storedOrder(outTradeNo: string) {
  return (await (await db()).send(new GetCommand({ TableName: stack.table, Key: { pk: outTradeNo } }))).Item;
}

async function tableItems() {
  return (await (await db()).send(new ScanCommand({ TableName: stack.table, ConsistentRead: true }))).Items ?? [];
}

/** A server standing in for another integration's notify URL: keeps the callbacks it is sent. */
async function callbackCatcher() {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.end(buildXml({ return_code: 'SUCCESS', return_msg: 'OK' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
    bodies,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Regroups a genuine signed callback into a document naming another order as paid under the same
 * string to sign. Its `attach` carried `x&<forged fields>&tr=`: the field `tr` then swallows the
 * genuine fields up to `transaction_id`, which is read as the genuine one.
 */
function regroup(genuine: Record<string, string>, injected: string): Record<string, string> {
  const signed = stringToSign(genuine, '').slice(0, -'&key='.length);
  const swallowFrom = signed.indexOf(injected) + injected.length;
  const swallowTo = signed.indexOf('&transaction_id=', swallowFrom);
  const forged: Record<string, string> = { appid: genuine.appid as string, attach: 'x', sign: genuine.sign as string };
  const pairs = [
    ...injected.slice(1, -'&tr='.length).split('&'),
    `tr=${signed.slice(swallowFrom, swallowTo)}`,
    signed.slice(swallowTo + 1),
  ];
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    forged[pair.slice(0, at)] = pair.slice(at + 1);
  }
  // The same string to sign, so the genuine signature verifies the forged document.
  expect(stringToSign(forged, '')).toBe(stringToSign(genuine, ''));
  return forged;
}

describe('finding 1: a genuine callback re-split into a callback for another order', () => {
  it('a callback regrouped to name another order does not mark that order paid', async () => {
    // Order B: a real order of 100 yuan, made through the API.
    const b = await create({ tradeType: 'NATIVE', totalFee: 10_000, description: 'victim order' });
    expect(b.status).toBe(201);
    const victim = b.body.outTradeNo as string;

    // Order A: 1 fen, its attach carrying B's fields. The API now refuses such an attach (below),
    // so A is made straight at WeChat Pay, as an older integration or a pre-fix order could have.
    const injected = `&mch_id=${TEST_MERCHANT.mchId}&out_trade_no=${victim}&result_code=SUCCESS&return_code=SUCCESS&total_fee=10000&tr=`;
    expect(Buffer.byteLength(`x${injected}`)).toBeLessThanOrEqual(127);
    const catcher = await callbackCatcher();
    try {
      const attacker = `A${randomUUID().replaceAll('-', '').slice(0, 20)}`;
      const client = createWechatPayClient({ ...TEST_MERCHANT, baseUrl: stack.emulator.url });
      await client.unifiedOrder(
        {
          body: 'one fen',
          out_trade_no: attacker,
          total_fee: '1',
          spbill_create_ip: '203.0.113.9',
          notify_url: catcher.url,
          trade_type: 'NATIVE',
          product_id: 'p1',
          attach: `x${injected}`,
        },
        { signType: 'HMAC-SHA256' },
      );
      await stack.sim.pay(attacker);
      const genuine = parseXml(await eventually(async () => catcher.bodies[0]));

      const reply = parseXml(
        (
          await notify(
            apiEvent({ method: 'POST', path: '/wechatpay/notify', body: buildXml(regroup(genuine, injected)), contentType: 'text/xml' }),
          )
        ).body as string,
      );
      expect(reply.return_code).toBe('FAIL');
      expect(reply.return_msg).toMatch(/"&" or "="/);
      expect((await storedOrder(victim))?.status).toBe('PENDING');
    } finally {
      await catcher.close();
    }
  });

  it.each([
    ['&', 'a&out_trade_no=B'],
    ['=', 'total_fee=1'],
  ])('an attach holding "%s" is refused before anything is stored', async (_char, attach) => {
    const before = await tableItems();
    const answer = await create({ tradeType: 'NATIVE', totalFee: 1, description: 'x', attach });
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('attach');
    expect(answer.body.error.message).toMatch(/"&" or "="/);
    expect(await tableItems()).toEqual(before);
  });
});

describe('finding 2: a retried create after expiry said "expired unpaid" without asking WeChat Pay', () => {
  async function expire(outTradeNo: string) {
    await (
      await db()
    ).send(
      new UpdateCommand({
        TableName: stack.table,
        Key: { pk: outTradeNo },
        UpdateExpression: 'SET expiresAt = :past, createdAt = :created',
        ExpressionAttributeValues: {
          ':past': new Date(Date.now() - 1_000).toISOString(),
          ':created': new Date(Date.now() - 3_600_000).toISOString(),
        },
      }),
    );
  }

  it('a paid order whose callback is late is answered PAID, not expired', async () => {
    const request = { tradeType: 'NATIVE', totalFee: 300, description: 'late callback', idempotencyKey: randomUUID() };
    const first = await create(request);
    await stack.sim.faults({ dropNotifies: 100 });
    await stack.sim.pay(first.body.outTradeNo);
    await expire(first.body.outTradeNo);

    const again = await create(request);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ outTradeNo: first.body.outTradeNo, status: 'PAID' });
    expect(again.body.pay).toBeUndefined();
    expect((await storedOrder(first.body.outTradeNo))?.status).toBe('PAID');
  });

  it('an unpaid order is closed with WeChat Pay before it is called expired', async () => {
    const request = { tradeType: 'NATIVE', totalFee: 300, description: 'abandoned', idempotencyKey: randomUUID() };
    const first = await create(request);
    await expire(first.body.outTradeNo);

    const again = await create(request);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('ORDER_EXPIRED');
    const sim = await stack.sim.order(first.body.outTradeNo);
    const endpoints = sim.calls.map((call) => call.endpoint);
    expect(endpoints.slice(0, 2)).toEqual(['unifiedorder', 'orderquery']);
    expect(sim.calls.filter((call) => call.endpoint === 'closeorder').at(-1)?.result_code).toBe('SUCCESS');
    expect((await storedOrder(first.body.outTradeNo))?.status).toBe('CLOSED');
  });

  it('when WeChat Pay cannot be asked, the answer is a retryable 502, not expired', async () => {
    const request = { tradeType: 'NATIVE', totalFee: 300, description: 'unreachable', idempotencyKey: randomUUID() };
    const first = await create(request);
    await expire(first.body.outTradeNo);
    await stack.sim.faults({ systemError: { orderquery: 10 } });

    const again = await create(request);
    expect(again.status).toBe(502);
    expect(again.body.error.message).toMatch(/try again/);
    expect((await storedOrder(first.body.outTradeNo))?.status).toBe('PENDING');
  });
});

describe('finding 3: bad requests passed validation and failed after the order was stored', () => {
  const mweb = (h5Info: Record<string, unknown>) => ({ tradeType: 'MWEB', totalFee: 1, description: 'h5', sceneInfo: { h5_info: h5Info } });
  const wap = { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'Shop' };

  it.each([
    ['an emoji in wap_name', mweb({ ...wap, wap_name: 'Shop 🛒' }), 'sceneInfo.h5_info.wap_name'],
    ['an extra key in h5_info', mweb({ ...wap, extra: 'x' }), 'sceneInfo.h5_info.extra'],
    ['a wap_url of 1 KB', mweb({ ...wap, wap_url: `https://shop.example.com/${'a'.repeat(1024)}` }), 'sceneInfo.h5_info.wap_url'],
    [
      'a scene_info over 256 bytes',
      mweb({ ...wap, wap_url: `https://${'a'.repeat(150)}.example.com`, wap_name: '商'.repeat(40) }),
      'sceneInfo',
    ],
    ['an IOS h5_info without bundle_id', mweb({ type: 'IOS', app_name: 'App' }), 'sceneInfo.h5_info.bundle_id'],
    ['U+FFFE in the description', { tradeType: 'NATIVE', totalFee: 1, description: 'a\uFFFEb' }, 'description'],
    ['U+FFFF in the description', { tradeType: 'NATIVE', totalFee: 1, description: 'a\uFFFFb' }, 'description'],
    ['U+FFFF in attach', { tradeType: 'NATIVE', totalFee: 1, description: 'x', attach: 'a\uFFFF' }, 'attach'],
  ])('%s: 400 naming the field, nothing stored', async (_name, body, field) => {
    const before = await tableItems();
    const answer = await create(body);
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.error.field).toBe(field);
    expect(await tableItems()).toEqual(before);
  });

  it('a 450 KB wap_url: 413 before the body is parsed, nothing stored', async () => {
    const before = await tableItems();
    const answer = await create(mweb({ ...wap, wap_url: `https://shop.example.com/${'a'.repeat(450 * 1024)}` }));
    expect(answer.status).toBe(413);
    expect(answer.body.error.code).toBe('BODY_TOO_LARGE');
    expect(await tableItems()).toEqual(before);
  });

  it('a complete, valid h5_info of each type still makes an MWEB order', async () => {
    for (const h5Info of [
      wap,
      { type: 'IOS', app_name: '王者荣耀', bundle_id: 'com.tencent.wzryIOS' },
      { type: 'Android', app_name: 'App', package_name: 'com.example.app' },
    ]) {
      const answer = await create(mweb(h5Info));
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
      expect(JSON.parse((await storedOrder(answer.body.outTradeNo))?.unifiedOrder.scene_info)).toEqual({ h5_info: h5Info });
    }
  });
});

describe('finding 4: the date in out_trade_no was the UTC date', () => {
  it('an order made at 01:00 Beijing (17:00 UTC the day before) carries the Beijing date', async () => {
    const { newOutTradeNo } = await import('../../lib/wechatpay/ids');
    expect(newOutTradeNo(new Date('2026-11-30T17:00:00Z')).slice(0, 8)).toBe('20261201');
    expect(newOutTradeNo(new Date('2026-11-30T15:59:59Z')).slice(0, 8)).toBe('20261130');
  });
});

describe('also: idempotency keys were global', () => {
  it("a second payer who sends another payer's key and body gets an order of their own", async () => {
    await putProduct('scoped-sku', { name: 'Scoped', priceFen: 100 });
    const body = { tradeType: 'NATIVE', items: [{ sku: 'scoped-sku', quantity: 1 }], idempotencyKey: 'shared-key-1' };
    const payerOne = { authorization: bearer(await sessionToken(TEST_MERCHANT.appId, 'oPayerOne')) };
    const first = await order(body, payerOne);
    const other = await order(body, { authorization: bearer(await sessionToken(TEST_MERCHANT.appId, 'oPayerTwo')) });
    const anonymous = await order(body);
    const again = await order(body, payerOne);
    expect([first.status, other.status, anonymous.status, again.status]).toEqual([201, 201, 201, 200]);
    expect(new Set([first.body.outTradeNo, other.body.outTradeNo, anonymous.body.outTradeNo]).size).toBe(3);
    expect(again.body.outTradeNo).toBe(first.body.outTradeNo);
  });
});
