import type { Template } from './packaging';

/**
 * Each function's role as a packaged template deploys it, its intrinsic functions (`Ref`,
 * `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`) resolved to concrete ARNs for a fixed account and region: what
 * the least-privilege check simulates (test/support/least-privilege.ts) and what the permissions
 * table in docs/reference/permissions.md shows (test/support/permissions-table.ts).
 */

export const ACCOUNT = '123456789012';
export const REGION = 'ap-southeast-1';
export const PARTITION = 'aws';
export const SERVICE = 'wechatpay';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

export type Context = Record<string, string | string[]>;

/** A request as IAM evaluates it. */
export interface SimCall {
  action: string;
  resource: string;
  context: Context;
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

// ---------------------------------------------------------------------------------------------------
// The template, resolved for one account and region.

/** The template's values with every `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` worked out as CloudFormation would. */
export class ResolvedTemplate {
  constructor(
    readonly template: Template,
    readonly stage: string,
  ) {}

  get resources() {
    return this.template.Resources;
  }

  private resource(id: string) {
    const resource = this.resources[id];
    if (!resource) throw new Error(`the template has no resource ${id}`);
    return resource;
  }

  private ref(id: string): string {
    const pseudo: Record<string, string> = {
      'AWS::Region': REGION,
      'AWS::AccountId': ACCOUNT,
      'AWS::Partition': PARTITION,
      'AWS::StackName': `${SERVICE}-${this.stage}`,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    if (pseudo[id]) return pseudo[id];
    const { Type, Properties } = this.resource(id);
    const named = (property: string) => {
      const value = this.resolve(Properties[property]);
      if (typeof value !== 'string') throw new Error(`${id}.${property} is not a name`);
      return value;
    };
    switch (Type) {
      case 'AWS::DynamoDB::Table':
        return named('TableName');
      case 'AWS::Events::EventBus':
        return named('Name');
      case 'AWS::Logs::LogGroup':
        return named('LogGroupName');
      case 'AWS::Lambda::Function':
        return named('FunctionName');
      case 'AWS::SNS::Topic':
        return `arn:${PARTITION}:sns:${REGION}:${ACCOUNT}:${named('TopicName')}`;
      case 'AWS::IAM::Role':
        return Properties.RoleName === undefined ? `${SERVICE}-${this.stage}-${id}` : named('RoleName');
      default:
        throw new Error(`least-privilege: cannot resolve a Ref to ${id} (${Type})`);
    }
  }

  private getAtt(id: string, attribute: string): string {
    const { Type } = this.resource(id);
    if (attribute !== 'Arn') throw new Error(`least-privilege: cannot resolve ${id}.${attribute}`);
    switch (Type) {
      case 'AWS::DynamoDB::Table':
        return tableArn(this.ref(id));
      case 'AWS::Events::EventBus':
        return busArn(this.ref(id));
      case 'AWS::Logs::LogGroup':
        // A log group's Arn attribute ends in `:*` (every stream of the group).
        return `${logGroupArn(this.ref(id))}:*`;
      case 'AWS::Lambda::Function':
        return `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT}:function:${this.ref(id)}`;
      case 'AWS::SNS::Topic':
        return this.ref(id);
      case 'AWS::IAM::Role':
        return `arn:${PARTITION}:iam::${ACCOUNT}:role/${this.ref(id)}`;
      default:
        throw new Error(`least-privilege: cannot resolve ${id}.Arn (${Type})`);
    }
  }

  private sub(text: string, variables: Json = {}): string {
    return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      if (name.startsWith('!')) return `\${${name.slice(1)}}`;
      if (name in variables) return String(this.resolve(variables[name]));
      const [id, attribute] = name.split('.');
      return attribute === undefined ? this.ref(id!) : this.getAtt(id!, attribute);
    });
  }

  /** `value` with every intrinsic function resolved; one it cannot resolve is an error. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (!isObject(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) {
      const argument = value[keys[0]!];
      switch (keys[0]) {
        case 'Ref':
          return this.ref(argument as string);
        case 'Fn::GetAtt': {
          const [id, attribute] = typeof argument === 'string' ? argument.split('.') : (argument as string[]);
          return this.getAtt(id!, attribute!);
        }
        case 'Fn::Sub':
          return Array.isArray(argument) ? this.sub(argument[0] as string, argument[1] as Json) : this.sub(argument as string);
        case 'Fn::Join': {
          const [separator, parts] = argument as [string, unknown[]];
          return (this.resolve(parts) as unknown[]).join(separator);
        }
        default:
          throw new Error(`least-privilege: cannot resolve ${keys[0]}`);
      }
    }
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.resolve(item)]));
  }
}

export const tableArn = (name: string, index?: string) =>
  `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/${name}${index ? `/index/${index}` : ''}`;
export const busArn = (name: string) => `arn:${PARTITION}:events:${REGION}:${ACCOUNT}:event-bus/${name}`;
export const parameterArn = (name: string) =>
  `arn:${PARTITION}:ssm:${REGION}:${ACCOUNT}:parameter${name.startsWith('/') ? name : `/${name}`}`;
export const logGroupArn = (name: string) => `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${name}`;

/** One function as a stage deploys it: its name, environment, role and log group. */
export interface DeployedFunction {
  name: string;
  functionName: string;
  environment: Record<string, unknown>;
  roleId: string;
  roleArn: string;
  /** The role's inline policies, resolved. */
  policies: Array<{ name: string; policy: PolicyDocument }>;
  logGroup: string;
}

export function logicalId(name: string): string {
  return `${name[0]!.toUpperCase()}${name.slice(1)}`;
}

export function deployedFunction(stage: ResolvedTemplate, name: string): DeployedFunction {
  const lambda = stage.resources[`${logicalId(name)}LambdaFunction`];
  if (lambda?.Type !== 'AWS::Lambda::Function') throw new Error(`${stage.stage}: no Lambda function for ${name}`);
  const properties = lambda.Properties as {
    FunctionName: unknown;
    Role: unknown;
    Environment?: { Variables?: Record<string, unknown> };
    LoggingConfig?: { LogGroup?: unknown };
  };
  const role = properties.Role as { 'Fn::GetAtt'?: [string, string] };
  const roleId = role['Fn::GetAtt']?.[0];
  if (!roleId || stage.resources[roleId]?.Type !== 'AWS::IAM::Role')
    throw new Error(`${stage.stage}: ${name}'s role is not a role of the template`);
  const roleProperties = stage.resources[roleId]!.Properties as {
    Policies?: Array<{ PolicyName: string; PolicyDocument: unknown }>;
    ManagedPolicyArns?: unknown;
  };
  if (roleProperties.ManagedPolicyArns !== undefined)
    throw new Error(`${stage.stage}: ${roleId} has managed policies, which this check does not read`);
  const functionName = stage.resolve(properties.FunctionName) as string;
  return {
    name,
    functionName,
    environment: properties.Environment?.Variables ?? {},
    roleId,
    roleArn: stage.resolve(properties.Role) as string,
    policies: (roleProperties.Policies ?? []).map((policy) => {
      const document = stage.resolve(policy.PolicyDocument) as PolicyDocument;
      return { name: policy.PolicyName, policy: { ...document, Statement: [document.Statement].flat() } };
    }),
    // Lambda writes to /aws/lambda/<function name> unless its logging config names another group.
    logGroup:
      properties.LoggingConfig?.LogGroup === undefined
        ? `/aws/lambda/${functionName}`
        : (stage.resolve(properties.LoggingConfig.LogGroup) as string),
  };
}

/** One grant of a role: one action (or pattern) of an Allow statement, on one of its resources. */
export interface Grant {
  action: string;
  resource: string;
  condition?: Statement['Condition'];
}

export function grantsOf(fn: DeployedFunction): Grant[] {
  return fn.policies.flatMap(({ policy }) =>
    policy.Statement.filter((statement) => statement.Effect === 'Allow').flatMap((statement) =>
      [statement.Action]
        .flat()
        .flatMap((action) =>
          [statement.Resource]
            .flat()
            .map((resource) => ({ action, resource, ...(statement.Condition ? { condition: statement.Condition } : {}) })),
        ),
    ),
  );
}

export function describeGrant(grant: Grant): string {
  return `${grant.action} on ${grant.resource.replace(/^arn:aws:[^:]+:[^:]*:\d*:/, '')}${grant.condition ? ` if ${JSON.stringify(grant.condition)}` : ''}`;
}
