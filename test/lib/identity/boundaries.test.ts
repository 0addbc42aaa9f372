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

describe("dependency boundaries of payers' identity", () => {
  it('jose is imported only under lib/identity', () => {
    const users = productCode.filter((file) => imports(file).some((name) => name === 'jose' || name.startsWith('jose/')));
    expect(users.length).toBeGreaterThan(0);
    for (const file of users) expect(file).toMatch(/^lib\/identity\//);
  });

  it('only the identity routes import lib/identity; POST /orders reaches session tokens through lib/http/payer-auth', () => {
    const users = sources('functions').filter((file) => imports(file).some((name) => name.includes('identity')));
    expect(users.sort()).toEqual(['functions/jssdkConfig.ts', 'functions/miniProgramLogin.ts', 'functions/officialAccountLogin.ts']);
    expect(imports('functions/createOrder.ts')).toContain('../lib/http/payer-auth');
  });

  it('every other function loads identity code only on first use (never at cold start)', () => {
    // lib/runtime.ts, which every function loads, and lib/http/payer-auth.ts, which POST /orders
    // loads, import the identity context, session tokens (jose) and payers only as types or with a
    // dynamic import().
    for (const file of ['lib/runtime.ts', 'lib/http/payer-auth.ts']) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const staticImports = [...text.matchAll(/^import (?!type )[^;]*from '([^']+)'/gm)].map((match) => match[1] ?? '');
      expect(
        staticImports.filter((name) => /identity(-runtime|\/(context|payer|session-token|login|jssdk-config))$/.test(name)),
        file,
      ).toEqual([]);
    }
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
