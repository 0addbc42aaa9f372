import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { parse, type Tags } from 'yaml';

/**
 * The tables (orders, catalog) are defined once, in serverless.yml. The local stack and the tests
 * read those definitions and create the same tables on dynalite, so they cannot drift from
 * production's.
 */

export const SERVERLESS_YML = fileURLToPath(new URL('../../serverless.yml', import.meta.url));

export type TableResource = 'OrdersTable' | 'CatalogTable';

/** Properties copied as they are: CloudFormation and the CreateTable API name and shape them alike. */
const CREATE_TABLE_PROPERTIES = [
  'AttributeDefinitions',
  'KeySchema',
  'BillingMode',
  'GlobalSecondaryIndexes',
  'LocalSecondaryIndexes',
  'ProvisionedThroughput',
] as const;

/**
 * Properties dynalite does not support; they change nothing about how the table is read and written
 * (locally, idempotency records simply outlive their TTL).
 */
const UNSUPPORTED_LOCALLY = new Set(['PointInTimeRecoverySpecification', 'DeletionProtectionEnabled', 'TimeToLiveSpecification', 'Tags']);

// CloudFormation's short forms (`!Sub`, `!GetAtt`, ...), so the file parses whichever form it uses.
const INTRINSICS = [
  'Base64',
  'Cidr',
  'Condition',
  'Equals',
  'FindInMap',
  'GetAtt',
  'GetAZs',
  'If',
  'ImportValue',
  'Join',
  'Not',
  'And',
  'Or',
  'Ref',
  'Select',
  'Split',
  'Sub',
];

function intrinsicKey(name: string): string {
  return name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
}

const CLOUDFORMATION_TAGS: Tags = INTRINSICS.flatMap((name) => {
  const key = intrinsicKey(name);
  const fromCollection = (node: { toJSON(): unknown }) => ({ [key]: node.toJSON() });
  return [
    {
      tag: `!${name}`,
      // `!GetAtt Table.Arn` is short for `Fn::GetAtt: [Table, Arn]`.
      resolve: (value: string) => ({ [key]: name === 'GetAtt' ? value.split('.') : value }),
    },
    { tag: `!${name}`, collection: 'seq' as const, resolve: fromCollection },
    { tag: `!${name}`, collection: 'map' as const, resolve: fromCollection },
  ];
});

type Properties = Record<string, unknown>;

/** A table resource's CloudFormation Properties, as written in serverless.yml. */
export function readTableProperties(resourceName: TableResource, serverlessYml: string = SERVERLESS_YML): Properties {
  const config = parse(readFileSync(serverlessYml, 'utf8'), { customTags: CLOUDFORMATION_TAGS }) as {
    resources?: { Resources?: Record<string, { Type?: string; Properties?: Properties }> };
  };
  const resource = config.resources?.Resources?.[resourceName];
  if (resource?.Type !== 'AWS::DynamoDB::Table' || !resource.Properties) {
    throw new Error(`${serverlessYml} defines no ${resourceName} resource of type AWS::DynamoDB::Table`);
  }
  return resource.Properties;
}

/**
 * CreateTable input for a table under the given name (serverless.yml names it through a variable).
 * Refuses properties it does not know how to carry over, and values that still hold a Serverless
 * variable or a CloudFormation function, rather than create a table that differs silently.
 */
export function tableInput(
  resourceName: TableResource,
  tableName: string,
  serverlessYml: string = SERVERLESS_YML,
): CreateTableCommandInput {
  const properties = readTableProperties(resourceName, serverlessYml);
  const input: Record<string, unknown> = { TableName: tableName };
  for (const [name, value] of Object.entries(properties)) {
    if (name === 'TableName' || UNSUPPORTED_LOCALLY.has(name)) continue;
    if (!(CREATE_TABLE_PROPERTIES as readonly string[]).includes(name)) {
      throw new Error(`${resourceName}.${name} is not supported by dev/local/tables.ts; teach it there`);
    }
    const text = JSON.stringify(value);
    if (text.includes('${') || /"(Ref|Fn::\w+)"/.test(text)) {
      throw new Error(`${resourceName}.${name} is not a literal value and cannot be created locally: ${text}`);
    }
    input[name] = value;
  }
  return input as unknown as CreateTableCommandInput;
}

/** Creates a table on a local DynamoDB endpoint (dynalite) and waits until it is ACTIVE. */
export async function createTable(endpoint: string, resourceName: TableResource, tableName: string): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    // dynalite checks that requests are signed, not by whom.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await client.send(new CreateTableCommand(tableInput(resourceName, tableName)));
    await waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 0.05 }, { TableName: tableName });
  } finally {
    client.destroy();
  }
}

export const createOrdersTable = (endpoint: string, tableName: string) => createTable(endpoint, 'OrdersTable', tableName);
export const createCatalogTable = (endpoint: string, tableName: string) => createTable(endpoint, 'CatalogTable', tableName);
