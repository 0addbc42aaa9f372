/**
 * The refund path's DynamoDB requests per operation: the real handlers (createRefund, getRefund,
 * refundNotify) and recovery's refund pass, on dynalite and the emulator, the refund sent to its
 * mutual-TLS port with the merchant's client certificate (a stack started with `refunds: true`).
 * The emulator's callbacks are dropped meanwhile, so that each count is of one operation alone: the
 * refund callbacks are delivered here, as the emulator would send them.
 */
import { randomUUID } from 'node:crypto';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import { handler as notify } from '../functions/notify';
import { nextRefundCheck, recoverRefunds } from '../lib/orders/refunds';
import { ordersContext } from '../lib/runtime';
import { encryptedRefundNotification } from '../dev/wechatpay-documents/refund-notification';
import { create, getRefund, refund, refundCallback } from '../test/support/api';
import { eventually } from '../test/support/eventually';
import type { SimRefund, TestStack } from '../test/support/stack';
import { callbackEvent, measuring, type Counter, type RequestCounts } from './dynamo';

/** 10 yuan: the bench's payment callbacks carry 1.50 yuan of coupons. */
const ORDER_FEN = 1_000;

/** What a check of one answer found wrong, as the bench's error. */
function expectThat(ok: boolean, what: string, got: unknown): void {
  if (!ok) throw new Error(`${what}: got ${JSON.stringify(got)}`);
}

export async function refundRequests(stack: TestStack, counter: Counter): Promise<RequestCounts> {
  const out: RequestCounts = {};
  const measure = measuring(counter, out);
  const ctx = await ordersContext();
  // Recovery as it runs once a refund's first check is due (a minute after it was asked for).
  const whenDue = { ...ctx, now: () => new Date(nextRefundCheck(0, Date.now()) + 1_000) };
  const recoveryRun = () => recoverRefunds(whenDue, { deadline: Date.now() + 10_000 });

  /** A paid order: paid at the emulator, its callback delivered to the notify handler. */
  const paidOrder = async () => {
    const created = await create({ tradeType: 'NATIVE', totalFee: ORDER_FEN, description: 'Bench refund' });
    expectThat(created.status === 201, 'createMerchantOrder', created.body);
    const outTradeNo = created.body.outTradeNo;
    await stack.sim.pay(outTradeNo);
    const { transaction_id: transactionId } = await stack.sim.order(outTradeNo);
    const reply = ((await notify(callbackEvent(outTradeNo, ORDER_FEN, transactionId))) as { body: string }).body;
    expectThat(reply.includes('SUCCESS'), 'the payment callback', reply);
    return { outTradeNo, transactionId: transactionId! };
  };
  /** The emulator's refund once it has ended (a scaled ten seconds after it was accepted). */
  const ended = (outTradeNo: string) =>
    eventually(async (): Promise<SimRefund | undefined> => {
      const [atEmulator] = (await stack.sim.order(outTradeNo)).refunds;
      return atEmulator && atEmulator.refund_status !== 'PROCESSING' ? atEmulator : undefined;
    });

  await stack.sim.faults({ dropNotifies: 1_000_000_000 });
  try {
    const paid = await paidOrder();
    const request = { refundFee: 300, reason: 'Returned', idempotencyKey: randomUUID() };
    let outRefundNo = '';
    await measure('refund request (202 PROCESSING)', async () => {
      const answer = await refund(paid.outTradeNo, request);
      expectThat(answer.status === 202 && answer.body.status === 'PROCESSING', 'the first refund request', answer.body);
      outRefundNo = answer.body.outRefundNo as string;
    });
    await measure('same idempotencyKey while PROCESSING (asks WeChat Pay again)', async () => {
      const answer = await refund(paid.outTradeNo, request);
      expectThat(answer.status === 202 && answer.body.outRefundNo === outRefundNo, 'the repeated refund request', answer.body);
    });
    const atEmulator = await ended(paid.outTradeNo);
    const document = encryptedRefundNotification({
      apiKey: TEST_MERCHANT.apiKey,
      appid: TEST_MERCHANT.appId,
      mch_id: TEST_MERCHANT.mchId,
      fields: {
        transaction_id: paid.transactionId,
        out_trade_no: paid.outTradeNo,
        out_refund_no: atEmulator.out_refund_no,
        refund_id: atEmulator.refund_id,
        total_fee: String(ORDER_FEN),
        refund_fee: String(atEmulator.refund_fee),
        refund_status: atEmulator.refund_status,
      },
    });
    await measure('refund callback (SUCCESS recorded)', async () => {
      const reply = await refundCallback(document);
      expectThat(reply.returnCode === 'SUCCESS', 'the refund callback', reply.raw);
    });
    await measure('duplicate refund callback', async () => {
      const reply = await refundCallback(document);
      expectThat(reply.returnCode === 'SUCCESS', 'the duplicate refund callback', reply.raw);
    });
    await measure('GET refund', async () => {
      const answer = await getRefund(paid.outTradeNo, outRefundNo);
      expectThat(answer.status === 200 && answer.body.status === 'SUCCESS', 'GET of the refund', answer.body);
    });
    await measure('same idempotencyKey once SUCCESS', async () => {
      const answer = await refund(paid.outTradeNo, request);
      expectThat(answer.status === 202 && answer.body.status === 'SUCCESS', 'the refund request repeated once settled', answer.body);
    });

    await measure('recovery refund pass, none due (one Query per shard)', async () => {
      const summary = await recoveryRun();
      expectThat(summary.refundOrders === 0, 'recovery with no refund due', summary);
    });
    // A refund whose callback is lost: WeChat Pay has ended it, this backend still has it PROCESSING.
    const lostCallback = await paidOrder();
    const processing = await refund(lostCallback.outTradeNo, { refundFee: ORDER_FEN, idempotencyKey: randomUUID() });
    expectThat(processing.body.status === 'PROCESSING', 'a refund', processing.body);
    await ended(lostCallback.outTradeNo);
    await measure('recovery, a PROCESSING refund whose callback was lost (refundquery: SUCCESS)', async () => {
      const summary = await recoveryRun();
      expectThat(summary.refundsSettled === 1, 'recovery of the refund whose callback was lost', summary);
    });
    // A refund WeChat Pay never received: SYSTEMERROR left it PROCESSING here.
    const neverReceived = await paidOrder();
    await stack.sim.faults({ systemError: { refund: 10 } });
    const answer = await refund(neverReceived.outTradeNo, { refundFee: ORDER_FEN, idempotencyKey: randomUUID() });
    await stack.sim.faults({ systemError: { refund: 0 } });
    expectThat(answer.body.status === 'PROCESSING', 'a refund met by SYSTEMERROR', answer.body);
    await measure('recovery, a PROCESSING refund WeChat Pay never received (refundquery: REFUNDNOTEXIST, sent again)', async () => {
      const summary = await recoveryRun();
      expectThat(summary.refundsResent === 1, 'recovery of the refund never received', summary);
    });
  } finally {
    // Forgets these orders and stops the dropped callbacks' retries, which would reach later sections; no faults left.
    await stack.sim.reset();
  }
  return out;
}
