/**
 * The one shape of a failure result in lib: `reason`, a fixed code to branch on, and `message`,
 * which says what is wrong without any secret, fit for a log line or an answer. A success is
 * `{ ok: true, ... }` with whatever it carries.
 */
export interface Failure<Reason extends string = string> {
  ok: false;
  reason: Reason;
  message: string;
}

export function failure<Reason extends string>(reason: Reason, message: string): Failure<Reason> {
  return { ok: false, reason, message };
}
