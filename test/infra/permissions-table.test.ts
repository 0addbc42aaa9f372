import { describe, expect, it } from 'vitest';
import { DEV, sharedPackage } from '../support/packaging';
import { committedTable, renderPermissionsTable } from '../support/permissions-table';

/**
 * docs/reference/permissions.md holds, for each function, what its role lets it do and on what,
 * generated from dev's packaged template by `npm run iam:table`. A role changed without the table
 * fails here.
 */
describe('the permissions table in docs/reference/permissions.md', () => {
  it('is the one generated from the packaged dev template (npm run iam:table writes it)', async () => {
    const { template } = await sharedPackage(DEV);
    expect(committedTable(), 'docs/reference/permissions.md is out of date: run `npm run iam:table`').toBe(
      renderPermissionsTable(template),
    );
  }, 300_000);
});
