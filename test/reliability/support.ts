import { appendFileSync } from 'node:fs';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TestStack } from '../support/stack';

/** `RELIABILITY_SCALE=full` (npm run test:reliability) runs the full-size figures; CI runs a smaller size. */
export const FULL = process.env.RELIABILITY_SCALE === 'full';
export const scale = (ci: number, full: number) => (FULL ? full : ci);

/**
 * Figures a test wants printed. Each file prints its own at its end; under `npm run test:reliability`
 * they are also gathered and printed together once every file has run (see vitest.config.ts here).
 */
export function reportFigures(section: string, figures: Record<string, unknown>): void {
  const file = process.env.RELIABILITY_FIGURES_FILE;
  if (file) appendFileSync(file, `${JSON.stringify({ section, figures })}\n`);
  console.log(`[reliability] ${section}: ${JSON.stringify(figures)}`);
}

/** Every item of the table, straight from DynamoDB (not through the product's store). */
export async function scanTable(stack: TestStack): Promise<Record<string, Record<string, unknown>>> {
  const db = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const items: Record<string, Record<string, unknown>> = {};
  let startKey: Record<string, never> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: stack.table, ExclusiveStartKey: startKey, ConsistentRead: true }));
    for (const item of page.Items ?? []) {
      const plain = unmarshall(item);
      items[plain.pk as string] = plain;
    }
    startKey = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (startKey);
  db.destroy();
  return items;
}

/** Runs `task` over `items` with at most `limit` at once. */
export async function inParallel<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------------------------------------------
// DynamoDB middleware: an independent count of PENDING → PAID writes, and injected faults.

type Input = {
  Key?: Record<string, unknown>;
  UpdateExpression?: string;
  ExpressionAttributeValues?: Record<string, unknown>;
  Item?: Record<string, unknown>;
  IndexName?: string;
  TableName?: string;
  RequestItems?: Record<string, unknown>;
};

function plain(value: unknown): unknown {
  // Before or after the document client marshalls, depending on where a middleware sits.
  if (value && typeof value === 'object' && 'S' in value) return (value as { S: unknown }).S;
  return value;
}

/** The order (pk) a request is about, if any. */
export function requestPk(input: Input): string | undefined {
  const pk = plain(input.Key?.pk ?? input.Item?.pk);
  return typeof pk === 'string' ? pk : undefined;
}

/** True when an UpdateItem sets status to PAID (`#status = :paid` with :paid = "PAID"). */
function setsPaid(input: Input): boolean {
  const set = input.UpdateExpression ?? '';
  const match = /#status = (:\w+)/.exec(set);
  return !!match && plain(input.ExpressionAttributeValues?.[match[1]!]) === 'PAID';
}

let middlewareSeq = 0;

/** The DynamoDB API action (as IAM names it) of a command, from the document or the low-level client. */
export function dynamoAction(commandName: string): string {
  const action = commandName.replace(/Command$/, '');
  return ({ Put: 'PutItem', Get: 'GetItem', Update: 'UpdateItem', Delete: 'DeleteItem' } as Record<string, string>)[action] ?? action;
}

/**
 * Counts, per order, the UpdateItem requests that DynamoDB accepted and that set status PAID. It reads
 * the wire requests and answers, not the order rows nor the product's own outcome values, so a bug
 * that writes PAID twice, or reports PAID without writing it, shows up as a count other than 1.
 */
export function countPaidTransitions(db: DynamoDBDocumentClient) {
  const counts = new Map<string, number>();
  const name = `count-paid-${middlewareSeq++}`;
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (dynamoAction(context.commandName as string) === 'UpdateItem' && setsPaid(args.input as Input)) {
        const pk = requestPk(args.input as Input)!;
        counts.set(pk, (counts.get(pk) ?? 0) + 1);
      }
      return result;
    },
    // After the retry middleware: a request the SDK retried is counted once per accepted attempt.
    { step: 'finalizeRequest', name, priority: 'low' },
  );
  return { counts, stop: () => db.middlewareStack.remove(name) };
}

export type FaultKind = 'ThrottlingException' | 'ProvisionedThroughputExceededException' | 'InternalServerError';
export const FAULT_KINDS: FaultKind[] = ['ThrottlingException', 'ProvisionedThroughputExceededException', 'InternalServerError'];

/** An error shaped as the SDK raises it for DynamoDB's answer. */
export function dynamoError(kind: FaultKind): Error {
  const error = new Error(`injected ${kind}`) as Error & { $fault: string; $metadata: Record<string, unknown> };
  error.name = kind;
  error.$fault = kind === 'InternalServerError' ? 'server' : 'client';
  error.$metadata = { httpStatusCode: kind === 'InternalServerError' ? 500 : 400, attempts: 1 };
  return error;
}

export interface FaultPlan {
  kind: FaultKind;
  /** 'before': the request never reaches DynamoDB; 'after': it is applied but its answer is lost. */
  timing: 'before' | 'after';
  /** Which matching request fails (1-based). */
  nth: number;
  /** Only requests this returns true for are counted (action as IAM names it: UpdateItem, Query, ...). */
  matches?: (action: string, input: Input) => boolean;
}

/**
 * Fails the nth matching DynamoDB request with a throttling or server error. It sits before the
 * SDK's retries (step initialize), so the product sees the error as it sees one that outlasted them.
 */
export function injectFault(db: DynamoDBDocumentClient, plan: FaultPlan) {
  const name = `fault-${middlewareSeq++}`;
  const state = { seen: 0, fired: false, commands: [] as string[] };
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const action = dynamoAction(context.commandName as string);
      if (plan.matches && !plan.matches(action, args.input as Input)) return next(args);
      state.seen += 1;
      state.commands.push(action);
      if (state.seen !== plan.nth) return next(args);
      state.fired = true;
      if (plan.timing === 'after') await next(args);
      throw dynamoError(plan.kind);
    },
    { step: 'initialize', name },
  );
  return { state, stop: () => db.middlewareStack.remove(name) };
}

/** Records the DynamoDB commands sent (name, and the index for a Query). */
export function recordCommands(db: DynamoDBDocumentClient) {
  const name = `record-${middlewareSeq++}`;
  const commands: Array<{ command: string; index?: string; pk?: string; table?: string }> = [];
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Input;
      const table = input.TableName ?? Object.keys(input.RequestItems ?? {})[0];
      commands.push({ command: dynamoAction(context.commandName as string), index: input.IndexName, pk: requestPk(input), table });
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { commands, stop: () => db.middlewareStack.remove(name) };
}
