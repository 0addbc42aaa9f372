import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Where payers' identity code may reach, and what may reach it, so that bundles stay lean. */

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|mjs|js)$/.test(entry.name))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)['"]([^'"]+)['"]/g)].map((match) => match[1] ?? '');
}

const productCode = ['functions', 'lib'].flatMap(sources);

describe('dependency boundaries of payers\' identity', () => {
  it('jose is imported only under lib/identity', () => {
    const users = productCode.filter((file) => imports(file).some((name) => name === 'jose' || name.startsWith('jose/')));
    expect(users.length).toBeGreaterThan(0);
    for (const file of users) expect(file).toMatch(/^lib\/identity\//);
  });

  it('no function imports lib/identity yet', () => {
    for (const file of sources('functions')) expect(imports(file).filter((name) => name.includes('identity')), file).toEqual([]);
  });

  it('lib/wechat knows nothing of orders, WeChat Pay, HTTP handlers or identity', () => {
    for (const file of sources('lib/wechat')) {
      for (const name of imports(file)) expect(name, file).not.toMatch(/orders|wechatpay|http|identity|functions/);
    }
  });

  it('lib/identity knows nothing of orders, WeChat Pay or HTTP handlers', () => {
    for (const file of sources('lib/identity')) {
      for (const name of imports(file)) expect(name, file).not.toMatch(/orders|wechatpay\/|\/http|functions/);
    }
  });
});
