import { appPayParams, jsapiPayParams } from '../wechatpay/pay-params';
import type { AppConfig } from '../config';
import type { Order } from './model';

export type PayObject =
  | ReturnType<typeof jsapiPayParams>
  | { codeUrl: string; qrCode: string }
  | { mwebUrl: string }
  | ReturnType<typeof appPayParams>;

/**
 * Exactly what the frontend needs to start paying, by trade type (README: HTTP API, `POST /orders`),
 * under the order's own app (the default app for orders made before apps were recorded).
 */
export async function payObject(order: Order, config: AppConfig, now: Date): Promise<PayObject> {
  const prepayId = order.prepayId as string;
  const appId = order.appId ?? config.appId;
  switch (order.tradeType) {
    case 'JSAPI':
      return jsapiPayParams({ appId, prepayId, signType: order.signType, apiKey: config.apiKey, now });
    case 'APP':
      return appPayParams({
        appId,
        mchId: config.mchId,
        prepayId,
        signType: order.signType,
        apiKey: config.apiKey,
        now,
      });
    case 'NATIVE': {
      // Loaded here so that only createOrder's bundle carries the QR library.
      const { toDataURL } = await import('qrcode');
      const codeUrl = order.codeUrl as string;
      return { codeUrl, qrCode: await toDataURL(codeUrl, { errorCorrectionLevel: 'M', margin: 2, width: 256 }) };
    }
    case 'MWEB':
      return { mwebUrl: order.mwebUrl as string };
  }
}
