import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Records the AWS calls that functions make in a test, each as IAM authorizes it: the action
 * (`dynamodb:GetItem`), the resource it names (a table and index, a parameter, a bus, by the name
 * the function used) and, for DynamoDB, the partition keys it touches (`dynamodb:LeadingKeys`). A
 * middleware on each SDK client records every command sent through it; the function a call belongs
 * to is the one whose work is running (`runAs`, an AsyncLocalStorage), so calls made while a test
 * sets things up, or by a handler running for another reason, are not counted to anyone.
 *
 * The recorder is one per process, kept on globalThis: a test that reloads the product's modules
 * (vi.resetModules, so that each function starts as a cold container would) still records into it.
 */

export type AwsService = 'dynamodb' | 'ssm' | 'events';

export type CallTarget =
  { kind: 'table'; table: string; index?: string } | { kind: 'parameter'; name: string } | { kind: 'bus'; name: string };

export interface RecordedCall {
  /** The function whose work made it. */
  fn: string;
  /** As IAM names it: `dynamodb:GetItem`, `ssm:GetParameter`, `events:PutEvents`. */
  action: string;
  target: CallTarget;
  /** Condition keys of the request: `dynamodb:LeadingKeys`, `events:source`, `events:detail-type`. */
  context: Record<string, string | string[]>;
}

/** The partition key attribute of a table, or of one of its indexes. */
export type HashKeyOf = (table: string, index?: string) => string | undefined;

type Input = Record<string, unknown>;

interface Recorder {
  storage: AsyncLocalStorage<string>;
  calls: RecordedCall[];
  /** Commands sent outside any function's work (set-up, other handlers). */
  unattributed: number;
  hashKeyOf: HashKeyOf;
  clients: WeakSet<object>;
}

const KEY = Symbol.for('wechatpay.test.aws-calls');

function recorder(): Recorder {
  const global = globalThis as { [KEY]?: Recorder };
  global[KEY] ??= { storage: new AsyncLocalStorage(), calls: [], unattributed: 0, hashKeyOf: () => 'pk', clients: new WeakSet() };
  return global[KEY];
}

/** Tells the recorder each table's and index's partition key (for a Query's `dynamodb:LeadingKeys`). */
export function setHashKeys(hashKeyOf: HashKeyOf): void {
  recorder().hashKeyOf = hashKeyOf;
}

/** Runs `work` as function `fn`: every call it makes is recorded as that function's. */
export function runAs<T>(fn: string, work: () => Promise<T>): Promise<T> {
  return recorder().storage.run(fn, work);
}

/** Every call recorded so far, in order. */
export function recordedCalls(): readonly RecordedCall[] {
  return recorder().calls;
}

export function unattributedCalls(): number {
  return recorder().unattributed;
}

/** Forgets every call recorded (a test file starting over). */
export function resetRecording(): void {
  recorder().calls.length = 0;
  recorder().unattributed = 0;
}

/** A key's value, before (document client) or after (low-level client) marshalling. */
function plain(value: unknown): unknown {
  if (value && typeof value === 'object' && 'S' in value) return (value as { S: unknown }).S;
  if (value && typeof value === 'object' && 'N' in value) return (value as { N: unknown }).N;
  return value;
}

function keyOf(item: unknown, table: string, index?: string): string {
  const attribute = recorder().hashKeyOf(table, index);
  const value = attribute ? plain((item as Input | undefined)?.[attribute]) : undefined;
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new Error(
      `aws-calls: no partition key (${attribute ?? 'unknown attribute'}) in a request on ${table}${index ? `/index/${index}` : ''}`,
    );
  }
  return String(value);
}

/** The partition key value a Query names: `<hash key> = :value` in its KeyConditionExpression. */
function queriedKey(input: Input, table: string, index?: string): string {
  const attribute = recorder().hashKeyOf(table, index);
  const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const values = (input.ExpressionAttributeValues ?? {}) as Record<string, unknown>;
  for (const clause of String(input.KeyConditionExpression ?? '').split(/\s+AND\s+/i)) {
    const match = /^\(?\s*([#\w.]+)\s*=\s*(:\w+)\s*\)?$/.exec(clause.trim());
    if (!match) continue;
    const name = names[match[1]!] ?? match[1];
    if (name === attribute) return String(plain(values[match[2]!]));
  }
  throw new Error(
    `aws-calls: a Query on ${table}${index ? `/index/${index}` : ''} whose KeyConditionExpression names no ${attribute} = :value`,
  );
}

const DOCUMENT_ACTIONS: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactGet: 'TransactGetItems',
  TransactWrite: 'TransactWriteItems',
};

/** The IAM action of a DynamoDB command, from the document or the low-level client. */
export function dynamoAction(commandName: string): string {
  const name = commandName.replace(/Command$/, '');
  return DOCUMENT_ACTIONS[name] ?? name;
}

type Call = Omit<RecordedCall, 'fn'>;

/** The calls IAM authorizes for one DynamoDB command (a batch or transaction: one per table or item). */
function dynamoCalls(commandName: string, input: Input): Call[] {
  const action = dynamoAction(commandName);
  const table = input.TableName as string;
  const index = input.IndexName as string | undefined;
  const on = (name: string, leadingKeys?: string[], indexName?: string): Call => ({
    action: `dynamodb:${action}`,
    target: { kind: 'table', table: name, ...(indexName ? { index: indexName } : {}) },
    context: leadingKeys ? { 'dynamodb:LeadingKeys': [...new Set(leadingKeys)] } : {},
  });
  switch (action) {
    case 'GetItem':
    case 'UpdateItem':
    case 'DeleteItem':
      return [on(table, [keyOf(input.Key, table)])];
    case 'PutItem':
      return [on(table, [keyOf(input.Item, table)])];
    case 'Query':
      return [on(table, [queriedKey(input, table, index)], index)];
    case 'Scan':
      return [on(table, undefined, index)];
    case 'BatchGetItem':
      return Object.entries(input.RequestItems as Record<string, { Keys: unknown[] }>).map(([name, { Keys }]) =>
        on(
          name,
          Keys.map((key) => keyOf(key, name)),
        ),
      );
    case 'BatchWriteItem':
      return Object.entries(
        input.RequestItems as Record<string, Array<{ PutRequest?: { Item: unknown }; DeleteRequest?: { Key: unknown } }>>,
      ).map(([name, requests]) =>
        on(
          name,
          requests.map((request) => keyOf(request.PutRequest?.Item ?? request.DeleteRequest?.Key, name)),
        ),
      );
    case 'TransactGetItems':
    case 'TransactWriteItems': {
      // IAM authorizes each item's own action (dynamodb:EnclosingOperation names the transaction).
      const items = input.TransactItems as Array<Record<string, Input>>;
      return items.flatMap((item) =>
        Object.entries(item).map(([kind, request]) => {
          const itemAction = (
            { Get: 'GetItem', Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' } as Record<
              string,
              string
            >
          )[kind];
          if (!itemAction) throw new Error(`aws-calls: a transaction item of kind ${kind}`);
          const name = request.TableName as string;
          return {
            action: `dynamodb:${itemAction}`,
            target: { kind: 'table' as const, table: name },
            context: { 'dynamodb:LeadingKeys': [keyOf(request.Key ?? request.Item, name)], 'dynamodb:EnclosingOperation': action },
          };
        }),
      );
    }
    default:
      throw new Error(`aws-calls: the recorder does not know DynamoDB's ${commandName}; teach it which resource and keys it names`);
  }
}

function ssmCalls(commandName: string, input: Input): Call[] {
  const action = `ssm:${commandName.replace(/Command$/, '')}`;
  if (action === 'ssm:GetParameter') return [{ action, target: { kind: 'parameter', name: input.Name as string }, context: {} }];
  // IAM authorizes GetParameters on each parameter it names.
  if (action === 'ssm:GetParameters')
    return (input.Names as string[]).map((name) => ({ action, target: { kind: 'parameter', name }, context: {} }));
  throw new Error(`aws-calls: the recorder does not know SSM's ${commandName}; teach it which parameters it names`);
}

function eventsCalls(commandName: string, input: Input): Call[] {
  if (commandName !== 'PutEventsCommand') throw new Error(`aws-calls: the recorder does not know EventBridge's ${commandName}`);
  // One authorization per entry, on its bus (the default bus when it names none).
  return (input.Entries as Array<{ EventBusName?: string; Source?: string; DetailType?: string }>).map((entry) => ({
    action: 'events:PutEvents',
    target: { kind: 'bus', name: entry.EventBusName ?? 'default' },
    context: {
      ...(entry.Source ? { 'events:source': entry.Source } : {}),
      ...(entry.DetailType ? { 'events:detail-type': entry.DetailType } : {}),
    },
  }));
}

const DESCRIBE: Record<AwsService, (commandName: string, input: Input) => Call[]> = {
  dynamodb: dynamoCalls,
  ssm: ssmCalls,
  events: eventsCalls,
};

interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: unknown }) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: { input: unknown }) => Promise<unknown>,
      options: { step: 'initialize'; name: string; priority?: 'high' },
    ): void;
  };
}

/**
 * Puts the recording middleware on an SDK client (once; it stays for the client's life). It sits
 * at the start of the initialize step, so it sees each command once, before the document client
 * marshalls it and before any retry, and records it even when it then fails.
 */
export function recordClient<Client extends object>(client: Client, service: AwsService): Client {
  const state = recorder();
  if (state.clients.has(client)) return client;
  state.clients.add(client);
  (client as unknown as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      const fn = state.storage.getStore();
      if (fn === undefined) state.unattributed += 1;
      else for (const call of DESCRIBE[service](String(context.commandName), args.input as Input)) state.calls.push({ fn, ...call });
      return next(args);
    },
    { step: 'initialize', name: `record-aws-calls-${service}`, priority: 'high' },
  );
  return client;
}
