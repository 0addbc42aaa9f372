/**
 * The fixed merchant the emulator, the local stack and the tests use when the environment names
 * none. These are WeChat Pay's public documentation samples, not anyone's credentials.
 */
export const TEST_MERCHANT = {
  appId: 'wxd930ea5d5a258f4f',
  mchId: '10000100',
  apiKey: '192006250b4c09247ec02edce69f6a2d',
} as const;
