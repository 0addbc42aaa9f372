import { rmSync } from 'node:fs';
import { DEV, packageStage } from '../test/support/packaging';
import { PERMISSIONS_DOC, renderPermissionsTable, writeTable } from '../test/support/permissions-table';

/**
 * `npm run iam:table`: packages dev as docs/go-live.md deploys it and writes each function's permissions,
 * from its role in the packaged template, into docs/reference/permissions.md (between its markers).
 * test/infra/permissions-table.test.ts fails when the committed table differs from this one.
 */
async function main(): Promise<void> {
  process.env.SLS_TELEMETRY_DISABLED = '1';
  process.env.SLS_NOTIFICATIONS_MODE = 'off';
  const packaged = await packageStage(DEV);
  try {
    writeTable(renderPermissionsTable(packaged.template));
    console.log(`wrote the permissions table into ${PERMISSIONS_DOC}`);
  } finally {
    rmSync(packaged.dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
