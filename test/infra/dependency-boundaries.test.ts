import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Static imports and re-exports, dynamic imports and requires.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.[cm]?[jt]s$/.test(name))
    .map((name) => join(dir, name));
}

function imports(file: string): string[] {
  return [...readFileSync(join(ROOT, file), 'utf8').matchAll(SPECIFIER)].map((match) => match[1] as string);
}

describe('what the Lambda bundles may import', () => {
  // node-forge (certificate conversion, the emulator's certificates) is for tools/ and dev/ only;
  // lib/ and functions/ are what every function bundle is made of, and they never import dev
  // tooling (the emulator, the local stack, the demo, the WeChat Pay document writers).
  const bundled = [...sources('lib'), ...sources('functions')];

  it('finds the product code', () => {
    expect(bundled).toContain(join('lib', 'wechatpay', 'refund-notification.ts'));
  });

  it.each(bundled)('%s imports neither node-forge nor tools/, dev/ or test/ code', (file) => {
    for (const specifier of imports(file)) {
      expect(specifier, `${file} imports ${specifier}`).not.toMatch(/^node-forge(\/|$)/);
      if (specifier.startsWith('.')) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
        expect(target, `${file} imports ${specifier}`).not.toMatch(/^(tools|dev|test)(\/|$)/);
      }
    }
  });
});

describe('the AGPL-licensed IAM simulator (@cloud-copilot/iam-simulate and its iam-policy, iam-utils)', () => {
  const AGPL = /^@cloud-copilot\/iam-(simulate|policy|utils)(\/|$)/;
  // Everything but the tests: what is bundled, deployed, run locally or handed to merchants.
  const outsideTests = ['lib', 'functions', 'deploy', 'bin', 'tools', 'dev', 'scripts', 'bench', 'examples'].flatMap(sources);

  it.each(outsideTests)('%s does not import it: only tests do', (file) => {
    for (const specifier of imports(file)) expect(specifier, `${file} imports ${specifier}`).not.toMatch(AGPL);
  });

  it('is a devDependency pinned to one version, never a dependency', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies).filter((name) => AGPL.test(name))).toEqual([]);
    expect(manifest.devDependencies['@cloud-copilot/iam-simulate']).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('import cycles', () => {
  // Every import counts, type-only ones too: a circle of types still means two modules that can be
  // neither read nor moved apart.
  const FOLDERS = ['lib', 'functions', 'tools', 'dev', 'bench'];
  const modules = FOLDERS.flatMap(sources).filter((file) => /\.[cm]?ts$/.test(file) && !file.endsWith('.d.ts'));
  const known = new Set(modules);

  /** The module a relative specifier names (`./x`, `./x.js`, `./x.ts`, `./x/index.ts`), if it is one of ours. */
  function resolveModule(from: string, specifier: string): string | undefined {
    if (!specifier.startsWith('.')) return undefined;
    const target = relative(ROOT, resolve(ROOT, dirname(from), specifier));
    const candidates = [
      target,
      `${target}.ts`,
      `${target}.mts`,
      target.replace(/\.[cm]?js$/, (ext) => ext.replace('js', 'ts')),
      join(target, 'index.ts'),
    ];
    return candidates.find((candidate) => known.has(candidate));
  }

  const graph = new Map(
    modules.map((file) => [file, [...new Set(imports(file).flatMap((specifier) => resolveModule(file, specifier) ?? []))]]),
  );

  /** The groups of nodes that reach one another (Tarjan), each as one cycle through all it can: a → b → … → a. */
  function cycles(edges: Map<string, string[]>): string[] {
    let counter = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const found: string[] = [];
    const visit = (node: string): void => {
      index.set(node, counter);
      low.set(node, counter);
      counter += 1;
      stack.push(node);
      for (const next of edges.get(node) ?? []) {
        if (!index.has(next)) {
          visit(next);
          low.set(node, Math.min(low.get(node)!, low.get(next)!));
        } else if (stack.includes(next)) {
          low.set(node, Math.min(low.get(node)!, index.get(next)!));
        }
      }
      if (low.get(node) !== index.get(node)) return;
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        group.push(member);
      } while (member !== node);
      if (group.length > 1 || (edges.get(node) ?? []).includes(node)) found.push(path(edges, new Set(group), node));
    };
    for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
    return found;
  }

  /** A shortest way from `start` back to itself within `group`, written a → b → a. */
  function path(edges: Map<string, string[]>, group: Set<string>, start: string): string {
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const node = queue.shift()!;
      for (const next of (edges.get(node) ?? []).filter((candidate) => group.has(candidate)).sort()) {
        if (next === start) {
          const way = [start];
          for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) way.splice(1, 0, at);
          return [...way, start].join(' → ');
        }
        if (!previous.has(next)) {
          previous.set(next, node);
          queue.push(next);
        }
      }
    }
    return [...group].join(' → ');
  }

  it('finds every module and what it imports', () => {
    expect(modules).toContain(join('lib', 'orders', 'store', 'order-item.ts'));
    expect(graph.get(join('lib', 'orders', 'store', 'order-item.ts'))).toContain(join('lib', 'events', 'outbox.ts'));
    expect(graph.get(join('lib', 'http', 'errors.ts'))).toContain(join('lib', 'config', 'index.ts'));
  });

  it('finds a cycle when there is one, and names it', () => {
    const edges = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    expect(cycles(edges)).toEqual(['a.ts → b.ts → c.ts → a.ts', 'e.ts → e.ts']);
  });

  it('no module imports itself back, through any number of others', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('folders import one another one way: the top-level folders, and the modules of lib/', () => {
    // lib/<module>/… is one node, a file at the root of lib/ one of its own; elsewhere a top-level folder is.
    const folderOf = (file: string) => {
      const parts = file.split('/');
      return parts[0] === 'lib' || parts[0] === 'dev' ? parts.slice(0, 2).join('/') : (parts[0] as string);
    };
    const folders = new Map<string, string[]>();
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      const to = targets.map(folderOf).filter((folder) => folder !== from);
      folders.set(from, [...new Set([...(folders.get(from) ?? []), ...to])]);
    }
    expect(folders.get('dev/local')).toContain('dev/emulator');
    expect(cycles(folders)).toEqual([]);
  });
});

describe('the gateway seam', () => {
  /** What lib/orders may take from the protocol code: WeChat Pay's out_trade_no rule and Beijing time, the same in every generation. */
  const NEUTRAL = new Set([join('lib', 'wechatpay', 'ids'), join('lib', 'wechatpay', 'time')]);
  const orders = sources(join('lib', 'orders'));

  it.each(orders)('%s speaks to WeChat Pay only through its port (lib/orders/gateway.ts), and knows no HTTP', (file) => {
    for (const specifier of imports(file).filter((name) => name.startsWith('.'))) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      expect(target, `${file} imports ${specifier}`).not.toMatch(/^lib\/(gateways|http)(\/|$)/);
      if (target.startsWith(join('lib', 'wechatpay'))) {
        expect(NEUTRAL.has(target), `${file} imports ${specifier}: lib/orders must not know the protocol generation`).toBe(true);
      }
    }
  });

  it.each(sources('lib/wechatpay'))('%s knows nothing of orders (protocol only)', (file) => {
    for (const specifier of imports(file).filter((name) => name.startsWith('.'))) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      expect(target, `${file} imports ${specifier}`).not.toMatch(/^lib\/(orders|gateways|http|events|catalog|identity)(\/|$)/);
    }
  });
});
