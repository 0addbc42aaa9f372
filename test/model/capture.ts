import { createServer } from 'node:http';
import { listen, readBody } from '../../dev/emulator/http-server';
import { decryptReqInfo } from '../../lib/wechatpay/refund-notification';
import { parseXml } from '../../lib/wechatpay/xml';

/** A refund callback the emulator sent, with the ids read from its encrypted `req_info`. */
export interface CapturedRefundCallback {
  outRefundNo: string;
  refundStatus: string;
  body: string;
}

export interface CallbackCapture {
  /** The payment notify URL to configure (WECHATPAY_NOTIFY_URL). */
  notifyUrl: string;
  /** The refund notify URL to configure (WECHATPAY_REFUND_NOTIFY_URL) and give platform refunds. */
  refundNotifyUrl: string;
  /** The genuine payment callbacks of an order, oldest first. */
  payments(outTradeNo: string): string[];
  /** The genuine refund callbacks of an order's refunds, oldest first. */
  refunds(outTradeNo: string): CapturedRefundCallback[];
  close(): Promise<void>;
}

/**
 * Stands where the merchant's notify URLs are: it keeps every callback the emulator sends, genuine
 * and signed (or encrypted) with the merchant's key, and answers SUCCESS so the emulator stops
 * retrying. The model then hands them to the real handlers itself, when it chooses: late, twice,
 * out of order, or never (leaving the payment to recovery or reconciliation).
 */
export async function startCallbackCapture(apiKey: string): Promise<CallbackCapture> {
  const payments = new Map<string, string[]>();
  const refunds = new Map<string, CapturedRefundCallback[]>();
  const keep = <T>(map: Map<string, T[]>, key: string, value: T) => {
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  };
  const server = createServer((req, res) => {
    void (async () => {
      const body = ((await readBody(req)) as Buffer).toString('utf8');
      const fields = parseXml(body);
      if (req.url === '/refund-notify') {
        const inner = decryptReqInfo(fields.req_info ?? '', apiKey);
        if (inner.ok) {
          const { out_trade_no: outTradeNo = '', out_refund_no: outRefundNo = '', refund_status: refundStatus = '' } = inner.fields;
          keep(refunds, outTradeNo, { outRefundNo, refundStatus, body });
        }
      } else if (fields.out_trade_no) {
        keep(payments, fields.out_trade_no, body);
      }
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>');
    })();
  });
  const listening = await listen(server);
  return {
    notifyUrl: `${listening.origin}/notify`,
    refundNotifyUrl: `${listening.origin}/refund-notify`,
    payments: (outTradeNo) => payments.get(outTradeNo) ?? [],
    refunds: (outTradeNo) => refunds.get(outTradeNo) ?? [],
    close: () => listening.close(),
  };
}
