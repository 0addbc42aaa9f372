import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { LOCAL_SESSION_KEY } from '../../dev/local/session-key';
import { FUNCTIONS, type FunctionName } from '../support/functions';
import { localAppSettings } from '../support/stack';
import {
  DEV,
  PROD_APPS,
  PROD_FROM_ENVIRONMENT,
  ROOT,
  SCRUBBED,
  SHELL_API_KEY,
  cliEnv,
  serverless,
  sharedPackage,
  type Packaged,
  type Resource,
  type Template,
} from '../support/packaging';
import { readZip } from './zip';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  NotAction?: unknown;
  NotResource?: unknown;
}

function logicalId(name: FunctionName): string {
  return `${name[0]!.toUpperCase()}${name.slice(1)}`;
}

function lambda(template: Template, name: FunctionName) {
  const resource = template.Resources[`${logicalId(name)}LambdaFunction`];
  if (!resource) throw new Error(`no Lambda function for ${name}`);
  return resource.Properties as {
    Role: { 'Fn::GetAtt': [string, string] };
    Timeout: number;
    Environment: { Variables: Record<string, unknown> };
    Code: { S3Key: string };
  };
}

function roleStatements(template: Template, roleId: string): Statement[] {
  const role = template.Resources[roleId];
  expect(role?.Type).toBe('AWS::IAM::Role');
  const policies = (role!.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[];
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}

/** Allowed actions of a role, each with the resources it is allowed on. */
function grants(template: Template, roleId: string): Record<string, unknown[]> {
  const byAction: Record<string, unknown[]> = {};
  for (const statement of roleStatements(template, roleId)) {
    expect(['Allow', 'Deny']).toContain(statement.Effect);
    if (statement.Effect !== 'Allow') continue;
    for (const action of [statement.Action].flat()) {
      byAction[action] = [...(byAction[action] ?? []), ...[statement.Resource].flat()];
    }
  }
  return byAction;
}

const TABLE = { 'Fn::GetAtt': ['OrdersTable', 'Arn'] };
/** The token cache's keys (lib/identity/token-store.ts): the JS-SDK config's only, denied to every other role on the table. */
const TOKEN_CACHE_KEYS = ['wechat-token#*', 'lease#*'];
const DENY_TOKEN_CACHE = {
  Effect: 'Deny',
  Action: expect.arrayContaining([
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:Query',
  ]),
  Resource: [TABLE],
  Condition: { 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': TOKEN_CACHE_KEYS } },
};
const INDEX = { 'Fn::Sub': '${OrdersTable.Arn}/index/pendingByShard' };
const OUTBOX_INDEX = { 'Fn::Sub': '${OrdersTable.Arn}/index/outboxByShard' };
const REFUNDS_INDEX = { 'Fn::Sub': '${OrdersTable.Arn}/index/openRefundsByShard' };
const apiKeyParameter = (name: string) => ({
  'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name}`,
});

const CATALOG = { 'Fn::GetAtt': ['CatalogTable', 'Arn'] };
const PAID_DAY_INDEX = { 'Fn::Sub': '${OrdersTable.Arn}/index/paidByDay' };
const REFUND_DAY_INDEX = { 'Fn::Sub': '${OrdersTable.Arn}/index/refundsByRequestDay' };
const TABLE_ACTIONS: Record<FunctionName, Record<string, unknown[]>> = {
  createOrder: {
    'dynamodb:PutItem': [TABLE],
    'dynamodb:GetItem': [TABLE],
    'dynamodb:UpdateItem': [TABLE],
    'dynamodb:BatchGetItem': [CATALOG],
  },
  createMerchantOrder: { 'dynamodb:PutItem': [TABLE], 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  getMerchantOrder: { 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  putProduct: { 'dynamodb:PutItem': [CATALOG] },
  listProducts: { 'dynamodb:Scan': [CATALOG] },
  runReconciliation: {
    'dynamodb:Query': [PAID_DAY_INDEX, REFUND_DAY_INDEX],
    'dynamodb:GetItem': [TABLE],
    'dynamodb:BatchGetItem': [TABLE],
    'dynamodb:UpdateItem': [TABLE],
    'dynamodb:PutItem': [TABLE],
    'dynamodb:DeleteItem': [TABLE],
  },
  getReconciliation: { 'dynamodb:GetItem': [TABLE] },
  reconcile: {
    'dynamodb:Query': [PAID_DAY_INDEX, REFUND_DAY_INDEX],
    'dynamodb:GetItem': [TABLE],
    'dynamodb:BatchGetItem': [TABLE],
    'dynamodb:UpdateItem': [TABLE],
    'dynamodb:PutItem': [TABLE],
    'dynamodb:DeleteItem': [TABLE],
  },
  queryOrder: { 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  notify: { 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  recoverOrders: { 'dynamodb:Query': [INDEX, OUTBOX_INDEX, REFUNDS_INDEX], 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  createRefund: { 'dynamodb:PutItem': [TABLE], 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  getRefund: { 'dynamodb:GetItem': [TABLE] },
  refundNotify: { 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
  // Logins touch no table; the JS-SDK config only the token cache's items (a condition, below).
  miniProgramLogin: {},
  officialAccountLogin: {},
  jssdkConfig: { 'dynamodb:GetItem': [TABLE], 'dynamodb:PutItem': [TABLE], 'dynamodb:UpdateItem': [TABLE], 'dynamodb:DeleteItem': [TABLE] },
  clearOutbox: { 'dynamodb:GetItem': [TABLE], 'dynamodb:UpdateItem': [TABLE] },
};

/** The functions of payers' identity: no WeChat Pay, so no API key. */
const IDENTITY_FUNCTIONS: readonly string[] = ['miniProgramLogin', 'officialAccountLogin', 'jssdkConfig'];
/** Those that issue or check session tokens, and so read the session key. */
const SESSION_KEY_FUNCTIONS: readonly string[] = ['createOrder', 'miniProgramLogin', 'officialAccountLogin'];

const BUS = { 'Fn::GetAtt': ['EventBus', 'Arn'] };
/**
 * The functions that make order transitions, and so publish their events (docs/reference/events.md): the
 * refund functions, and reconciliation, which records payments through the same transition.
 */
const PUBLISHING: readonly string[] = [
  'createOrder',
  'queryOrder',
  'notify',
  'recoverOrders',
  'createMerchantOrder',
  'getMerchantOrder',
  'runReconciliation',
  'reconcile',
  'createRefund',
  'refundNotify',
];

const MERCHANT_FUNCTIONS: readonly string[] = [
  'putProduct',
  'listProducts',
  'createMerchantOrder',
  'getMerchantOrder',
  'runReconciliation',
  'getReconciliation',
  'createRefund',
  'getRefund',
];
/** The functions that send refunds: they alone read the client certificate. */
const REFUND_SENDERS: readonly string[] = ['createRefund', 'recoverOrders'];

describe('serverless package', () => {
  let dev: Packaged;
  let prod: Packaged;

  beforeAll(async () => {
    expect(
      FUNCTIONS.filter((name) => !existsSync(join(ROOT, 'functions', `${name}.ts`))),
      'handlers missing',
    ).toEqual([]);
    // Shared with the other infra tests and the least-privilege check; this prod is set through the deploying environment.
    dev = await sharedPackage(DEV);
    prod = await sharedPackage(PROD_FROM_ENVIRONMENT);
  }, 300_000);

  describe('orders table', () => {
    const table = (packaged: Packaged) => packaged.template.Resources.OrdersTable!.Properties;
    /** A global secondary index keyed by these attributes, projecting the whole item. */
    const index = (IndexName: string, hashKey: string, rangeKey: string, Projection: object = { ProjectionType: 'ALL' }) => ({
      IndexName,
      KeySchema: [
        { AttributeName: hashKey, KeyType: 'HASH' },
        { AttributeName: rangeKey, KeyType: 'RANGE' },
      ],
      Projection,
    });

    it('is on-demand, with point-in-time recovery, keyed by pk', () => {
      expect(table(dev).TableName).toBe('wechatpay-dev-orders');
      expect(table(dev).BillingMode).toBe('PAY_PER_REQUEST');
      expect(table(dev).PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table(dev).KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    });

    it('lets DynamoDB forget idempotency records through their ttl attribute', () => {
      expect(table(dev).TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
    });

    it('has the sparse pendingByShard index over the shard and the next check time, the sparse outboxByShard index of unpublished events, paidByDay over the Beijing day and shard, and refundsByRequestDay of refund claims', () => {
      expect(table(dev).GlobalSecondaryIndexes).toEqual([
        index('pendingByShard', 'pendingShard', 'nextCheckAt'),
        index('outboxByShard', 'outboxShard', 'outboxDue'),
        index('openRefundsByShard', 'refundShard', 'refundCheckAt'),
        index('paidByDay', 'paidDayShard', 'pk'),
        // Refund claims by the Beijing day of their request: only their order's key is needed.
        index('refundsByRequestDay', 'requestedDayShard', 'pk', { ProjectionType: 'INCLUDE', NonKeyAttributes: ['outTradeNo'] }),
      ]);
      expect(table(dev).AttributeDefinitions).toEqual(
        expect.arrayContaining([
          { AttributeName: 'pendingShard', AttributeType: 'S' },
          { AttributeName: 'nextCheckAt', AttributeType: 'N' },
          { AttributeName: 'outboxShard', AttributeType: 'S' },
          { AttributeName: 'outboxDue', AttributeType: 'N' },
          { AttributeName: 'paidDayShard', AttributeType: 'S' },
          { AttributeName: 'requestedDayShard', AttributeType: 'S' },
        ]),
      );
    });

    it('has the sparse openRefundsByShard index over the refund shard and the next refund check', () => {
      expect(table(dev).GlobalSecondaryIndexes).toContainEqual(index('openRefundsByShard', 'refundShard', 'refundCheckAt'));
      expect(table(dev).GlobalSecondaryIndexes).toHaveLength(5);
      expect(table(dev).AttributeDefinitions).toEqual(
        expect.arrayContaining([
          { AttributeName: 'refundShard', AttributeType: 'S' },
          { AttributeName: 'refundCheckAt', AttributeType: 'N' },
        ]),
      );
    });

    it('is protected from deletion on prod, not on dev', () => {
      expect(table(prod).DeletionProtectionEnabled).toBe(true);
      expect(table(dev).DeletionProtectionEnabled).toBe(false);
    });
  });

  describe('IAM', () => {
    it('gives each function a role of its own, and creates no shared one', () => {
      const roles = FUNCTIONS.map((name) => lambda(dev.template, name).Role['Fn::GetAtt'][0]);
      expect(new Set(roles).size).toBe(FUNCTIONS.length);
      expect(dev.template.Resources.IamRoleLambdaExecution).toBeUndefined();
    });

    it('lists only specific actions on specific resources, never a wildcard', () => {
      const policyTypes = new Set(['AWS::IAM::Role', 'AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']);
      for (const [id, resource] of Object.entries(dev.template.Resources)) {
        if (!policyTypes.has(resource.Type) || id.endsWith('DeploymentBucketPolicy')) continue;
        const documents =
          resource.Type === 'AWS::IAM::Role'
            ? ((resource.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).map(
                (policy) => policy.PolicyDocument,
              )
            : [resource.Properties.PolicyDocument as { Statement: Statement[] }];
        for (const statement of documents.flatMap((document) => document.Statement)) {
          expect(statement.NotAction, id).toBeUndefined();
          expect(statement.NotResource, id).toBeUndefined();
          expect(JSON.stringify(statement.Action), id).not.toContain('*');
          expect(JSON.stringify(statement.Resource), id).not.toContain('*');
        }
        expect(resource.Properties.ManagedPolicyArns, id).toBeUndefined();
      }
    });

    it.each(FUNCTIONS)('lets %s make only the calls it makes', (name) => {
      const roleId = lambda(dev.template, name).Role['Fn::GetAtt'][0];
      // The API key for whatever talks to WeChat Pay; the merchant tokens for the /merchant/ routes;
      // the client certificate for whatever sends refunds; the apps' AppSecrets for logins and the
      // JS-SDK; the session key for session tokens; PutEvents on the stage's bus for whatever makes
      // order transitions.
      const apiKey = ['putProduct', 'listProducts', 'getReconciliation', 'clearOutbox', ...IDENTITY_FUNCTIONS].includes(name)
        ? []
        : [apiKeyParameter('/wechatpay/dev/api-key')];
      const tokens = MERCHANT_FUNCTIONS.includes(name) ? [apiKeyParameter('/wechatpay/dev/merchant-tokens')] : [];
      const cert = REFUND_SENDERS.includes(name) ? [apiKeyParameter('/wechatpay/dev/client-cert')] : [];
      // dev's one app is an official account: the mini-program login reads no AppSecret there.
      const appSecrets =
        IDENTITY_FUNCTIONS.includes(name) && name !== 'miniProgramLogin' ? [apiKeyParameter('/wechatpay/dev/app-secret')] : [];
      const sessionKey = SESSION_KEY_FUNCTIONS.includes(name) ? [apiKeyParameter('/wechatpay/dev/session-key')] : [];
      const ssm = [...apiKey, ...tokens, ...cert, ...appSecrets, ...sessionKey];
      // Whatever may touch the orders table, but the JS-SDK config, is denied the token cache's items;
      // the mini-program login, every AppSecret (dev has no mini-program: it serves none).
      const onOrdersTable = JSON.stringify(TABLE_ACTIONS[name]).includes('OrdersTable');
      const noAppSecret = { Effect: 'Deny', Action: ['ssm:GetParameter'], Resource: [apiKeyParameter('/wechatpay/dev/app-secret')] };
      expect(roleStatements(dev.template, roleId).filter((statement) => statement.Effect !== 'Allow')).toEqual(
        onOrdersTable && name !== 'jssdkConfig' ? [DENY_TOKEN_CACHE] : name === 'miniProgramLogin' ? [noAppSecret] : [],
      );
      expect(grants(dev.template, roleId)).toEqual({
        ...TABLE_ACTIONS[name],
        ...(ssm.length > 0 ? { 'ssm:GetParameter': ssm } : {}),
        ...(PUBLISHING.includes(name) ? { 'events:PutEvents': [BUS] } : {}),
        'logs:CreateLogStream': [{ 'Fn::GetAtt': [`${logicalId(name)}LogGroup`, 'Arn'] }],
        'logs:PutLogEvents': [{ 'Fn::GetAtt': [`${logicalId(name)}LogGroup`, 'Arn'] }],
      });
    });

    it("lets the JS-SDK config touch only the token cache's items of the table (wechat-token#..., lease#...), which every other role is denied", () => {
      const roleId = lambda(dev.template, 'jssdkConfig').Role['Fn::GetAtt'][0];
      const dynamo = roleStatements(dev.template, roleId).filter((statement) =>
        [statement.Action].flat().some((action) => action.startsWith('dynamodb:')),
      );
      expect(dynamo).toHaveLength(1);
      expect((dynamo[0] as Statement & { Condition?: unknown }).Condition).toEqual({
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': TOKEN_CACHE_KEYS },
      });
      // The other direction, on prod too: test/infra/token-cache-iam.test.ts.
    });

    it("grants each app's secretParam to the functions that serve its kind, and the session key, exactly as the functions are told to read them", () => {
      const secretsOf = (name: FunctionName) =>
        grants(prod.template, lambda(prod.template, name).Role['Fn::GetAtt'][0])['ssm:GetParameter'];
      const appSecrets = [apiKeyParameter('/payments/prod/official-account-secret'), apiKeyParameter('/payments/prod/mini-program-secret')];
      const sessionKey = apiKeyParameter('/payments/prod/session-key');
      // Each reads the AppSecrets of the apps of the kind it serves, and no other.
      const [officialAccount, miniProgram] = appSecrets;
      expect(secretsOf('miniProgramLogin')).toEqual([miniProgram, sessionKey]);
      expect(secretsOf('officialAccountLogin')).toEqual([officialAccount, sessionKey]);
      expect(secretsOf('jssdkConfig')).toEqual([officialAccount]);
      expect(secretsOf('createOrder')).toEqual([apiKeyParameter('/payments/prod/wechatpay-key'), sessionKey]);
      for (const name of FUNCTIONS) {
        const variables = lambda(prod.template, name).Environment.Variables;
        expect(JSON.parse(variables.WECHAT_APPS as string)).toEqual(PROD_APPS);
        expect(variables.SESSION_KEY_PARAM).toBe('/payments/prod/session-key');
      }
    });

    it('grants the key parameter the functions are told to read', () => {
      const roleId = lambda(prod.template, 'notify').Role['Fn::GetAtt'][0];
      expect(grants(prod.template, roleId)['ssm:GetParameter']).toEqual([apiKeyParameter('/payments/prod/wechatpay-key')]);
      expect(lambda(prod.template, 'notify').Environment.Variables.WECHATPAY_API_KEY_PARAM).toBe('/payments/prod/wechatpay-key');
    });
  });

  describe('function configuration', () => {
    it('names the API key by its SSM parameter and never carries the key itself', () => {
      for (const name of FUNCTIONS) {
        const variables = lambda(dev.template, name).Environment.Variables;
        expect(variables.WECHATPAY_API_KEY_PARAM).toBe('/wechatpay/dev/api-key');
        expect(variables).not.toHaveProperty('WECHATPAY_API_KEY');
        expect(variables).not.toHaveProperty('DYNAMODB_ENDPOINT');
        // Nor the local stack's AppSecrets or session key.
        expect(variables).not.toHaveProperty('WECHAT_APP_SECRETS');
        expect(variables).not.toHaveProperty('SESSION_KEY');
        expect(variables).not.toHaveProperty('WECHATPAY_CLIENT_CERT_PEM');
        expect(variables).not.toHaveProperty('WECHATPAY_SECAPI_CA_PEM');
      }
      expect(dev.text).not.toContain(SHELL_API_KEY);
      expect(JSON.stringify(dev.template)).not.toContain(TEST_MERCHANT.apiKey);
    });

    it('sets the configuration defaults, the notify URL from the HTTP API endpoint', () => {
      expect(lambda(dev.template, 'createOrder').Environment.Variables).toEqual({
        WECHATPAY_APPID: '',
        WECHATPAY_MCHID: '',
        WECHATPAY_SIGN_TYPE: 'HMAC-SHA256',
        WECHATPAY_BASE_URL: 'https://api.mch.weixin.qq.com',
        WECHATPAY_NOTIFY_URL: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['HttpApi', 'ApiEndpoint'] }, '/wechatpay/notify']] },
        WECHATPAY_API_KEY_PARAM: '/wechatpay/dev/api-key',
        ORDERS_TABLE: 'wechatpay-dev-orders',
        CATALOG_TABLE: 'wechatpay-dev-catalog',
        MERCHANT_API_TOKENS_PARAM: '/wechatpay/dev/merchant-tokens',
        ORDER_EXPIRE_MINUTES: '30',
        EVENT_BUS_NAME: 'wechatpay-dev',
        // One app, the appId param (unset on dev: the functions then say so), its AppSecret in SSM.
        WECHAT_APPS: '[{"appId":"","kind":"officialaccount","secretParam":"/wechatpay/dev/app-secret"}]',
        WECHAT_API_BASE_URL: 'https://api.weixin.qq.com',
        SESSION_KEY_PARAM: '/wechatpay/dev/session-key',
      });
      // The JS-SDK config alone learns the page origins (none on dev).
      expect(lambda(dev.template, 'jssdkConfig').Environment.Variables).toMatchObject({ CORS_ORIGINS: '' });
      expect(FUNCTIONS.filter((name) => 'CORS_ORIGINS' in lambda(dev.template, name).Environment.Variables)).toEqual(['jssdkConfig']);
    });

    it('gives the refund settings to the functions that send refunds, and to no other', () => {
      for (const name of FUNCTIONS) {
        const variables = lambda(dev.template, name).Environment.Variables;
        if (REFUND_SENDERS.includes(name)) {
          expect(variables).toMatchObject({
            WECHATPAY_CERT_PARAM: '/wechatpay/dev/client-cert',
            WECHATPAY_SECAPI_BASE_URL: 'https://api.mch.weixin.qq.com',
            WECHATPAY_REFUND_NOTIFY_URL: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['HttpApi', 'ApiEndpoint'] }, '/wechatpay/refund-notify']] },
          });
        } else {
          expect(variables, name).not.toHaveProperty('WECHATPAY_CERT_PARAM');
        }
      }
    });

    it('lets the deploying environment override each setting', () => {
      expect(lambda(prod.template, 'queryOrder').Environment.Variables).toMatchObject({
        WECHATPAY_APPID: 'wx0000000000000001',
        WECHATPAY_MCHID: '1900000001',
        WECHATPAY_NOTIFY_URL: 'https://pay.example.com/wechatpay/notify',
        ORDER_EXPIRE_MINUTES: '15',
      });
    });

    it("keeps API functions under the API Gateway limit, above the WeChat Pay client's worst case, and gives recovery a minute", () => {
      for (const name of ['createOrder', 'queryOrder', 'notify', 'miniProgramLogin', 'officialAccountLogin', 'jssdkConfig'] as const) {
        expect(lambda(dev.template, name).Timeout).toBeLessThan(29);
        // Three WeChat Pay attempts of 3 s with backoff (lib/orders/context.ts).
        expect(lambda(dev.template, name).Timeout).toBeGreaterThanOrEqual(10);
      }
      expect(lambda(dev.template, 'recoverOrders').Timeout).toBe(60);
    });

    it('routes the HTTP API, schedules recovery every minute and reconciliation daily', () => {
      const routes = Object.values(dev.template.Resources)
        .filter((resource) => resource.Type === 'AWS::ApiGatewayV2::Route')
        .map((resource) => resource.Properties.RouteKey)
        .sort();
      expect(routes).toEqual([
        'GET /auth/jssdk-config',
        'GET /merchant/orders/{outTradeNo}',
        'GET /merchant/orders/{outTradeNo}/refunds/{outRefundNo}',
        'GET /merchant/products',
        'GET /merchant/reconciliations/{billDate}',
        'GET /orders/{outTradeNo}',
        'POST /auth/miniprogram',
        'POST /auth/officialaccount',
        'POST /merchant/orders',
        'POST /merchant/orders/{outTradeNo}/refunds',
        'POST /merchant/reconciliations',
        'POST /orders',
        'POST /wechatpay/notify',
        'POST /wechatpay/refund-notify',
        'PUT /merchant/products/{sku}',
      ]);
      const rules = Object.values(dev.template.Resources).filter(
        (resource) => resource.Type === 'AWS::Events::Rule' && resource.Properties.ScheduleExpression,
      );
      const schedules = Object.fromEntries(
        rules.map((rule) => [
          JSON.stringify(rule.Properties.Targets).match(/(\w+)LambdaFunction/)?.[1],
          rule.Properties.ScheduleExpression,
        ]),
      );
      // Recovery every minute; reconciliation at 10:00 Beijing, once WeChat Pay has made the day's bill.
      expect(schedules).toEqual({ RecoverOrders: 'rate(1 minute)', Reconcile: 'cron(0 2 * * ? *)' });
    });

    it('lets no web origin call the API from a browser until a stage lists its own', () => {
      const api = Object.values(dev.template.Resources).find((resource) => resource.Type === 'AWS::ApiGatewayV2::Api');
      expect(api?.Properties.CorsConfiguration).toEqual({
        AllowOrigins: [],
        AllowMethods: ['GET', 'POST'],
        // authorization: a payer's session token on POST /orders.
        AllowHeaders: ['content-type', 'authorization'],
      });
    });
  });

  describe('events', () => {
    it("creates the stage's bus, <service>-<stage>, and tells every function its name", () => {
      for (const [packaged, stage] of [
        [dev, 'dev'],
        [prod, 'prod'],
      ] as const) {
        expect(packaged.template.Resources.EventBus).toEqual({ Type: 'AWS::Events::EventBus', Properties: { Name: `wechatpay-${stage}` } });
        for (const name of FUNCTIONS)
          expect(lambda(packaged.template, name).Environment.Variables.EVENT_BUS_NAME).toBe(`wechatpay-${stage}`);
      }
      expect(lambda(dev.template, 'notify').Environment.Variables).not.toHaveProperty('EVENTBRIDGE_ENDPOINT');
    });

    it("puts the bus's name and ARN in the stack's outputs, exported for the merchant's stacks", () => {
      expect(dev.template.Outputs).toMatchObject({
        EventBusName: { Value: { Ref: 'EventBus' }, Export: { Name: 'wechatpay-dev-EventBusName' } },
        EventBusArn: { Value: { 'Fn::GetAtt': ['EventBus', 'Arn'] }, Export: { Name: 'wechatpay-dev-EventBusArn' } },
      });
    });

    it('hands every event of the bus back to clearOutbox, which confirms it', () => {
      const rules = Object.values(dev.template.Resources).filter(
        (resource) => resource.Type === 'AWS::Events::Rule' && !resource.Properties.ScheduleExpression,
      );
      expect(rules).toHaveLength(1);
      expect(rules[0]!.Properties).toMatchObject({
        EventBusName: { Ref: 'EventBus' },
        EventPattern: { source: ['wechatpay.orders'] },
        State: 'ENABLED',
      });
      expect(JSON.stringify(rules[0]!.Properties.Targets)).toContain('ClearOutboxLambdaFunction');
      const permissions = Object.values(dev.template.Resources).filter(
        (resource) => resource.Type === 'AWS::Lambda::Permission' && resource.Properties.Principal === 'events.amazonaws.com',
      );
      expect(permissions.map((permission) => JSON.stringify(permission.Properties.FunctionName)).sort()).toEqual([
        expect.stringContaining('ClearOutboxLambdaFunction'),
        expect.stringContaining('ReconcileLambdaFunction'),
        expect.stringContaining('RecoverOrdersLambdaFunction'),
      ]);
    });
  });

  describe('alarms', () => {
    const alarms = (packaged: Packaged) =>
      Object.fromEntries(
        Object.entries(packaged.template.Resources)
          .filter(([, resource]) => resource.Type === 'AWS::CloudWatch::Alarm')
          .map(([id, resource]) => [id, resource.Properties]),
      );

    it("watches the product's own metrics, each alarm publishing to the stage's payment alarms topic", () => {
      for (const [packaged, stage] of [
        [dev, 'dev'],
        [prod, 'prod'],
      ] as const) {
        expect(packaged.template.Resources.PaymentAlarmsTopic).toEqual({
          Type: 'AWS::SNS::Topic',
          Properties: { TopicName: `wechatpay-${stage}-payment-alarms` },
        });
        const byId = alarms(packaged);
        expect(Object.fromEntries(Object.entries(byId).map(([id, alarm]) => [id, alarm.MetricName]))).toEqual({
          AmountMismatchAlarm: 'AmountMismatches',
          ReconciliationMismatchAlarm: 'ReconciliationMismatches',
          SignatureFailureAlarm: 'SignatureFailures',
          EventsRepublishedAlarm: 'EventsRepublished',
          RefundAnswerRefusedAlarm: 'RefundAnswersRefused',
        });
        for (const alarm of Object.values(byId)) {
          expect(alarm).toMatchObject({
            Namespace: 'WechatPay',
            Dimensions: [{ Name: 'service', Value: 'wechatpay' }],
            AlarmActions: [{ Ref: 'PaymentAlarmsTopic' }],
          });
          expect(alarm.AlarmName).toMatch(new RegExp(`^wechatpay-${stage}-`));
        }
      }
    });

    it('goes off on any event the sweep had to publish again within 5 minutes, and not when none was', () => {
      expect(alarms(dev).EventsRepublishedAlarm).toMatchObject({
        AlarmName: 'wechatpay-dev-events-republished',
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
      });
    });
  });

  describe('throttling', () => {
    it('throttles every route of every deployed stage, each routed route by name', () => {
      for (const packaged of [dev, prod]) {
        const stage = packaged.template.Resources.HttpApiStage as Resource & { DependsOn?: string[] };
        expect(stage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
        const routes = Object.entries(packaged.template.Resources).filter(([, resource]) => resource.Type === 'AWS::ApiGatewayV2::Route');
        expect(Object.keys(stage.Properties.RouteSettings as object).sort()).toEqual(
          routes.map(([, route]) => route.Properties.RouteKey).sort(),
        );
        // Route settings name routes that CloudFormation must have made first.
        expect([...(stage.DependsOn ?? [])].sort()).toEqual(routes.map(([id]) => id).sort());
        for (const setting of Object.values(stage.Properties.RouteSettings as Record<string, Record<string, number>>)) {
          expect(setting.ThrottlingRateLimit).toBeGreaterThan(0);
          expect(setting.ThrottlingBurstLimit).toBeGreaterThanOrEqual(setting.ThrottlingRateLimit as number);
        }
      }
    });
  });

  describe('artifacts', () => {
    it.each(FUNCTIONS)('packages %s alone in its own zip, the AWS SDK bundled in', (name) => {
      expect(lambda(dev.template, name).Code.S3Key.endsWith(`/${name}.zip`)).toBe(true);
      const files = readZip(join(dev.dir, `${name}.zip`));
      expect([...files.keys()]).toEqual([`functions/${name}.js`]);
      const bundle = files.get(`functions/${name}.js`)!.toString('utf8');
      // Bundled: nothing is left to resolve at run time but Node's own modules and the Lambda
      // runtime's SSM client (one call per container, on first use). (The SDK names the optional
      // CRT signer only in an error message that says how to opt in to it.)
      const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((match) => match[1]!);
      const providedByLambda = new Set(['@aws-sdk/signature-v4-crt', '@aws-sdk/client-ssm']);
      expect(required.filter((module) => !isBuiltin(module) && !providedByLambda.has(module))).toEqual([]);
      expect(bundle).toContain('DynamoDB');
      // The EventBridge client is in the functions that publish, and only there; and in getRefund,
      // which reads the order through the orders context but makes no transition, so has no grant.
      expect(bundle.includes('AWSEvents'), 'EventBridge client').toBe(PUBLISHING.includes(name) || name === 'getRefund');
    });

    it.each(FUNCTIONS)('carries no test code in %s: neither the test signing helpers nor the emulator', (name) => {
      const bundle = readZip(join(dev.dir, `${name}.zip`))
        .get(`functions/${name}.js`)!
        .toString('utf8');
      // Messages of dev/wechatpay-documents/payment-notification.ts and of the emulator survive minification; their names do not.
      expect(bundle).not.toContain('signedNotification:');
      expect(bundle).not.toContain('wechatpay-emulator');
    });
  });
});

describe('the packagings of the tests', () => {
  it('take no setting from the environment of the test that asks for them: every ${env:...} of serverless.yml is scrubbed', () => {
    const read = [
      ...new Set([...readFileSync(join(ROOT, 'serverless.yml'), 'utf8').matchAll(/\$\{env:([A-Z_]+)/g)].map((match) => match[1]!)),
    ];
    // ESBUILD_WORK_FOLDER: each packaging sets its own.
    expect(read.filter((name) => name !== 'ESBUILD_WORK_FOLDER' && !SCRUBBED.includes(name))).toEqual([]);
  });
});

describe('serverless print --stage local', () => {
  it('defaults to the test merchant, the emulator and local DynamoDB', async () => {
    const printed = await serverless(['print', '--stage', 'local', '--path', 'provider.environment', '--format', 'json'], cliEnv());
    expect(JSON.parse(printed)).toEqual({
      WECHATPAY_APPID: TEST_MERCHANT.appId,
      WECHATPAY_MCHID: TEST_MERCHANT.mchId,
      WECHATPAY_API_KEY: TEST_MERCHANT.apiKey,
      WECHATPAY_API_KEY_PARAM: '',
      WECHATPAY_SIGN_TYPE: 'HMAC-SHA256',
      WECHATPAY_BASE_URL: 'http://127.0.0.1:3010',
      WECHATPAY_NOTIFY_URL: 'http://127.0.0.1:3000/wechatpay/notify',
      ORDERS_TABLE: 'wechatpay-local-orders',
      CATALOG_TABLE: 'wechatpay-local-catalog',
      MERCHANT_API_TOKENS_PARAM: '',
      MERCHANT_API_TOKEN: 'local-merchant-token',
      ORDER_EXPIRE_MINUTES: '30',
      EVENT_BUS_NAME: 'wechatpay-local',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
      EVENTBRIDGE_ENDPOINT: 'http://127.0.0.1:3030',
      // The merchant's official account and the local mini-program, with their local AppSecrets.
      ...localAppSettings(),
      WECHAT_API_BASE_URL: 'http://127.0.0.1:3010',
      SESSION_KEY_PARAM: '',
      SESSION_KEY: LOCAL_SESSION_KEY,
    });
  }, 60_000);

  it('gives the JS-SDK config every origin (corsOrigins *)', async () => {
    const printed = await serverless(
      ['print', '--stage', 'local', '--path', 'functions.jssdkConfig.environment', '--format', 'json'],
      cliEnv(),
    );
    expect(JSON.parse(printed)).toEqual({ CORS_ORIGINS: '*' });
  }, 60_000);
});

describe('the apps of a stage, checked when it is packaged', () => {
  const print = (wechatApps: string) =>
    serverless(
      ['print', '--stage', 'prod', '--path', 'resources.Resources.JssdkConfigRole', '--format', 'json'],
      cliEnv({ WECHAT_APPS: wechatApps }),
    );

  it.each([
    ['not JSON', '[{"appId":', 'is not valid JSON'],
    ['no app', '[]', 'at least one app'],
    [
      'an AppSecret in the list',
      '[{"appId":"wx0000000000000001","kind":"officialaccount","secret":"abc"}]',
      'an AppSecret never goes here',
    ],
    [
      'a secretParam that is no parameter path',
      '[{"appId":"wx0000000000000001","kind":"officialaccount","secretParam":"app-secret"}]',
      'starting with "/"',
    ],
    ['no app with a secretParam', '[{"appId":"wx0000000000000001","kind":"officialaccount"}]', 'need the AppSecret of at least one app'],
  ])(
    '%s stops the package, naming it',
    async (_name, wechatApps, message) => {
      await expect(print(wechatApps)).rejects.toThrow(message);
    },
    60_000,
  );
});
