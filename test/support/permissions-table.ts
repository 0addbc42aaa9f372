import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResolvedTemplate, deployedFunction, type DeployedFunction, type Statement } from './deployed-roles';
import { FUNCTIONS } from './functions';
import { ROOT, type Template } from './packaging';

/**
 * The table of docs/reference/permissions.md: for each function, what its role lets it do and on
 * what, as the packaged dev template has it. `npm run iam:table` writes it between the markers;
 * test/infra/permissions-table.test.ts fails when the committed table is not the one generated.
 */

export const PERMISSIONS_DOC = join(ROOT, 'docs', 'reference', 'permissions.md');
export const START = '<!-- permissions table: written by `npm run iam:table` from the packaged dev template; do not edit by hand -->';
export const END = '<!-- end of the permissions table -->';

const code = (text: string) => `\`${text}\``;
const local = (arn: string) => arn.replace(/^arn:aws:[^:]+:[^:]*:\d*:/, '');

function resource(arn: string, fn: DeployedFunction): string {
  if (arn === `arn:aws:logs:${arn.split(':')[3]}:${arn.split(':')[4]}:log-group:${fn.logGroup}:*`)
    return `its log group ${code(fn.logGroup)}`;
  return code(local(arn));
}

function actions(statement: Statement): string {
  const list = [statement.Action].flat();
  const services = [...new Set(list.map((action) => action.split(':')[0]))];
  if (services.length !== 1) return list.map(code).join(', ');
  return `${services[0]}: ${list.map((action) => action.split(':')[1]).join(', ')}`;
}

function condition(statement: Statement): string {
  if (!statement.Condition) return '';
  return Object.entries(statement.Condition)
    .flatMap(([operator, keys]) =>
      Object.entries(keys).map(([key, values]) => {
        const listed = [values].flat().map(code).join(', ');
        if (key === 'dynamodb:LeadingKeys' && operator === 'ForAllValues:StringLike') return `every partition key it names is ${listed}`;
        if (key === 'dynamodb:LeadingKeys' && operator === 'ForAnyValue:StringLike') return `any partition key it names is ${listed}`;
        return `${operator} ${key} ${listed}`;
      }),
    )
    .join('; ');
}

/** The table, as markdown, from a packaged template (dev's). */
export function renderPermissionsTable(template: Template, stage = 'dev'): string {
  const resolved = new ResolvedTemplate(template, stage);
  const rows = ['| Function | Effect | Actions | On | When |', '| --- | --- | --- | --- | --- |'];
  for (const name of FUNCTIONS) {
    const fn = deployedFunction(resolved, name);
    for (const { policy } of fn.policies) {
      for (const statement of policy.Statement) {
        const on = [statement.Resource]
          .flat()
          .map((arn) => resource(arn, fn))
          .join(', ');
        rows.push(
          `| ${code(name)} | ${statement.Effect === 'Deny' ? '**Deny**' : 'Allow'} | ${actions(statement)} | ${on} | ${condition(statement)} |`,
        );
      }
    }
  }
  return rows.join('\n');
}

/** `doc` with the text between the markers replaced by `table`. */
export function withTable(doc: string, table: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${PERMISSIONS_DOC} has no table markers (${START} ... ${END})`);
  return `${doc.slice(0, start + START.length)}\n${table}\n${doc.slice(end)}`;
}

/** The table as docs/reference/permissions.md holds it now. */
export function committedTable(): string {
  const doc = readFileSync(PERMISSIONS_DOC, 'utf8');
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${PERMISSIONS_DOC} has no table markers`);
  return doc.slice(start + START.length, end).trim();
}

export function writeTable(table: string): void {
  writeFileSync(PERMISSIONS_DOC, withTable(readFileSync(PERMISSIONS_DOC, 'utf8'), table));
}
