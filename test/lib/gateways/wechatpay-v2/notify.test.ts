import { describe, expect, it } from 'vitest';
import { v2NotifyDoor } from '../../../../lib/gateways/wechatpay-v2/notify';
import type { OrdersContext } from '../../../../lib/orders/context';
import { parseXml } from '../../../../lib/wechatpay/xml';
import { apiEvent } from '../../../support/api';

const event = apiEvent({ method: 'POST', path: '/wechatpay/notify', body: '<xml></xml>' });
const noContext = async () => ({}) as OrdersContext;

describe('v2NotifyDoor', () => {
  it("answers the handler's XML reply as text/xml, handing it the raw body", async () => {
    let received: Uint8Array | undefined;
    const door = v2NotifyDoor(async (body) => {
      received = body;
      return { reply: '<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>', outcome: 'PAID' };
    }, noContext);
    const answer = await door(event);
    expect(answer).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' } });
    expect(parseXml(answer.body as string).return_code).toBe('SUCCESS');
    expect(Buffer.from(received as Uint8Array).toString('utf8')).toBe('<xml></xml>');
  });

  it("answers any unexpected failure with WeChat Pay's XML FAIL, never a 5xx, so WeChat Pay calls again", async () => {
    const answer = await v2NotifyDoor(async () => {
      throw new Error('a bug');
    }, noContext)(event);
    expect(answer.statusCode).toBe(200);
    expect(parseXml(answer.body as string)).toEqual({
      return_code: 'FAIL',
      return_msg: 'temporarily unable to process the callback; please retry',
    });
  });
});
