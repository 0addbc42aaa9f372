import { buildXml } from './xml-build';

// XML cannot carry most control characters; a reply must never fail to build.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F]/g;

/** The SUCCESS reply never changes: built once. */
let successReply: string | undefined;

/** The answer WeChat Pay expects: SUCCESS stops its retries; FAIL (with a reason) asks for another try. */
export function notificationReply(returnCode: 'SUCCESS'): string;
export function notificationReply(returnCode: 'FAIL', reason: string): string;
export function notificationReply(returnCode: 'SUCCESS' | 'FAIL', reason?: string): string {
  if (returnCode === 'SUCCESS') return (successReply ??= buildXml({ return_code: 'SUCCESS', return_msg: 'OK' }));
  const returnMsg = (reason ?? '').replace(CONTROL, ' ').slice(0, 256) || 'FAIL';
  return buildXml({ return_code: 'FAIL', return_msg: returnMsg });
}
