import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * vitest global setup: a directory where the test files of one run share the stages they package
 * (test/support/packaging.ts, `sharedPackage`), removed when the run ends.
 */
export default function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'wechatpay-packages-'));
  project.provide('packagingCache', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
