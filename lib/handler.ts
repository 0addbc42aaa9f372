import type { Context } from 'aws-lambda';
import { logger } from './log';
import { flushMetrics } from './metrics';

/**
 * The one way through every function. Each invocation gets the Lambda request id and the cold start
 * flag on every log line, its metrics flushed once at its end, and any failure its work lets through
 * answered by `onError`: the route chooses the shape of that answer (a JSON API error, WeChat Pay's
 * XML FAIL). Without `onError` the failure is thrown, for Lambda to record and retry (a schedule).
 */
export function lambdaHandler<Event, Answer>(
  work: (event: Event, context?: Context) => Promise<Answer>,
  onError?: (error: unknown) => Answer,
): (event: Event, context?: Context) => Promise<Answer> {
  return async (event, context) => {
    // Absent when a script or a test calls the handler directly.
    if (context) logger.addContext(context);
    try {
      return await work(event, context);
    } catch (error) {
      if (!onError) throw error;
      return onError(error);
    } finally {
      await flushMetrics();
    }
  };
}

/**
 * When a run must stop taking up new work: `marginMs` before Lambda's own deadline, so that every
 * call it started can finish, or `withoutLambdaMs` from now when there is no Lambda context (a
 * script or a test); never less than a second from now.
 */
export function workDeadline(context: Context | undefined, marginMs: number, withoutLambdaMs: number): number {
  const budget = context?.getRemainingTimeInMillis ? context.getRemainingTimeInMillis() - marginMs : withoutLambdaMs;
  return Date.now() + Math.max(budget, 1_000);
}
