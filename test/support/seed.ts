/**
 * Seeding at volume, for the bench's figures at size: written straight to
 * DynamoDB and to the emulator's memory. Through the handlers (made, paid, called back) an order
 * takes about 13 ms here, over two minutes for a day of 10,000 payments; this way, a few seconds.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { createOrder, payOrder } from '../../dev/emulator/orders';
import { dayShard } from '../../lib/orders/store';
import { newOutTradeNo } from '../../lib/wechatpay/ids';
import { fromBeijingTimestamp, toBeijingTimestamp } from '../../lib/wechatpay/time';
import { create } from './api';
import { eventually } from './eventually';
import type { TestStack } from './stack';

/** A document client of its own on the stack's dynalite, so that seeding shows in no request count. */
export function seedClient(stack: TestStack): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: stack.dynamoEndpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
  );
}

/** Puts `items` in batches of 25, `parallel` batches at a time, until DynamoDB has taken every one. */
export async function batchWrite(db: DynamoDBDocumentClient, table: string, items: object[], parallel = 4): Promise<void> {
  const batches: object[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      let requests = batches[next++]!.map((Item) => ({ PutRequest: { Item } }));
      while (requests.length > 0) {
        const result = await db.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
        requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

type Item = Record<string, unknown>;

async function storedItem(db: DynamoDBDocumentClient, stack: TestStack, outTradeNo: string): Promise<Item | undefined> {
  return (await db.send(new GetCommand({ TableName: stack.table, Key: { pk: outTradeNo }, ConsistentRead: true }))).Item;
}

/**
 * One Beijing day (`yyyyMMdd`, before today) of `orders` payments: at the emulator, paid that day,
 * so in its bill; in the orders table as this backend records them, all PAID but `lost` of them,
 * still PENDING as if their callbacks never came (and recovery had not run).
 *
 * Two orders are made the real way, through the handlers: one paid at the emulator and recorded by
 * its callback (the emulator must be delivering callbacks), one left pending and paid at the
 * emulator without a callback. Every other order is a copy of one of those two, with its own
 * out_trade_no, amount, prepay id, transaction and time of payment: at the emulator made by its own
 * createOrder and payOrder, in the table the template's item with those fields changed.
 */
export async function seedPaidDay(stack: TestStack, { day, orders, lost }: { day: string; orders: number; lost: number }): Promise<void> {
  if (orders < 2 || lost < 0 || lost >= orders)
    throw new Error(`seedPaidDay needs at least 2 orders and 0 <= lost < orders (${orders}, ${lost})`);
  const dayStart = fromBeijingTimestamp(`${day}000000`);
  if (!dayStart) throw new Error(`not a day: ${day}`);
  // Spread over the day, to the second (time_end's resolution).
  const paidAtOf = (i: number) => new Date(dayStart.getTime() + Math.floor((i * 86_400) / orders) * 1000);
  const amountOf = (i: number) => 100 + (i % 900);
  const made = async (i: number) => {
    const created = await create({ tradeType: 'APP', totalFee: amountOf(i), description: `A day of payments ${day}` });
    if (created.status !== 201) throw new Error(`createMerchantOrder answered ${created.status}: ${created.raw}`);
    return created.body.outTradeNo;
  };
  const db = seedClient(stack);
  const { state } = stack.emulator;
  try {
    // Order 0: paid at the emulator, recorded by its callback, its event confirmed (the outbox
    // emptied), so that no copy carries an event to publish.
    const paid = await made(0);
    const answer = await fetch(`${stack.emulator.url}/__sim/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ out_trade_no: paid, time_end: toBeijingTimestamp(paidAtOf(0)) }),
    });
    if (answer.status !== 200) throw new Error(`the emulator did not take the payment of ${paid}: ${answer.status} ${await answer.text()}`);
    const paidItem = await eventually(async () => {
      const item = await storedItem(db, stack, paid);
      return item?.status === 'PAID' && item.outboxDue === undefined ? item : undefined;
    }, 10_000);
    // Order 1, when any are lost: paid at the emulator, which never calls back; pending here.
    const pending = lost > 0 ? await made(1) : undefined;
    const pendingItem = pending ? await storedItem(db, stack, pending) : undefined;
    if (pending) payOrder(state, state.orders.get(pending)!, paidAtOf(1));

    const items: Item[] = [];
    for (let i = pending ? 2 : 1; i < orders; i += 1) {
      const isLost = i <= lost;
      const template = isLost ? pendingItem! : paidItem;
      const outTradeNo = newOutTradeNo(paidAtOf(i));
      const totalFee = amountOf(i);
      const atEmulator = state.orders.get(template.outTradeNo as string)!;
      const copy = createOrder(
        state,
        { ...atEmulator.params, out_trade_no: outTradeNo, total_fee: String(totalFee) },
        atEmulator.signType,
        paidAtOf(i),
      );
      payOrder(state, copy, paidAtOf(i));
      const paidAt = fromBeijingTimestamp(copy.timeEnd!)!.toISOString();
      items.push({
        ...template,
        pk: outTradeNo,
        outTradeNo,
        totalFee,
        unifiedOrder: { ...(template.unifiedOrder as Item), out_trade_no: outTradeNo, total_fee: String(totalFee) },
        prepayId: copy.prepayId,
        ...(isLost ? {} : { transactionId: copy.transactionId, paidAt, paidDayShard: dayShard(paidAt) }),
      });
    }
    await batchWrite(db, stack.table, items);
  } finally {
    db.destroy();
  }
}
