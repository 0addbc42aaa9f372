/**
 * The merchant's trade bills on API v2 behind lib/orders' port (BillSource): `/pay/downloadbill`'s
 * `ALL` bill, gzipped, streamed and checked whole (lib/wechatpay/download-bill.ts) before any line
 * is handed out; its failures in the port's terms.
 */
import type { AppConfig } from '../../config';
import { GatewayError, type BillSource } from '../../orders/gateway';
import { openBill } from '../../wechatpay/download-bill';

export function wechatPayV2Bills(config: Pick<AppConfig, 'appId' | 'mchId' | 'apiKey' | 'baseUrl' | 'signType'>): BillSource {
  return {
    async open(billDate) {
      const { appId, mchId, apiKey, baseUrl, signType } = config;
      const bill = await openBill({ appId, mchId, apiKey, baseUrl, signType }, { billDate, billType: 'ALL', gzip: true });
      if (bill.ok) return { lines: () => bill.rows(), close: () => bill.close() };
      if (bill.reason === 'NO_BILL') return 'NO_BILL';
      // REFUSED: WeChat Pay refused the request itself; anything else may pass on a later run.
      const refused = bill.reason === 'REFUSED';
      throw new GatewayError(
        `WeChat Pay's bill for ${billDate} could not be read: ${bill.message}`,
        refused ? 'REFUSED' : 'UNREACHABLE',
        bill.reason,
        !refused,
      );
    },
  };
}
