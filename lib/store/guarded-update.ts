import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { logger } from '../log';
import type { Table } from './table';

/**
 * Writes that hold only under a condition, built from named parts (as Powertools'
 * DynamoDBPersistenceLayer builds its condition from `idempotencyKeyDoesNotExist`,
 * `idempotencyKeyExpired`, …). A write keeps its SET, REMOVE and ADD parts, its condition parts and
 * the attribute names and values they use as lists, and joins them once, when it runs. A refused
 * write is not a failure: it answers undefined (or false), and says at debug level which named
 * conditions guarded it, for the log to explain it. Any other failure is the store's error, with
 * the SDK's as its `cause` (table.ts).
 *
 *     const paid = await new GuardedUpdate(table, { pk: outTradeNo })
 *       .when('orderIsPending', '#status = :expected', { ':expected': 'PENDING' }, { '#status': 'status' })
 *       .when('amountMatches', 'totalFee = :fee', { ':fee': 100 })
 *       .set('#status = :paid', { ':paid': 'PAID' })
 *       .remove('pendingShard', 'nextCheckAt')
 *       .run();
 */

type Names = Record<string, string>;
type Values = Record<string, unknown>;
type Item = Record<string, unknown>;

/** One named part of a condition: every part must hold for the write to. */
export interface ConditionPart {
  name: string;
  expression: string;
}

/** Adds `more` to `into`; a placeholder given twice must mean the same thing both times. */
function merge<T>(into: Record<string, T>, more: Record<string, T>, what: string): void {
  for (const [placeholder, value] of Object.entries(more)) {
    if (placeholder in into && into[placeholder] !== value) throw new Error(`attribute ${what} ${placeholder} given two values`);
    into[placeholder] = value;
  }
}

/** A part ANDed with others keeps its own ORs. */
const parenthesized = (expression: string) => (/\sOR\s/i.test(expression) ? `(${expression})` : expression);

/** What every guarded write has: its table and key, its named condition parts, the names and values its expressions use. */
abstract class Guarded {
  readonly #conditions: ConditionPart[] = [];
  readonly #names: Names = {};
  readonly #values: Values = {};

  protected constructor(
    protected readonly table: Table,
    readonly key: Item,
  ) {}

  /** Adds a condition part, named for the logs (`orderIsPaid`, `refundIsNew`), with the values and names it uses. */
  when(name: string, expression: string, values?: Values, names?: Names): this {
    this.#conditions.push({ name, expression });
    return this.uses(values, names);
  }

  /** Names and values the expressions use, given apart from the part that uses them. */
  uses(values?: Values, names?: Names): this {
    if (values) merge(this.#values, values, 'value');
    if (names) merge(this.#names, names, 'name');
    return this;
  }

  /** The condition's parts, in order. */
  get conditions(): readonly ConditionPart[] {
    return this.#conditions;
  }

  /** The condition, and the names and values of all expressions, as a request takes them. */
  protected joined(): { ConditionExpression?: string; ExpressionAttributeNames?: Names; ExpressionAttributeValues?: Values } {
    const parts = this.#conditions.map((part) => (this.#conditions.length > 1 ? parenthesized(part.expression) : part.expression));
    return {
      ...(parts.length > 0 ? { ConditionExpression: parts.join(' AND ') } : {}),
      ...(Object.keys(this.#names).length > 0 ? { ExpressionAttributeNames: this.#names } : {}),
      ...(Object.keys(this.#values).length > 0 ? { ExpressionAttributeValues: this.#values } : {}),
    };
  }

  /** Runs the request; undefined when the condition did not hold, logged with what guarded it. */
  protected async guarded<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
    const result = await this.table.conditional(what, call);
    if (result === undefined) {
      logger.debug('guarded write not applied', {
        table: this.table.name,
        request: what,
        key: this.key,
        conditions: this.#conditions.map((part) => part.name),
      });
    }
    return result;
  }
}

/** An UpdateItem that holds only under its condition. */
export class GuardedUpdate extends Guarded {
  readonly #set: string[] = [];
  readonly #remove: string[] = [];
  readonly #add: string[] = [];

  constructor(table: Table, key: Item) {
    super(table, key);
  }

  /** Adds assignments to the SET clause (`a = :a` or several, comma-separated). */
  set(assignments: string, values?: Values, names?: Names): this {
    this.#set.push(assignments);
    return this.uses(values, names);
  }

  /** Adds attributes (paths) to the REMOVE clause. */
  remove(...paths: string[]): this {
    this.#remove.push(...paths);
    return this;
  }

  /** Adds to the ADD clause (`counter :one`). */
  add(action: string, values?: Values, names?: Names): this {
    this.#add.push(action);
    return this.uses(values, names);
  }

  /** The UpdateExpression: each clause once, in the order SET, REMOVE, ADD. */
  get expression(): string {
    const clauses: string[] = [];
    if (this.#set.length > 0) clauses.push(`SET ${this.#set.join(', ')}`);
    if (this.#remove.length > 0) clauses.push(`REMOVE ${this.#remove.join(', ')}`);
    if (this.#add.length > 0) clauses.push(`ADD ${this.#add.join(', ')}`);
    if (clauses.length === 0) throw new Error('an update must SET, REMOVE or ADD something');
    return clauses.join(' ');
  }

  /** Runs it: the item as it now is, or undefined when the condition did not hold (nothing written). */
  run(): Promise<Item | undefined> {
    return this.guarded('UpdateItem', async () => {
      const result = await this.table.db.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: this.key,
          UpdateExpression: this.expression,
          ...this.joined(),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return result.Attributes ?? {};
    });
  }

  /** Runs it without reading the item back: whether it held. */
  async applied(): Promise<boolean> {
    const done = await this.guarded('UpdateItem', async () => {
      await this.table.db.send(
        new UpdateCommand({ TableName: this.table.name, Key: this.key, UpdateExpression: this.expression, ...this.joined() }),
      );
      return true;
    });
    return done === true;
  }
}

/** A PutItem (the item is `attributes` under `key`) that holds only under its condition. */
export class GuardedPut extends Guarded {
  constructor(
    table: Table,
    key: Item,
    private readonly attributes: Item,
  ) {
    super(table, key);
  }

  #input() {
    return { TableName: this.table.name, Item: { ...this.attributes, ...this.key }, ...this.joined() };
  }

  /** Runs it: whether it held. */
  async run(): Promise<boolean> {
    const done = await this.guarded('PutItem', async () => {
      await this.table.db.send(new PutCommand(this.#input()));
      return true;
    });
    return done === true;
  }

  /** Runs it: `{ replaced }`, the item it replaced if any, or undefined when the condition did not hold. */
  replacing(): Promise<{ replaced?: Item } | undefined> {
    return this.guarded('PutItem', async () => {
      const result = await this.table.db.send(new PutCommand({ ...this.#input(), ReturnValues: 'ALL_OLD' }));
      return result.Attributes ? { replaced: result.Attributes } : {};
    });
  }
}

/** A DeleteItem that holds only under its condition. */
export class GuardedDelete extends Guarded {
  constructor(table: Table, key: Item) {
    super(table, key);
  }

  /** Runs it: whether it held. */
  async run(): Promise<boolean> {
    const done = await this.guarded('DeleteItem', async () => {
      await this.table.db.send(new DeleteCommand({ TableName: this.table.name, Key: this.key, ...this.joined() }));
      return true;
    });
    return done === true;
  }
}
