import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { LIMITS, checkLimits, templateFigures, validateTemplate } from '../support/cfn-validate';
import { validateIam } from '../support/iam-validate';
import { DEV, PROD, ROOT, cliEnv, serverless, sharedPackage, type Packaged, type Template } from '../support/packaging';

/**
 * Deploy readiness, offline: nobody here can run `serverless deploy`, so each stage docs/go-live.md
 * deploys is packaged and its templates are checked against AWS's published specifications (the
 * CloudFormation resource specification and the IAM action list, test/support/cfn-validate.ts and
 * iam-validate.ts) and CloudFormation's limits. Then each kind of mistake is planted in a copy of
 * the template, to prove the checks would catch it.
 */

const stages: Record<string, Packaged> = {};

beforeAll(async () => {
  // Both shared with the other infra tests (test/infra/token-cache-iam.test.ts reads them too).
  stages.dev = await sharedPackage(DEV);
  stages.prod = await sharedPackage(PROD);
}, 300_000);

const STAGES = ['dev', 'prod'];
const packaged = (stage: string) => stages[stage]!;
const number = (value: number) => value.toLocaleString('en-US');

describe.each(STAGES)('the %s stage would deploy', (stage) => {
  it('packages with the values it was given', () => {
    const variables = (
      packaged(stage).template.Resources.CreateOrderLambdaFunction!.Properties.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    expect(variables.WECHATPAY_API_KEY_PARAM).toBe(`/wechatpay/${stage}/api-key`);
    if (stage === 'prod') expect(variables).toMatchObject({ WECHATPAY_APPID: PROD.params!.appId, WECHATPAY_MCHID: PROD.params!.mchId });
  });

  it('packages every function, the refund ones with the client certificate parameter docs/go-live.md stores', () => {
    const resources = packaged(stage).template.Resources;
    for (const name of [
      'CreateOrder',
      'QueryOrder',
      'Notify',
      'RecoverOrders',
      'PutProduct',
      'ListProducts',
      'CreateMerchantOrder',
      'GetMerchantOrder',
      'CreateRefund',
      'GetRefund',
      'RefundNotify',
    ]) {
      expect(resources[`${name}LambdaFunction`]?.Type, name).toBe('AWS::Lambda::Function');
    }
    for (const name of ['CreateRefund', 'RecoverOrders']) {
      const variables = (resources[`${name}LambdaFunction`]!.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.WECHATPAY_CERT_PARAM).toBe(`/wechatpay/${stage}/client-cert`);
    }
  });

  it('uses only resource types, properties, attributes and references the AWS resource specification knows', () => {
    expect(validateTemplate(packaged(stage).template)).toEqual([]);
    // The first deploy creates the stack from this one (the deployment bucket), then updates it.
    expect(validateTemplate(packaged(stage).createTemplate)).toEqual([]);
  });

  it('grants only IAM actions that exist, each on the resources it needs', async () => {
    expect(await validateIam(packaged(stage).template)).toEqual([]);
    expect(await validateIam(packaged(stage).createTemplate)).toEqual([]);
  });

  it("stays within CloudFormation's template limits", () => {
    const { template, createTemplate } = packaged(stage);
    expect(checkLimits(template)).toEqual([]);
    expect(checkLimits(createTemplate, { direct: true })).toEqual([]);
    const figures = templateFigures(template);
    console.log(
      `deploy readiness ${stage}: template ${number(figures.bytes)} bytes of ${number(LIMITS.templateBytesFromS3)} ` +
        `(first deploy's ${number(templateFigures(createTemplate).bytes)} of ${number(LIMITS.templateBytesDirect)}), ` +
        `${figures.resources} resources of ${LIMITS.resources}, ${figures.outputs} outputs of ${LIMITS.outputs}, ` +
        `${figures.parameters} parameters of ${LIMITS.parameters}, ${figures.mappings} mappings of ${LIMITS.mappings}`,
    );
  });
});

describe('the framework', () => {
  it('refuses a misspelled key in serverless.yml (configValidationMode: error)', async () => {
    const config = parseDocument(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'));
    expect(config.get('configValidationMode')).toBe('error');
    config.setIn(['provider', 'memorySise'], 256);
    // The framework reads a configuration only from the service's own directory.
    const name = `serverless.misspelled-${process.pid}.yml`;
    writeFileSync(join(ROOT, name), config.toString());
    try {
      await expect(serverless(['print', '--config', name, '--stage', 'dev', '--path', 'provider.runtime'], cliEnv())).rejects.toThrow(
        /unrecognized property 'memorySise'/,
      );
    } finally {
      rmSync(join(ROOT, name), { force: true });
    }
  }, 60_000);
});

/** A template is JSON: a mistake may be planted anywhere in it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Planted = Record<string, any>;

describe('the checks catch a mistake planted in the template', () => {
  /** A copy of dev's template, changed by `plant`. */
  const planted = (plant: (resources: Record<string, Planted>) => void) => {
    const template = structuredClone(packaged('dev').template) as Template;
    plant(template.Resources as never);
    return template;
  };

  it('an unknown property', () => {
    const template = planted((r) => (r.OrdersTable!.Properties.BilingMode = 'PAY_PER_REQUEST'));
    expect(validateTemplate(template)).toEqual(['Resources.OrdersTable.Properties.BilingMode: unknown property of AWS::DynamoDB::Table']);
  });

  it('an unknown property of a nested property type', () => {
    const template = planted((r) => (r.OrdersTable!.Properties.PointInTimeRecoverySpecification = { PointInTimeRecovery: true }));
    expect(validateTemplate(template)).toEqual([
      'Resources.OrdersTable.Properties.PointInTimeRecoverySpecification.PointInTimeRecovery: unknown property of PointInTimeRecoverySpecification',
    ]);
  });

  it('a missing required property', () => {
    const template = planted((r) => delete r.OrdersTable!.Properties.KeySchema);
    expect(validateTemplate(template)).toEqual([
      'Resources.OrdersTable.Properties.KeySchema: missing required property of AWS::DynamoDB::Table',
    ]);
  });

  it('a missing required property of a nested property type', () => {
    const template = planted((r) => delete r.OrdersTable!.Properties.AttributeDefinitions[1].AttributeType);
    expect(validateTemplate(template)).toEqual([
      'Resources.OrdersTable.Properties.AttributeDefinitions[1].AttributeType: missing required property of AttributeDefinition',
    ]);
  });

  it('a value of the wrong shape', () => {
    const template = planted((r) => {
      r.CreateOrderLambdaFunction!.Properties.Environment.Variables = [{ ORDERS_TABLE: 'orders' }];
      r.OrdersTable!.Properties.GlobalSecondaryIndexes = r.OrdersTable!.Properties.GlobalSecondaryIndexes[0];
      r.NotifyLambdaFunction!.Properties.Timeout = 'fifteen';
      r.NotifyLambdaFunction!.Properties.Code = 'notify.zip';
    });
    expect(validateTemplate(template)).toEqual(
      [
        'Resources.NotifyLambdaFunction.Properties.Code: expected a Code object, found "notify.zip"',
        'Resources.NotifyLambdaFunction.Properties.Timeout: expected an integer, found "fifteen"',
        'Resources.CreateOrderLambdaFunction.Properties.Environment.Variables: expected a map, found a list',
        'Resources.OrdersTable.Properties.GlobalSecondaryIndexes: expected a list, found an object',
      ].sort(byResourceOrder(template)),
    );
  });

  it('a value the spec does not allow', () => {
    const template = planted((r) => (r.RecoverOrdersEventsRuleSchedule1!.Properties.State = 'ON'));
    expect(validateTemplate(template)).toEqual([
      'Resources.RecoverOrdersEventsRuleSchedule1.Properties.State: "ON" is not one of DISABLED, ENABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS',
    ]);
  });

  it('an unknown resource type', () => {
    const template = planted((r) => (r.PaymentAlarmsTopic!.Type = 'AWS::SNS::Topics'));
    expect(validateTemplate(template)).toContain(
      'Resources.PaymentAlarmsTopic.Type: AWS::SNS::Topics is not a resource type in the AWS resource specification',
    );
  });

  it('a wrong GetAtt attribute', () => {
    const template = planted(
      (r) => (r.NotifyRole!.Properties.Policies[0].PolicyDocument.Statement[0].Resource = [{ 'Fn::GetAtt': ['OrdersTable', 'TableArn'] }]),
    );
    expect(validateTemplate(template)).toEqual([
      'Resources.NotifyRole.Properties.Policies[0].PolicyDocument.Statement[0].Resource[0].Fn::GetAtt: AWS::DynamoDB::Table has no attribute TableArn (it has Arn, StreamArn)',
    ]);
  });

  it('a wrong attribute in an Fn::Sub variable', () => {
    const template = planted(
      (r) =>
        (r.RecoverOrdersRole!.Properties.Policies[0].PolicyDocument.Statement[0].Resource = [
          { 'Fn::Sub': '${OrdersTable.TableArn}/index/pendingByShard' },
        ]),
    );
    expect(validateTemplate(template)).toEqual([
      'Resources.RecoverOrdersRole.Properties.Policies[0].PolicyDocument.Statement[0].Resource[0].Fn::Sub ${OrdersTable.TableArn}: AWS::DynamoDB::Table has no attribute TableArn (it has Arn, StreamArn)',
    ]);
  });

  it('a dangling Ref', () => {
    const template = planted((r) => (r.AmountMismatchAlarm!.Properties.AlarmActions = [{ Ref: 'PaymentAlarmTopic' }]));
    expect(validateTemplate(template)).toEqual([
      'Resources.AmountMismatchAlarm.Properties.AlarmActions[0].Ref: Ref to PaymentAlarmTopic, which is no resource, parameter or pseudo parameter',
    ]);
  });

  it('a dangling Fn::Sub variable', () => {
    const template = planted(
      (r) =>
        (r.RecoverOrdersRole!.Properties.Policies[0].PolicyDocument.Statement[2].Resource = [
          { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::Account}:parameter/wechatpay/dev/api-key' },
        ]),
    );
    expect(validateTemplate(template)).toEqual([
      'Resources.RecoverOrdersRole.Properties.Policies[0].PolicyDocument.Statement[2].Resource[0].Fn::Sub ${AWS::Account}: Ref to AWS::Account, which is no resource, parameter or pseudo parameter',
    ]);
  });

  it('a dangling DependsOn', () => {
    const template = planted((r) => (r.NotifyLambdaFunction!.DependsOn = ['NotifyLogGroup', 'NotifyRoles']));
    expect(validateTemplate(template)).toEqual([
      'Resources.NotifyLambdaFunction.DependsOn: "NotifyRoles" is no other resource of the template',
    ]);
  });

  it('two logical ids that differ only in case', () => {
    const template = planted((r) => (r.Orderstable = structuredClone(r.OrdersTable!)));
    expect(validateTemplate(template)).toContain('Resources.Orderstable: collides with Resources.OrdersTable');
  });

  it('resources that depend on each other in a circle', () => {
    const template = planted((r) => (r.OrdersTable!.DependsOn = 'CreateOrderLambdaFunction'));
    expect(validateTemplate(template)).toEqual([
      expect.stringMatching(
        /circular dependency .*OrdersTable -> CreateOrderLambdaFunction -> CreateOrderRole -> OrdersTable|circular dependency .*CreateOrderLambdaFunction -> CreateOrderRole -> OrdersTable -> CreateOrderLambdaFunction/,
      ),
    ]);
  });

  it('an IAM action that does not exist', async () => {
    const template = planted(
      (r) => (r.QueryOrderRole!.Properties.Policies[0].PolicyDocument.Statement[0].Action = ['dynamodb:GetItems', 'dynamodb:UpdateItem']),
    );
    expect(await validateIam(template)).toEqual([
      'Resources.QueryOrderRole.Properties.Policies[0].PolicyDocument.Statement[0].Action[0]: "dynamodb:GetItems" is not an action of dynamodb',
    ]);
  });

  it('an IAM action of a service that does not exist, and a pattern that matches nothing', async () => {
    const template = planted((r) => {
      r.QueryOrderRole!.Properties.Policies[0].PolicyDocument.Statement[0].Action = ['dynamo:GetItem', 'dynamodb:Fetch*'];
      r.RecoverOrdersLambdaPermissionEventsRuleSchedule1!.Properties.Action = 'lambda:InvokeFunctions';
    });
    expect((await validateIam(template)).sort()).toEqual([
      'Resources.QueryOrderRole.Properties.Policies[0].PolicyDocument.Statement[0].Action[0]: "dynamo:GetItem": IAM has no service "dynamo"',
      'Resources.QueryOrderRole.Properties.Policies[0].PolicyDocument.Statement[0].Action[1]: "dynamodb:Fetch*" matches no action of dynamodb',
      'Resources.RecoverOrdersLambdaPermissionEventsRuleSchedule1.Properties.Action: "lambda:InvokeFunctions" is not an action of lambda',
    ]);
  });

  it('a statement without resources (a stage whose apps name no AppSecret parameter)', async () => {
    const template = planted((r) => (r.JssdkConfigRole!.Properties.Policies[0].PolicyDocument.Statement[1].Resource = []));
    expect(await validateIam(template)).toEqual([
      'Resources.JssdkConfigRole.Properties.Policies[0].PolicyDocument.Statement[1].Resource: an empty list',
    ]);
  });

  it('a wildcard resource', async () => {
    const template = planted((r) => (r.CreateOrderRole!.Properties.Policies[0].PolicyDocument.Statement[0].Resource = '*'));
    expect(await validateIam(template)).toEqual([
      'Resources.CreateOrderRole.Properties.Policies[0].PolicyDocument.Statement[0].Resource: "*" for actions that can be limited to resources: dynamodb:PutItem (table), dynamodb:GetItem (table), dynamodb:UpdateItem (table)',
    ]);
  });

  /** Where notify's statement of these actions is, in its role's policy. */
  const notifyStatement = (action: string) => {
    const policies = packaged('dev').template.Resources.NotifyRole!.Properties.Policies as Planted[];
    const index = (policies[0]!.PolicyDocument.Statement as Planted[]).findIndex(
      (statement) => JSON.stringify(statement.Action) === JSON.stringify([action]),
    );
    expect(index).toBeGreaterThanOrEqual(0);
    return index;
  };

  it('a wildcard resource name in an ARN', async () => {
    const at = notifyStatement('ssm:GetParameter');
    const template = planted(
      (r) =>
        (r.NotifyRole!.Properties.Policies[0].PolicyDocument.Statement[at].Resource = [
          { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*' },
        ]),
    );
    expect(await validateIam(template)).toEqual([
      `Resources.NotifyRole.Properties.Policies[0].PolicyDocument.Statement[${at}].Resource[0]: "arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/*" for actions that can be limited to resources: ssm:GetParameter (parameter)`,
    ]);
  });

  it("PutEvents on every bus rather than the stage's own", async () => {
    const at = notifyStatement('events:PutEvents');
    const template = planted((r) => {
      r.NotifyRole!.Properties.Policies[0].PolicyDocument.Statement[at].Resource = [
        { 'Fn::Sub': 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/*' },
      ];
    });
    expect(await validateIam(template)).toEqual([
      `Resources.NotifyRole.Properties.Policies[0].PolicyDocument.Statement[${at}].Resource[0]: "arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/*" for actions that can be limited to resources: events:PutEvents (event-bus, event-busv2)`,
    ]);
  });

  it('grants "*" only to actions without resource-level permissions', async () => {
    const template = planted((r) =>
      r.NotifyRole!.Properties.Policies[0].PolicyDocument.Statement.push({
        Effect: 'Allow',
        Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
        Resource: '*',
      }),
    );
    expect(await validateIam(template)).toEqual([]);
  });

  it('an Allow with NotAction or NotResource', async () => {
    let at = 0;
    const template = planted((r) => {
      at =
        r.NotifyRole!.Properties.Policies[0].PolicyDocument.Statement.push({
          Effect: 'Allow',
          NotAction: ['iam:*'],
          NotResource: { 'Fn::GetAtt': ['NotifyRole', 'Arn'] },
        }) - 1;
    });
    expect(await validateIam(template)).toEqual([
      `Resources.NotifyRole.Properties.Policies[0].PolicyDocument.Statement[${at}].NotAction: an Allow with NotAction grants every action it does not name`,
      `Resources.NotifyRole.Properties.Policies[0].PolicyDocument.Statement[${at}].NotResource: an Allow with NotResource grants every resource it does not name`,
    ]);
  });

  it("a template over CloudFormation's limits", () => {
    let resources = 0;
    const template = planted((r) => {
      for (let i = 0; i < 500; i += 1) r[`ExtraTopic${i}`] = { Type: 'AWS::SNS::Topic', Properties: { TopicName: 'x'.repeat(2_000) } };
      resources = Object.keys(r).length;
    });
    expect(checkLimits(template)).toEqual([
      expect.stringMatching(/^template: \d+ bytes, over the 1000000 CloudFormation accepts$/),
      `template: ${resources} resources, over the 500 CloudFormation accepts`,
    ]);
  });
});

/** Findings come in the template's resource order: sorts expected lines the same way. */
function byResourceOrder(template: Template) {
  const order = Object.keys(template.Resources);
  const rank = (line: string) => order.indexOf(line.split('.')[1]!);
  return (a: string, b: string) => rank(a) - rank(b);
}
