/** WeChat Pay's trade types: its own module, so that naming them loads nothing of the client. */
export const TRADE_TYPES = ['JSAPI', 'NATIVE', 'MWEB', 'APP'] as const;
export type TradeType = (typeof TRADE_TYPES)[number];
