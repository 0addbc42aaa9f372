/**
 * The functions serverless.yml deploys. test/infra checks each one's packaged role and bundle; the
 * reliability suite runs each one's paths and checks its role against the calls it made. One list,
 * so that a function added to one check cannot be missing from the other.
 */
export const FUNCTIONS = [
  'createOrder',
  'queryOrder',
  'notify',
  'recoverOrders',
  'putProduct',
  'listProducts',
  'createMerchantOrder',
  'getMerchantOrder',
  'runReconciliation',
  'getReconciliation',
  'reconcile',
  'createRefund',
  'getRefund',
  'refundNotify',
  'miniProgramLogin',
  'officialAccountLogin',
  'jssdkConfig',
  'clearOutbox',
] as const;

export type FunctionName = (typeof FUNCTIONS)[number];
