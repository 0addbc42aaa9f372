import { nonceStr } from './ids';
import { sign, type SignType } from './sign';

/** Exactly what `wx.requestPayment` and WeixinJSBridge `getBrandWCPayRequest` take. */
export interface JsapiPayParams {
  appId: string;
  /** Unix seconds, as a string: a number here makes the payment sheet fail. */
  timeStamp: string;
  nonceStr: string;
  package: string;
  /** The order's sign type: a paySign of another type than the unified order's is refused. */
  signType: SignType;
  paySign: string;
}

/** What the WeChat SDK in a native app takes (`PayReq`); all names lower case. */
export interface AppPayParams {
  appid: string;
  partnerid: string;
  prepayid: string;
  package: 'Sign=WXPay';
  noncestr: string;
  timestamp: string;
  sign: string;
}

interface PayParamsInput {
  appId: string;
  prepayId: string;
  /** The sign type the unified order was made with. */
  signType: SignType;
  apiKey: string;
  now?: Date;
}

function unixSeconds(now: Date): string {
  return String(Math.floor(now.getTime() / 1000));
}

function requirePrepayId(prepayId: string): void {
  if (typeof prepayId !== 'string' || prepayId === '') {
    throw new TypeError('prepayId is required: take it from the unified order answer (prepay_id)');
  }
}

/** JSAPI (official-account pages) and mini-program payment parameters, `paySign` included. */
export function jsapiPayParams({ appId, prepayId, signType, apiKey, now = new Date() }: PayParamsInput): JsapiPayParams {
  requirePrepayId(prepayId);
  const unsigned = {
    appId,
    timeStamp: unixSeconds(now),
    nonceStr: nonceStr(),
    package: `prepay_id=${prepayId}`,
    signType,
  };
  return { ...unsigned, paySign: sign(unsigned, apiKey, signType) };
}

/** APP payment parameters, signed over exactly the six fields the WeChat SDK sends. */
export function appPayParams({
  appId,
  mchId,
  prepayId,
  signType,
  apiKey,
  now = new Date(),
}: PayParamsInput & { mchId: string }): AppPayParams {
  requirePrepayId(prepayId);
  const unsigned = {
    appid: appId,
    partnerid: mchId,
    prepayid: prepayId,
    package: 'Sign=WXPay' as const,
    noncestr: nonceStr(),
    timestamp: unixSeconds(now),
  };
  return { ...unsigned, sign: sign(unsigned, apiKey, signType) };
}
