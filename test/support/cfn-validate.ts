import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import type { Property, PropertyType, Resource as SpecResource } from '@aws-cdk/service-spec-types';

/**
 * Checks a CloudFormation template offline, against the AWS resource specification as published on
 * npm (@aws-cdk/aws-service-spec, pinned in package.json), for the mistakes CloudFormation would
 * otherwise only report halfway through a first deploy, followed by a rollback:
 *
 * - every resource type exists, every property is one its type knows, of the shape the spec gives
 *   (scalar, list, map or nested object), and every required property is there;
 * - every `Fn::GetAtt` names an attribute its resource's type has;
 * - every `Ref`, `Fn::Sub` variable and `DependsOn` names a resource, a parameter or a pseudo parameter;
 * - no two logical ids collide, not even in case, and resources do not depend on each other in a circle;
 * - the template stays under CloudFormation's size and count limits.
 *
 * Values CloudFormation computes at deploy time (`Ref`, `Fn::*`) are accepted wherever a value goes:
 * their result cannot be known offline. What they name is checked. Each finding is a line
 * "<where in the template>: <what is wrong>".
 */

type Spec = ReturnType<typeof loadAwsServiceSpecSync>;
type Json = Record<string, unknown>;

let loaded: Spec | undefined;

/** The AWS resource specification (about half a second to load; once per process). */
export function awsSpec(): Spec {
  loaded ??= loadAwsServiceSpecSync();
  return loaded;
}

// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
const SECTIONS = new Set([
  'AWSTemplateFormatVersion',
  'Description',
  'Metadata',
  'Parameters',
  'Rules',
  'Mappings',
  'Conditions',
  'Transform',
  'Resources',
  'Outputs',
]);
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-product-attribute-reference.html
const RESOURCE_KEYS = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'Condition',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'UpdatePolicy',
  'CreationPolicy',
  'Metadata',
]);
const DELETION_POLICIES = new Set(['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot']);
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
export const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId',
  'AWS::NotificationARNs',
  'AWS::NoValue',
  'AWS::Partition',
  'AWS::Region',
  'AWS::StackId',
  'AWS::StackName',
  'AWS::URLSuffix',
]);

/**
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html. The
 * framework uploads the stack's template to S3 (1 MB, counted here as 1,000,000 bytes to stay on
 * the safe side of "MB") and sends only the first deploy's small template directly (51,200 bytes).
 */
export const LIMITS = {
  templateBytesFromS3: 1_000_000,
  templateBytesDirect: 51_200,
  resources: 500,
  outputs: 200,
  parameters: 200,
  mappings: 200,
  logicalIdLength: 255,
};

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `{ "Ref": ... }` or `{ "Fn::...": ... }`: a value CloudFormation works out at deploy time. */
export function isIntrinsic(value: unknown): boolean {
  if (!isObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'));
}

const isCustomResource = (type: string) => type.startsWith('Custom::') || type === 'AWS::CloudFormation::CustomResource';

function specResource(spec: Spec, type: string): SpecResource | undefined {
  return spec.lookup('resource', 'cloudFormationType', 'equals', type)[0];
}

/** The size and counts CloudFormation limits, as the framework sends the template (minified JSON). */
export function templateFigures(template: Json) {
  const count = (section: string) => Object.keys((template[section] as Json | undefined) ?? {}).length;
  return {
    bytes: Buffer.byteLength(JSON.stringify(template)),
    resources: count('Resources'),
    outputs: count('Outputs'),
    parameters: count('Parameters'),
    mappings: count('Mappings'),
  };
}

/** Findings for a template over CloudFormation's limits; `direct` when sent in the API call, not through S3. */
export function checkLimits(template: Json, { direct = false } = {}): string[] {
  const figures = templateFigures(template);
  const findings: string[] = [];
  const bytesLimit = direct ? LIMITS.templateBytesDirect : LIMITS.templateBytesFromS3;
  if (figures.bytes > bytesLimit) findings.push(`template: ${figures.bytes} bytes, over the ${bytesLimit} CloudFormation accepts`);
  for (const name of ['resources', 'outputs', 'parameters', 'mappings'] as const) {
    if (figures[name] > LIMITS[name]) findings.push(`template: ${figures[name]} ${name}, over the ${LIMITS[name]} CloudFormation accepts`);
  }
  return findings;
}

/** Every finding for `template`, empty when CloudFormation should accept it. */
export function validateTemplate(template: unknown, spec: Spec = awsSpec()): string[] {
  if (!isObject(template) || !isObject(template.Resources)) return ['template: no Resources section'];
  const findings: string[] = [];
  for (const section of Object.keys(template)) {
    if (!SECTIONS.has(section)) findings.push(`${section}: not a template section`);
  }
  findings.push(...checkLogicalIds(template));
  for (const [id, resource] of Object.entries(template.Resources)) findings.push(...checkResource(spec, `Resources.${id}`, resource));
  findings.push(...checkReferences(spec, template));
  findings.push(...checkCycles(template));
  return findings;
}

/**
 * Logical ids are alphanumeric, at most 255 characters, and unique. Resources and parameters share
 * one namespace (both are `Ref` targets). Ids that differ only in case are refused too: they read as
 * one, and the framework derives ids from function and path names by changing their case.
 */
function checkLogicalIds(template: Json): string[] {
  const findings: string[] = [];
  const groups: string[][] = [['Resources', 'Parameters'], ['Outputs'], ['Conditions'], ['Mappings']];
  for (const sections of groups) {
    const seen = new Map<string, string>();
    for (const section of sections) {
      for (const id of Object.keys((template[section] as Json | undefined) ?? {})) {
        const at = `${section}.${id}`;
        if (!/^[A-Za-z0-9]+$/.test(id)) findings.push(`${at}: a logical id is letters and digits only`);
        if (id.length > LIMITS.logicalIdLength) findings.push(`${at}: a logical id is at most ${LIMITS.logicalIdLength} characters`);
        const other = seen.get(id.toLowerCase());
        if (other) findings.push(`${at}: collides with ${other}`);
        else seen.set(id.toLowerCase(), at);
      }
    }
  }
  return findings;
}

function checkResource(spec: Spec, at: string, resource: unknown): string[] {
  if (!isObject(resource)) return [`${at}: not an object`];
  const findings: string[] = [];
  for (const key of Object.keys(resource)) {
    if (!RESOURCE_KEYS.has(key)) findings.push(`${at}.${key}: not a resource attribute CloudFormation knows`);
  }
  for (const policy of ['DeletionPolicy', 'UpdateReplacePolicy'] as const) {
    const value = resource[policy];
    if (value !== undefined && !isIntrinsic(value) && !DELETION_POLICIES.has(String(value))) {
      findings.push(`${at}.${policy}: ${JSON.stringify(value)} is not one of ${[...DELETION_POLICIES].join(', ')}`);
    }
  }
  const type = resource.Type;
  if (typeof type !== 'string') return [...findings, `${at}.Type: missing`];
  const properties = resource.Properties ?? {};
  if (isIntrinsic(properties)) return findings;
  if (!isObject(properties)) return [...findings, `${at}.Properties: not an object`];
  // A custom resource takes any property its provider wants; CloudFormation needs only the provider.
  if (isCustomResource(type)) {
    return properties.ServiceToken === undefined
      ? [...findings, `${at}.Properties.ServiceToken: missing required property of ${type}`]
      : findings;
  }
  const definition = specResource(spec, type);
  if (!definition) return [...findings, `${at}.Type: ${type} is not a resource type in the AWS resource specification`];
  return [...findings, ...checkObject(spec, properties, definition.properties, `${at}.Properties`, type)];
}

/** An object of named properties (a resource's, or a nested property type's) against its definition. */
function checkObject(spec: Spec, value: Json, properties: Record<string, Property>, at: string, owner: string): string[] {
  const findings: string[] = [];
  for (const [name, item] of Object.entries(value)) {
    const property = properties[name];
    if (!property) findings.push(`${at}.${name}: unknown property of ${owner}`);
    // Older shapes of a property stay accepted, as CloudFormation keeps accepting them.
    else findings.push(...checkShape(spec, item, [property.type, ...(property.previousTypes ?? [])], `${at}.${name}`));
  }
  for (const [name, property] of Object.entries(properties)) {
    if (property.required && !(name in value)) findings.push(`${at}.${name}: missing required property of ${owner}`);
  }
  return findings;
}

/** A value against any of the types it may have: no finding if one fits, else those of the closest. */
function checkShape(spec: Spec, value: unknown, types: PropertyType[], at: string): string[] {
  let candidates = types.flatMap(function flat(type): PropertyType[] {
    return type.type === 'union' ? type.types.flatMap(flat) : [type];
  });
  // The spec widens a few properties to "any JSON" beside their structure (a DynamoDB table's
  // KeySchema); a list or an object is held to the structure when the spec gives one of that shape.
  const structured = candidates.filter((type) =>
    Array.isArray(value) ? type.type === 'array' : isObject(value) && ['map', 'ref', 'tag'].includes(type.type),
  );
  if (structured.length > 0 && !isIntrinsic(value)) candidates = structured;
  let closest: string[] | undefined;
  for (const type of candidates) {
    const findings = checkType(spec, value, type, at);
    if (findings.length === 0) return [];
    if (!closest || findings.length < closest.length) closest = findings;
  }
  return closest ?? [];
}

const TAG: Record<string, Property> = {
  Key: { type: { type: 'string' }, required: true },
  Value: { type: { type: 'string' }, required: true },
};

const shown = (value: unknown) => (Array.isArray(value) ? 'a list' : isObject(value) ? 'an object' : JSON.stringify(value));

function checkType(spec: Spec, value: unknown, type: PropertyType, at: string): string[] {
  if (isIntrinsic(value)) return [];
  const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  switch (type.type) {
    // CloudFormation turns scalars into the type it wants (5 into "5", "true" into true), so a
    // scalar fits any scalar type that can read it.
    case 'string':
    case 'date-time': {
      if (!scalar) return [`${at}: expected a string, found ${shown(value)}`];
      const allowed = type.type === 'string' ? type.allowedValues : undefined;
      if (allowed?.length && !allowed.includes(String(value)))
        return [`${at}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`];
      return [];
    }
    case 'number':
    case 'integer': {
      const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(number) || (type.type === 'integer' && !Number.isInteger(number))) {
        return [`${at}: expected ${type.type === 'integer' ? 'an integer' : 'a number'}, found ${shown(value)}`];
      }
      const allowed = type.type === 'integer' ? type.allowedValues : undefined;
      if (allowed?.length && !allowed.includes(number)) return [`${at}: ${number} is not one of ${allowed.join(', ')}`];
      return [];
    }
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false'
        ? []
        : [`${at}: expected true or false, found ${shown(value)}`];
    case 'json':
      return value === undefined ? [`${at}: expected a JSON value`] : [];
    case 'null':
      return value === null ? [] : [`${at}: expected null, found ${shown(value)}`];
    case 'tag':
      return isObject(value) ? checkObject(spec, value, TAG, at, 'Tag') : [`${at}: expected a tag {Key, Value}, found ${shown(value)}`];
    case 'array':
      if (!Array.isArray(value)) return [`${at}: expected a list, found ${shown(value)}`];
      return value.flatMap((item, index) => checkShape(spec, item, [type.element], `${at}[${index}]`));
    case 'map':
      if (!isObject(value)) return [`${at}: expected a map, found ${shown(value)}`];
      return Object.entries(value).flatMap(([key, item]) => checkShape(spec, item, [type.element], `${at}.${key}`));
    case 'ref': {
      const definition = spec.get('typeDefinition', type.reference);
      if (!isObject(value)) return [`${at}: expected a ${definition.name} object, found ${shown(value)}`];
      return checkObject(spec, value, definition.properties, at, definition.name);
    }
    case 'union':
      return checkShape(spec, value, type.types, at);
    default:
      return [`${at}: the spec gives a type this check does not know: ${JSON.stringify(type)}`];
  }
}

interface Names {
  resources: Json;
  parameters: Json;
  conditions: Json;
  mappings: Json;
}

function names(template: Json): Names {
  const section = (name: string) => (isObject(template[name]) ? (template[name] as Json) : {});
  return {
    resources: section('Resources'),
    parameters: section('Parameters'),
    conditions: section('Conditions'),
    mappings: section('Mappings'),
  };
}

/** The `${Name}` and `${Resource.Attribute}` variables of an `Fn::Sub` string (`${!Literal}` is no variable). */
export function subVariables(text: string): string[] {
  return [...text.matchAll(/\$\{([^}]*)\}/g)].map((match) => match[1]!.trim()).filter((name) => !name.startsWith('!'));
}

/**
 * Every `Ref`, `Fn::GetAtt`, `Fn::Sub` variable, `Fn::FindInMap` map, condition and `DependsOn` of
 * the template names something that exists; every `Fn::GetAtt` names an attribute of its
 * resource's type (as the spec lists them; a custom resource may return any).
 */
function checkReferences(spec: Spec, template: Json): string[] {
  const known = names(template);
  const findings: string[] = [];

  const checkRef = (target: unknown, at: string) => {
    if (typeof target !== 'string') return findings.push(`${at}: Ref takes a logical id, found ${shown(target)}`);
    if (!PSEUDO_PARAMETERS.has(target) && !(target in known.resources) && !(target in known.parameters)) {
      findings.push(`${at}: Ref to ${target}, which is no resource, parameter or pseudo parameter`);
    }
  };
  const checkGetAtt = (resourceId: string, attribute: unknown, at: string) => {
    const resource = known.resources[resourceId];
    if (!isObject(resource)) return findings.push(`${at}: Fn::GetAtt of ${resourceId}, which is no resource`);
    const type = String(resource.Type);
    // An attribute named through a parameter (`{"Ref": ...}`) is only known at deploy time.
    if (typeof attribute !== 'string' || isCustomResource(type)) return;
    const definition = specResource(spec, type);
    if (definition && !(attribute in definition.attributes)) {
      const attributes = Object.keys(definition.attributes).sort();
      findings.push(`${at}: ${type} has no attribute ${attribute} (it has ${attributes.join(', ') || 'none'})`);
    }
  };
  const checkCondition = (name: unknown, at: string) => {
    if (typeof name !== 'string' || !(name in known.conditions)) findings.push(`${at}: condition ${shown(name)} is not defined`);
  };

  const walk = (node: unknown, at: string): void => {
    if (Array.isArray(node)) return node.forEach((item, index) => walk(item, `${at}[${index}]`));
    if (!isObject(node)) return;
    if (isIntrinsic(node)) {
      const [fn, argument] = Object.entries(node)[0]!;
      const where = `${at}.${fn}`;
      if (fn === 'Ref') return void checkRef(argument, where);
      if (fn === 'Fn::GetAtt') {
        const [resourceId, ...rest] = typeof argument === 'string' ? argument.split('.') : Array.isArray(argument) ? argument : [];
        if (typeof resourceId !== 'string' || rest.length === 0) return void findings.push(`${where}: expected [resource, attribute]`);
        const attribute = typeof argument === 'string' ? rest.join('.') : rest[0];
        checkGetAtt(resourceId, attribute, where);
        return walk(rest, where);
      }
      if (fn === 'Fn::Sub') {
        const [text, variables] = Array.isArray(argument) ? argument : [argument, {}];
        if (typeof text !== 'string' || !isObject(variables))
          return void findings.push(`${where}: expected a string or [string, variables]`);
        for (const name of subVariables(text)) {
          if (name in variables) continue;
          if (PSEUDO_PARAMETERS.has(name) || !name.includes('.')) checkRef(name, `${where} \${${name}}`);
          else checkGetAtt(name.slice(0, name.indexOf('.')), name.slice(name.indexOf('.') + 1), `${where} \${${name}}`);
        }
        return walk(variables, where);
      }
      if (fn === 'Fn::FindInMap' && Array.isArray(argument) && typeof argument[0] === 'string' && !(argument[0] in known.mappings)) {
        findings.push(`${where}: mapping ${argument[0]} is not defined`);
      }
      if (fn === 'Fn::If' && Array.isArray(argument)) checkCondition(argument[0], where);
      return walk(argument, where);
    }
    if (Object.keys(node).length === 1 && 'Condition' in node && at.startsWith('Conditions.')) checkCondition(node.Condition, at);
    for (const [key, value] of Object.entries(node)) walk(value, `${at}.${key}`);
  };

  for (const [id, resource] of Object.entries(known.resources)) {
    if (!isObject(resource)) continue;
    for (const dependency of [resource.DependsOn ?? []].flat()) {
      if (typeof dependency !== 'string' || !(dependency in known.resources) || dependency === id) {
        findings.push(`Resources.${id}.DependsOn: ${shown(dependency)} is no other resource of the template`);
      }
    }
    if (resource.Condition !== undefined) checkCondition(resource.Condition, `Resources.${id}.Condition`);
    for (const key of ['Properties', 'Metadata', 'UpdatePolicy', 'CreationPolicy']) walk(resource[key], `Resources.${id}.${key}`);
  }
  for (const section of ['Outputs', 'Conditions']) {
    const entries = isObject(template[section]) ? Object.entries(template[section] as Json) : [];
    for (const [id, entry] of entries) {
      if (section === 'Outputs' && isObject(entry)) {
        if (entry.Value === undefined) findings.push(`Outputs.${id}.Value: missing`);
        if (entry.Condition !== undefined) checkCondition(entry.Condition, `Outputs.${id}.Condition`);
      }
      walk(entry, `${section}.${id}`);
    }
  }
  return findings;
}

/** The resources a resource needs first: those it names (`Ref`, `Fn::GetAtt`, `Fn::Sub`) or depends on. */
function dependencies(resource: Json, resources: Json): Set<string> {
  const found = new Set<string>([resource.DependsOn ?? []].flat().map(String));
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!isObject(node)) return;
    if ('Ref' in node && typeof node.Ref === 'string') found.add(node.Ref);
    const getAtt = node['Fn::GetAtt'];
    if (typeof getAtt === 'string') found.add(getAtt.split('.')[0]!);
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') found.add(getAtt[0]);
    const sub = node['Fn::Sub'];
    const text = Array.isArray(sub) ? sub[0] : sub;
    if (typeof text === 'string') for (const name of subVariables(text)) found.add(name.split('.')[0]!);
    Object.values(node).forEach(walk);
  };
  walk(resource.Properties);
  return new Set([...found].filter((id) => id in resources));
}

/** CloudFormation refuses a template whose resources wait on each other in a circle. */
function checkCycles(template: Json): string[] {
  const resources = names(template).resources;
  const state = new Map<string, 'visiting' | 'done'>();
  const findings: string[] = [];
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === 'done') return;
    if (state.get(id) === 'visiting') {
      findings.push(`Resources.${id}: circular dependency ${[...path.slice(path.indexOf(id)), id].join(' -> ')}`);
      return;
    }
    state.set(id, 'visiting');
    const resource = resources[id];
    if (isObject(resource)) for (const next of dependencies(resource, resources)) visit(next, [...path, id]);
    state.set(id, 'done');
  };
  for (const id of Object.keys(resources)) visit(id, []);
  return findings;
}
