import { describe, expect, it } from 'vitest';
import { readDoc } from '../support/markdown';
import { answerProblems, commandToRun, readTour } from '../support/readme-tour';

/**
 * The README's tour as test/dev/local/stack.test.ts runs it against the local stack: here, that it reads
 * as a tour (its commands, their answers, its ports and placeholders), and that the reading is right.
 */
describe("the README's tour", () => {
  const tour = readTour(readDoc('README.md'));

  it('is three requests, create, pay at the emulator, see it paid, each with the answer it gives', () => {
    expect(tour.steps.map((step) => step.command.split(' ').slice(0, 5).join(' '))).toEqual([
      'curl -s -X POST http://127.0.0.1:3000/orders',
      'curl -s -X POST http://127.0.0.1:3010/__sim/pay',
      'curl -s http://127.0.0.1:3000/orders/<outTradeNo>',
    ]);
    for (const step of tour.steps) expect(step.expected, step.command).toMatch(/^\{.*\}$/);
  });

  it('names the variable of every port it uses, and tells the reader what to put for every placeholder', () => {
    expect(tour.ports).toMatchObject({ 3000: 'PORT', 3010: 'WECHATPAY_SIM_PORT' });
    expect(tour.placeholders).toEqual(['outTradeNo']);
    const answers = [{ outTradeNo: '20260101abc', pay: { codeUrl: 'weixin://x' } }];
    const env = { PORT: '41000', WECHATPAY_SIM_PORT: '41010' };
    expect(tour.steps.map((step) => commandToRun(step.command, tour, answers, env).match(/127\.0\.0\.1:\d+\S*/)?.[0])).toEqual([
      '127.0.0.1:41000/orders',
      '127.0.0.1:41010/__sim/pay',
      '127.0.0.1:41000/orders/20260101abc',
    ]);
    expect(() => commandToRun('curl http://127.0.0.1:3000/orders/<token>', tour, answers, env)).toThrow(/does not tell the reader/);
    expect(() => commandToRun('curl http://127.0.0.1:9999/', tour, answers, env)).toThrow(/no variable for port 9999/);
  });
});

describe('an answer as the README shows it', () => {
  it('matches with "..." for any text in a string, and for any other members where it stands as one', () => {
    const shown = '{"outTradeNo":"...","status":"PAID","totalFee":2800,...,"transactionId":"42000..."}';
    expect(
      answerProblems(shown, { outTradeNo: 'x', status: 'PAID', totalFee: 2800, tradeType: 'NATIVE', transactionId: '4200012320260101' }),
    ).toEqual([]);
    expect(answerProblems(shown, { outTradeNo: 'x', status: 'PENDING', totalFee: 2800 })).toEqual([
      '$.status: "PENDING" is not "PAID"',
      '$.transactionId: missing',
    ]);
  });

  it('holds an object without "..." to exactly its members, and reads arrays', () => {
    expect(answerProblems('{"pay":{"codeUrl":"weixin://..."}}', { pay: { codeUrl: 'weixin://a', qrCode: 'data:' } })).toEqual([
      '$.pay.qrCode: there, but the README shows no "..." for it',
    ]);
    expect(answerProblems('{"events":[{"detail-type":"Order Paid",...}]}', { events: [{ 'detail-type': 'Order Paid', id: '1' }] })).toEqual(
      [],
    );
    expect(answerProblems('{"events":[{"detail-type":"Order Paid",...}]}', { events: [] })).toEqual([
      '$.events: 0 items',
      '$.events[0]: not an object',
    ]);
  });
});
