import type { BillLayoutName, BillSummary } from './model';

/** The bills' columns and summaries, one table a layout, and the names WeChat Pay has used for each column. */

type TextField =
  | 'tradeTime'
  | 'appId'
  | 'mchId'
  | 'subMchId'
  | 'deviceInfo'
  | 'transactionId'
  | 'outTradeNo'
  | 'openid'
  | 'tradeType'
  | 'tradeState'
  | 'bankType'
  | 'feeType'
  | 'refundId'
  | 'outRefundNo'
  | 'refundType'
  | 'refundStatus'
  | 'productName'
  | 'attach'
  | 'rate'
  | 'rateRemark'
  | 'refundRequestTime'
  | 'refundSuccessTime';
type AmountField = 'settlementTotalFeeFen' | 'couponFeeFen' | 'refundFeeFen' | 'couponRefundFeeFen' | 'totalFeeFen' | 'appliedRefundFeeFen';

/** A column: its header (and the other names WeChat Pay has used for it) and how it is read. */
export type BillColumn =
  | { names: readonly string[]; field: TextField; type: 'text' | 'time' }
  | { names: readonly string[]; field: AmountField; type: 'amount' }
  | { names: readonly string[]; field: 'feeFen'; type: 'fee' };

export type SummaryColumn =
  | { names: readonly string[]; field: 'tradeCount'; type: 'count' }
  | { names: readonly string[]; field: Exclude<keyof BillSummary, 'tradeCount' | 'feeFen'>; type: 'amount' }
  | { names: readonly string[]; field: 'feeFen'; type: 'fee' };

export interface BillLayout {
  name: BillLayoutName;
  columns: readonly BillColumn[];
  summary: readonly SummaryColumn[];
}

const text = (field: TextField, ...names: string[]): BillColumn => ({ names, field, type: 'text' });
const time = (field: TextField, ...names: string[]): BillColumn => ({ names, field, type: 'time' });
const amount = (field: AmountField, ...names: string[]): BillColumn => ({ names, field, type: 'amount' });
const FEE: BillColumn = { names: ['手续费'], field: 'feeFen', type: 'fee' };

// The columns every layout starts with. 公众账号ID is 服务商的APPID and 特约商户号 is 子商户号 in some
// bills and documentation copies (CSDN copy of the old 9_6 page; WxJava WxPayBillResultTest).
const TRADE_COLUMNS: readonly BillColumn[] = [
  time('tradeTime', '交易时间'),
  text('appId', '公众账号ID', '服务商的APPID'),
  text('mchId', '商户号'),
  text('subMchId', '特约商户号', '子商户号'),
  text('deviceInfo', '设备号'),
  text('transactionId', '微信订单号'),
  text('outTradeNo', '商户订单号'),
  text('openid', '用户标识'),
  text('tradeType', '交易类型'),
  text('tradeState', '交易状态'),
  text('bankType', '付款银行'),
  text('feeType', '货币种类'),
];

const REFUND_COLUMNS: readonly BillColumn[] = [
  text('refundId', '微信退款单号'),
  text('outRefundNo', '商户退款单号'),
  amount('refundFeeFen', '退款金额'),
  amount('couponRefundFeeFen', '充值券退款金额'),
  text('refundType', '退款类型'),
  text('refundStatus', '退款状态'),
];

// After the trade columns of every current layout (the pre-2018 ALL bill had neither).
const SETTLEMENT_COLUMNS: readonly BillColumn[] = [amount('settlementTotalFeeFen', '应结订单金额'), amount('couponFeeFen', '代金券金额')];

// What was sold and WeChat Pay's fee on it: the same four columns in every layout.
const PRODUCT_COLUMNS: readonly BillColumn[] = [text('productName', '商品名称'), text('attach', '商户数据包'), FEE, text('rate', '费率')];

// From the refund columns to the end, as the current ALL and REFUND bills write them.
const REFUNDS_TO_END: readonly BillColumn[] = [
  ...REFUND_COLUMNS,
  ...PRODUCT_COLUMNS,
  amount('totalFeeFen', '订单金额'),
  amount('appliedRefundFeeFen', '申请退款金额'),
  text('rateRemark', '费率备注'),
];

const SUMMARY: readonly SummaryColumn[] = [
  { names: ['总交易单数'], field: 'tradeCount', type: 'count' },
  { names: ['应结订单总金额'], field: 'settlementTotalFeeFen', type: 'amount' },
  { names: ['退款总金额'], field: 'refundFeeFen', type: 'amount' },
  { names: ['充值券退款总金额'], field: 'couponRefundFeeFen', type: 'amount' },
  { names: ['手续费总金额'], field: 'feeFen', type: 'fee' },
  { names: ['订单总金额'], field: 'totalFeeFen', type: 'amount' },
  { names: ['申请退款总金额'], field: 'appliedRefundFeeFen', type: 'amount' },
];

/**
 * The bills WeChat Pay writes. Sources: the 27-column `ALL` header and 7-column summary of
 * pay.weixin.qq.com/doc/v2/merchant/4011985040 and of a downloaded bill
 * (TheNorthMemory/wechatpay-axios-plugin tests/fixtures/bill.ALL.csv); the 24-column `ALL` and
 * 5-column summary of the pre-2018 documentation (old 9_6 page, copied at
 * blog.csdn.net/weixin_33268205/article/details/111897134, and WxJava WxPayBillResultTest); the
 * `SUCCESS` and `REFUND` headers of WxJava WxPayBillResultTest.
 */
export const BILL_LAYOUTS: Readonly<Record<BillLayoutName, BillLayout>> = {
  ALL: {
    name: 'ALL',
    columns: [...TRADE_COLUMNS, ...SETTLEMENT_COLUMNS, ...REFUNDS_TO_END],
    summary: SUMMARY,
  },
  ALL_LEGACY: {
    name: 'ALL_LEGACY',
    columns: [
      ...TRADE_COLUMNS,
      // Before 免充值券 settlement, the order amount was the amount settled.
      amount('totalFeeFen', '总金额'),
      amount('couponFeeFen', '代金券或立减优惠金额', '企业红包金额'),
      text('refundId', '微信退款单号'),
      text('outRefundNo', '商户退款单号'),
      amount('refundFeeFen', '退款金额'),
      amount('couponRefundFeeFen', '代金券或立减优惠退款金额', '企业红包退款金额'),
      text('refundType', '退款类型'),
      text('refundStatus', '退款状态'),
      ...PRODUCT_COLUMNS,
    ],
    summary: [
      { names: ['总交易单数'], field: 'tradeCount', type: 'count' },
      { names: ['总交易额'], field: 'totalFeeFen', type: 'amount' },
      { names: ['总退款金额'], field: 'refundFeeFen', type: 'amount' },
      { names: ['总代金券或立减优惠退款金额', '总企业红包退款金额'], field: 'couponRefundFeeFen', type: 'amount' },
      { names: ['手续费总金额'], field: 'feeFen', type: 'fee' },
    ],
  },
  SUCCESS: {
    name: 'SUCCESS',
    columns: [
      ...TRADE_COLUMNS,
      ...SETTLEMENT_COLUMNS,
      ...PRODUCT_COLUMNS,
      amount('totalFeeFen', '订单金额'),
      text('rateRemark', '费率备注'),
    ],
    summary: SUMMARY,
  },
  REFUND: {
    name: 'REFUND',
    columns: [
      ...TRADE_COLUMNS,
      ...SETTLEMENT_COLUMNS,
      time('refundRequestTime', '退款申请时间'),
      time('refundSuccessTime', '退款成功时间'),
      ...REFUNDS_TO_END,
    ],
    summary: SUMMARY,
  },
};

/** The first header name of the summary: the line that ends the rows. */
export const SUMMARY_HEADER_START = '总交易单数';
