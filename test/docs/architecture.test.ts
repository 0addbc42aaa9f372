import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDoc, ROOT, section } from '../support/markdown';

/**
 * The house drawn is the house built: docs/internals/architecture.md's table "What each folder may
 * import" names, for every module of lib/ and every folder beside it, its layer and all it may import;
 * every import of the code must be in it, and the table itself must point one way, down the layers.
 */

const DOC = 'docs/internals/architecture.md';
/** The folders whose code the table covers; test/ may import anything. */
const FOLDERS = ['functions', 'lib', 'dev', 'tools', 'bin', 'bench', 'deploy', 'scripts', 'examples'];
/** Static imports and re-exports, dynamic imports, requires, and tsx's tsImport (bin/). */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\btsImport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

/** The node a path belongs to: `lib/<module>` for a folder of lib/, `lib/<file>.ts` for a file at its root, else its top folder. */
function folderOf(path: string): string {
  const parts = path.split('/');
  // dev/ holds several tools, each a node of its own: dev/emulator, dev/local, dev/demo, ...
  if (parts[0] === 'dev') return parts.slice(0, 2).join('/');
  if (parts[0] !== 'lib') return parts[0] as string;
  const second = (parts[1] as string).replace(/\.[cm]?[jt]s$/, '');
  // `../log` and `../log.js` name lib/log.ts; `../config` names the folder lib/config.
  return parts.length > 2 || !existsSync(join(ROOT, 'lib', `${second}.ts`)) ? `lib/${second}` : `lib/${second}.ts`;
}

function sources(folder: string): string[] {
  if (!existsSync(join(ROOT, folder))) return [];
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.[cm]?[jt]s$/.test(name) && !name.includes('node_modules'))
    .map((name) => join(folder, name));
}

/** Every import between two different nodes, as `from → to`, with one file that makes it. */
function imports(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of FOLDERS.flatMap(sources)) {
    for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(SPECIFIER)) {
      const specifier = match[1] as string;
      if (!specifier.startsWith('.')) continue;
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      const [from, to] = [folderOf(file), folderOf(target)];
      if (from !== to && !found.has(`${from} → ${to}`)) found.set(`${from} → ${to}`, file);
    }
  }
  return found;
}

interface Row {
  layer: string;
  folder: string;
  allowed: string[];
}

/** The table's rows: `| layer | \`folder\` | what | may import |`, the folders named in backticks. */
function table(): Row[] {
  const rows = section(readDoc(DOC), 'What each folder may import')
    .split('\n')
    .filter((line) => /^\|\s*(\d|dev)\s*\|/.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim()));
  return rows.map(([, layer = '', folder = '', , allowed = '']) => ({
    layer,
    folder: folder.replace(/`/g, ''),
    allowed: [...allowed.matchAll(/`([^`]+)`/g)]
      .map((match) => match[1] as string)
      .filter((name) => /^((lib|dev)\/[\w.-]+|[a-z]+)$/.test(name) && !/^[\w-]+\.ts$/.test(name)),
  }));
}

describe(`${DOC}: what each folder may import`, () => {
  const rows = table();
  const byFolder = new Map(rows.map((row) => [row.folder, row]));

  it('has a row for every module of lib/ and every folder beside it, and none for what is gone', () => {
    const nodes = new Set(FOLDERS.flatMap(sources).map(folderOf));
    expect([...nodes].filter((node) => !byFolder.has(node)).sort()).toEqual([]);
    expect(rows.map((row) => row.folder).filter((folder) => !existsSync(join(ROOT, folder)))).toEqual([]);
    expect(rows.length).toBe(byFolder.size);
  });

  it('allows every import the code makes', () => {
    const refused = [...imports()]
      .filter(([edge]) => {
        const [from, to] = edge.split(' → ') as [string, string];
        return !byFolder.get(from)?.allowed.includes(to);
      })
      .map(([edge, file]) => `${edge} (${file}): add it to the table, or take the import away`);
    expect(refused).toEqual([]);
  });

  it('points one way: a layer imports its own or the ones below it, never dev code', () => {
    const backwards: string[] = [];
    for (const row of rows.filter((candidate) => candidate.layer !== 'dev')) {
      for (const target of row.allowed) {
        const layer = byFolder.get(target)?.layer;
        if (layer === undefined || layer === 'dev' || Number(layer) < Number(row.layer))
          backwards.push(`${row.folder} (${row.layer}) → ${target} (${layer ?? 'no row'})`);
      }
    }
    expect(backwards).toEqual([]);
  });

  it('reads the table and the code as the check needs', () => {
    expect(folderOf('lib/orders/refunds/request.ts')).toBe('lib/orders');
    expect(folderOf('lib/handler.ts')).toBe('lib/handler.ts');
    expect(folderOf('lib/handler.js')).toBe('lib/handler.ts');
    expect(folderOf('lib/config')).toBe('lib/config');
    expect(byFolder.get('lib/orders')?.allowed).toEqual(expect.arrayContaining(['lib/wechatpay', 'lib/events', 'lib/store']));
    expect(byFolder.get('lib/orders')?.allowed).not.toContain('ids.ts');
    expect(imports().get('functions → lib/orders')).toBeDefined();
    expect(imports().get('bin → tools')).toBe(join('bin', 'wxpay.mjs'));
  });
});
